"""Manual readings: the comparison's figures against hand-computed pairs, and the round
trip through a running daemon and a real broker (pairing, suspect, fault alarm, refusals)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from daq.manual.manual_config import ManualSensor
from daq.manual.report import compare
from daq.testing import ModbusTestServer

from .conftest import Broker, Subscriber, validator, wait_for
from .test_daemon_e2e import write_config


def test_report_figures_match_a_hand_computed_set_of_pairs() -> None:
    s = ManualSensor(key="LEVEL", quantity="water_level", unit="m", tolerance=0.015,
                     min_pairs=4, u95_max=0.03, repeat_max=0.02)
    diffs = [0.01, -0.01, 0.02, 0.00]
    rows = [{"ts": 3600.0 * i, "value": 100.0 + d, "difference": d, "suspect": 0}
            for i, d in enumerate(diffs)]
    rows.append({"ts": 3600.0 * 4, "value": 100.3, "difference": None, "suspect": 0})
    out = compare(s, rows, 1800.0)
    # by hand: mean 0.005; deviations .005 -.015 .015 -.005; sum of squares 5e-4;
    # s = sqrt(5e-4 / 3) = 0.0129099; 2σ = 0.0258199; U95 = sqrt(.005² + .0258199²)
    assert out["pairs"] == 4 and out["unpaired"] == 1 and out["manual_readings"] == 5
    assert out["mean_difference"] == pytest.approx(0.005)
    assert out["two_sigma"] == pytest.approx(0.0258199, abs=1e-7)
    assert out["u95"] == pytest.approx(0.0262996, abs=1e-7)
    assert out["within_tolerance"] == pytest.approx(0.75)
    assert out["verdict"] == "pass" and out["repeats"] == 0
    strict = ManualSensor(key="LEVEL", quantity="water_level", unit="m", tolerance=0.015,
                          min_pairs=108, u95_max=0.02)
    bad = compare(strict, rows, 1800.0)
    assert bad["verdict"] == "fail"
    assert bad["reasons"] == ["4 pairs, 108 needed", "U95 0.0263 not below 0.02 m"]
    repeat = compare(s, [{"ts": 0.0, "value": 1.00, "difference": None, "suspect": 0},
                         {"ts": 600.0, "value": 1.03, "difference": None, "suspect": 0}],
                     1800.0)
    assert repeat["repeat_max_seen"] == pytest.approx(0.03)
    assert any("repeat readings differ" in r for r in repeat["reasons"])


MANUAL = """\
manual:
  pair_window: 10min
  sensors:
    unit1/level:
      quantity: water_level
      unit: m
      range: [0, 50]
      tolerance: 0.5
      criteria: {min_pairs: 3, u95_max: 5.0}
