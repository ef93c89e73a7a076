"""``daq calibrate`` against a running daemon: a field zero and a two-point calibration
change later readings, which carry the new id; the history (who, when, before, after)
survives a restart and still applies."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from daq.testing import ModbusTestServer

from .conftest import Broker, Subscriber, wait_for
from .test_daemon_e2e import write_config

pytestmark = pytest.mark.slow


def daq_cal(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daq", "calibrate", *args, "--state-dir",
                           str(state), "--json"], capture_output=True, text=True, timeout=60)


def test_zero_and_two_point_with_history_across_a_restart(
        tmp_path: Path, broker: Broker, subscriber: Subscriber, run_daemon: Any) -> None:
    state = tmp_path / "state"
    with ModbusTestServer.tcp(units=(1,)) as srv:
        srv.set_value(1, 0, 12.5, "float32")
        cfg = write_config(tmp_path / "c.yaml", srv.url, "modbus_tcp", {1: 12.5})
        d = run_daemon(cfg, broker.url, state)
        wait_for(lambda: len(subscriber.readings()) >= 3, 60, "readings")
        early = daq_cal(state, "zero", "unit1/nothing")
        assert early.returncode == 2 and "nothing to calibrate" in early.stderr
        z = daq_cal(state, "zero", "unit1/level", "--reference", "10", "--by", "tech")
        assert z.returncode == 0, z.stderr
        zero = json.loads(z.stdout)
        assert zero["before"]["value"] == pytest.approx(12.5)
        assert zero["after"]["offset"] == pytest.approx(-2.5) and zero["by"] == "tech"

        def carrying(cal_id: str) -> list[dict[str, Any]]:
            return [r for r in subscriber.readings()
                    if (r.get("calibration") or {}).get("field", {}).get("id") == cal_id]

        got = wait_for(lambda: carrying(zero["id"]), 30, "readings with the new id")
        assert got[0]["value"] == pytest.approx(10.0)
        assert got[0]["calibration"]["field"]["uncorrected"] == pytest.approx(12.5)
        d.kill()
        d2 = run_daemon(cfg, broker.url, state)
        n = len(carrying(zero["id"]))
        wait_for(lambda: len(carrying(zero["id"])) > n + 2, 60, "still applied after restart")
        two = daq_cal(state, "two-point", "unit1/level", "--point", "10=0", "--point",
                      "20=100", "--by", "lab")
        assert two.returncode == 0, two.stderr
        tp = json.loads(two.stdout)
        assert tp["after"]["gain"] == pytest.approx(10.0)
        assert tp["after"]["value"] == pytest.approx(25.0)  # 10 · 12.5 − 100
        wait_for(lambda: carrying(tp["id"]), 30, "two-point readings")
        hist = json.loads(daq_cal(state, "history", "unit1/level").stdout)["history"]
        assert [(h["id"], h["by"], h["method"]) for h in hist] == [
            (zero["id"], "tech", "zero"), (tp["id"], "lab", "two-point")]
        assert hist[1]["before"]["id"] == zero["id"]
        assert d2.stop() == 0
    assert all(r["value"] == pytest.approx(25.0) for r in carrying(tp["id"]))
