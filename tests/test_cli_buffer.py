"""``daq buffer``: the outbox read-only, beside a daemon that keeps committing to it."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from daq.testing import ModbusTestServer

from .clitools import NO_BROKER, daq, write_config
from .conftest import wait_for

pytestmark = pytest.mark.slow


def test_buffer_stats_and_export_beside_the_running_daemon(run_daemon: Any,
                                                           tmp_path: Path) -> None:
    with ModbusTestServer.tcp(units=(1, 2)) as srv:
        srv.set_value(1, 0, 12.25, "float32")
        cfg = write_config(tmp_path / "c.yaml", srv.url, "modbus_tcp", interval="250ms")
        d = run_daemon(cfg, NO_BROKER)
        wait_for(lambda: (s := d.status()) and s["outbox"]["accepted"] >= 40, 60, "readings")
        state = str(d.state_dir)
        stats = daq("buffer", "stats", "--state-dir", state, "--json")
        human = daq("buffer", "stats", "--state-dir", state)
        jsonl = daq("buffer", "export", "--state-dir", state, "--since", "1h",
                    "--format", "jsonl")
        csv_out = daq("buffer", "export", "--state-dir", state, "--lane", "raw")
        empty = daq("buffer", "export", "--state-dir", state, "--since", "2000-01-01",
                    "--until", "2000-01-02")
        before = d.status()["outbox"]["accepted"]  # type: ignore[index]
        wait_for(lambda: d.status()["outbox"]["accepted"] > before + 10, 60,  # type: ignore
                 "the daemon to keep committing")
        assert d.stop() == 0
    assert stats.returncode == 0, stats.stderr
    st = json.loads(stats.stdout)
    assert st["rows"] >= 40 and st["lanes"]["raw"]["rows"] == st["rows"]
    assert st["oldest_unsent"] is not None
    assert human.returncode == 0 and "oldest unsent" in human.stdout
    assert "LEVEL.level" in human.stdout
    rows = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert len(rows) >= st["rows"]
    seqs: dict[str, list[int]] = defaultdict(list)
    for r in rows:
        seqs[r["channel"]].append(r["seq"])
    assert set(seqs) == {"unit1/distance", "unit2/distance", "LEVEL.level"}
    for channel, s in seqs.items():
        assert s == list(range(1, len(s) + 1)), channel  # nothing was sent: all still there
    table = list(csv.DictReader(io.StringIO(csv_out.stdout)))
    assert table[0].keys() >= {"ts", "channel", "value", "quality", "seq"}
    level = [r for r in table if r["channel"] == "LEVEL.level"]
    assert float(level[0]["value"]) == pytest.approx(82.75)
    assert empty.returncode == 0 and empty.stdout.strip() == ",".join(
        ["ts", "channel", "device", "sensor", "quantity", "value", "unit", "quality", "seq",
         "lane", "topic", "flags"])


def test_buffer_bad_input_and_missing_outbox(tmp_path: Path) -> None:
    bad = daq("buffer", "export", "--state-dir", str(tmp_path), "--since", "yesterday")
    assert bad.returncode == 2 and "not a time" in bad.stderr
    order = daq("buffer", "export", "--state-dir", str(tmp_path), "--since", "1h",
                "--until", "2h")
    assert order.returncode == 2 and "--until must be after --since" in order.stderr
    missing = daq("buffer", "stats", "--state-dir", str(tmp_path / "none"))
    assert missing.returncode == 1 and "no outbox" in missing.stderr
    assert "Traceback" not in bad.stderr + order.stderr + missing.stderr
    helptext = daq("buffer", "--help")
    assert helptext.returncode == 0 and "examples:" in helptext.stdout


def test_export_shows_a_reading_a_manual_one_disagreed_with_as_suspect(
        run_daemon: Any, tmp_path: Path) -> None:
    """The automatic reading a manual mismatch annotates is exported ``suspect`` (flag
    ``manual_mismatch``, the annotation beside it) in CSV and JSON lines, also from a lane
    without the annotation, and still once the annotation itself has been sent (acked)."""
    from daq.model import Lane
    from daq.outbox import Outbox

    from .test_daemon_e2e import write_config as e2e_config
    from .test_manual import MANUAL

    state = tmp_path / "state"
    with ModbusTestServer.tcp(units=(1,)) as srv:
        srv.set_value(1, 0, 12.0, "float32")
        cfg = e2e_config(tmp_path / "c.yaml", srv.url, "modbus_tcp", {1: 12.0}, extra=MANUAL)
        d = run_daemon(cfg, NO_BROKER, state)
        wait_for(lambda: (s := d.status()) and s["outbox"]["accepted"] >= 5, 60, "readings")
        far = daq("manual", "add", "unit1/level", "14.0", "--by", "Li Wei", "--json",
                  "--config", str(cfg), "--state-dir", str(state))
        assert far.returncode == 0, far.stderr
        assert d.stop() == 0
    (entered,) = json.loads(far.stdout)
    key = (entered["auto_channel"], entered["auto_seq"])

    def export(*args: str) -> str:
        out = daq("buffer", "export", "--state-dir", str(state), *args)
        assert out.returncode == 0, out.stderr
        return out.stdout

    rows = [json.loads(line) for line in export("--format", "jsonl").splitlines()]
    notes = [r for r in rows if r.get("source") == "annotation"]
    assert len(notes) == 1 and (notes[0]["annotates"]["channel"],
                                notes[0]["annotates"]["seq"]) == key
    auto = [r for r in rows if r["channel"] == "unit1/level"]
    (hit,) = [r for r in auto if (r["channel"], r["seq"]) == key]
    assert hit["quality"] == "suspect" and hit["flags"] == ["manual_mismatch"]
    assert hit["annotation"]["measured_quality"] == "good"
    assert hit["annotation"]["manual"]["value"] == 14.0
    assert hit["annotation"]["difference"] == pytest.approx(14.0 - hit["value"])
    assert len(auto) > 3 and all(r["quality"] == "good" and not r.get("flags")
                                 for r in auto if r is not hit)
    table = list(csv.DictReader(io.StringIO(export("--lane", "raw"))))
    suspect = [(r["channel"], int(r["seq"]), r["flags"]) for r in table
               if r["quality"] != "good"]
    assert suspect == [(*key, "manual_mismatch")]
    ob = Outbox(state / "outbox.sqlite3")  # the broker has acknowledged the result lane
    try:
        assert ob.ack_through(Lane.RESULT, 1 << 62) >= 1  # the manual reading, annotation
    finally:
        ob.close()
    rows = [json.loads(line) for line in export("--format", "jsonl").splitlines()]
    assert not [r for r in rows if r.get("source")]
    assert [(r["channel"], r["seq"], r["quality"]) for r in rows if r["quality"] != "good"] \
        == [(*key, "suspect")]