"""


def daq_manual(cfg: Path, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daq", "manual", *args, "--config", str(cfg),
                           "--state-dir", str(state)], capture_output=True, text=True,
                          timeout=60)


@pytest.mark.slow
def test_manual_round_trip_with_a_running_daemon_and_broker(
        tmp_path: Path, broker: Broker, subscriber: Subscriber, run_daemon: Any) -> None:
    state = tmp_path / "state"
    with ModbusTestServer.tcp(units=(1,)) as srv:
        srv.set_value(1, 0, 12.0, "float32")
        cfg = write_config(tmp_path / "c.yaml", srv.url, "modbus_tcp", {1: 12.0},
                           extra=MANUAL)
        d = run_daemon(cfg, broker.url, state)
        wait_for(lambda: len(subscriber.readings()) >= 5, 60, "automatic readings")
        ok = daq_manual(cfg, state, "add", "unit1/level", "12.1", "--by", "Li Wei", "--json")
        assert ok.returncode == 0, ok.stderr
        entered = json.loads(ok.stdout)[0]
        assert entered["difference"] == pytest.approx(0.1, abs=1e-4)
        far = daq_manual(cfg, state, "add", "unit1/level", "14.0")
        assert far.returncode == 0, far.stderr
        assert "both" in far.stdout  # the table says both readings of the pair are suspect
        implausible = daq_manual(cfg, state, "add", "unit1/level", "99")
        assert implausible.returncode == 2 and "plausible range" in implausible.stderr
        unit = daq_manual(cfg, state, "add", "unit1/level", "12", "--unit", "cm")
        assert unit.returncode == 2 and "is read in 'm'" in unit.stderr
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        bad_csv = tmp_path / "bad.csv"
        bad_csv.write_text(f"sensor,value,time,by\nunit1/level,12.0,{now},Wang\n"
                           f"unit1/level,twelve,{now},Wang\nP99,1,{now},Wang\n")
        bad = daq_manual(cfg, state, "import", str(bad_csv))
        assert bad.returncode == 2 and "2 bad row(s), nothing entered" in bad.stderr
        assert ":3: 'twelve' is not a number" in bad.stderr and ":4: 'P99'" in bad.stderr
        good_csv = tmp_path / "good.csv"
        good_csv.write_text(f"sensor,value,time,by\nunit1/level,12.2,{now},Wang\n"
                            f"unit1/level,11.9,{now},Zhao\n")
        assert daq_manual(cfg, state, "import", str(good_csv)).returncode == 0

        def manual_msgs() -> list[dict[str, Any]]:
            return [r for m in subscriber.payloads("/manual/unit1/") for r in m["readings"]]

        wait_for(lambda: len(manual_msgs()) == 4, 30, "four manual readings at the broker")
        wait_for(lambda: any("/alarm/unit1/level/manual" in t
                             for t, _, _ in list(subscriber.messages)), 30,
                 "the manual-mismatch fault alarm")
        time.sleep(0.5)
        assert d.stop() == 0
    msgs = manual_msgs()
    first, second = msgs[0], msgs[1]
    assert first["source"] == "manual" and first["by"] == "Li Wei"
    assert first["quality"] == "good" and first["pair"]["difference"] == pytest.approx(0.1,
                                                                                     abs=1e-4)
    assert first["pair"]["channel"] == "unit1/level" and first["pair"]["seq"] >= 1
    assert second["quality"] == "suspect" and second["flags"] == ["manual_mismatch"]
    assert second["pair"]["suspect"] is True  # the automatic pair is named suspect too
    # the automatic reading, already published good, is annotated suspect by its key
    notes = [(json.loads(p), r) for t, p, _ in subscriber.messages
             if t.endswith("/annotation/unit1/level") for r in json.loads(p)["readings"]]
    assert len(notes) == 1  # only the 14.0 disagreed
    check = validator("annotation.json")
    for body, _ in notes:
        check.validate(body)
    for body in subscriber.payloads("/manual/unit1/"):
        validator("manual.json").validate(body)
    note = notes[0][1]
    key = note["annotates"]
    assert (key["rtu"], key["channel"], key["seq"]) == (
        "rtu-7", second["pair"]["channel"], second["pair"]["seq"])
    auto = next(r for r in subscriber.readings()
                if (r["channel"], r["seq"]) == (key["channel"], key["seq"]))
    assert auto["quality"] == "good" and key["ts"] == auto["ts"] == note["ts"]
    assert note["value"] == auto["value"] and note["quality"] == "suspect"
    assert note["annotation"]["quality"] == "suspect"
    assert note["annotation"]["reason"] == "manual_mismatch"
    assert note["annotation"]["manual"]["value"] == 14.0
    assert note["annotation"]["difference"] == pytest.approx(14.0 - auto["value"])
    assert note["annotation"]["tolerance"] == 0.5
    alarm = [r for t, p, _ in subscriber.messages if "/alarm/unit1/level/manual" in t
             and not t.endswith("/state") for r in json.loads(p)["readings"]]
    assert [a["event"] for a in alarm][:2] == ["raised", "cleared"]  # 14.0, then 12.2
    assert alarm[0]["class"] == "fault"
    rep = daq_manual(cfg, state, "report", "unit1/level", "--json")
    out = json.loads(rep.stdout)
    assert out["pairs"] == 4 and out["suspect"] == 1
    diffs = [m["pair"]["difference"] for m in msgs]
    assert out["mean_difference"] == pytest.approx(sum(diffs) / 4)
    assert rep.returncode == 0 and out["verdict"] == "pass"
    assert [(p["channel"], p["seq"], p["quality"]) for p in out["suspect_pairs"]] == [
        (key["channel"], key["seq"], "suspect")]  # the local view shows it suspect too
    text = daq_manual(cfg, state, "report", "unit1/level").stdout
    assert "suspect automatic readings" in text and str(key["seq"]) in text
