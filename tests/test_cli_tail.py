"""``daq tail`` against a running daemon: in a real terminal (tmux), and piped."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from daq.testing import ModbusTestServer

from .clitools import NO_BROKER, Tmux, daq, write_config
from .conftest import REPO, wait_for

pytestmark = pytest.mark.slow
BARS = "▁▂▃▄▅▆▇█"


def test_tail_in_a_terminal_refreshes_one_screen(run_daemon: Any, tmp_path: Path) -> None:
    with ModbusTestServer.tcp(units=(1, 2)) as srv:
        srv.set_value(1, 0, 12.25, "float32")
        srv.set_value(2, 0, 3.5, "float32")
        cfg = write_config(tmp_path / "c.yaml", srv.url, "modbus_tcp")
        d = run_daemon(cfg, NO_BROKER)
        wait_for(lambda: (s := d.status()) and s["outbox"]["accepted"] >= 6, 60, "readings")
        term = Tmux(tmp_path, [sys.executable, "-m", "daq", "tail", "--state-dir",
                               str(d.state_dir)])
        try:
            first = term.wait_screen("LEVEL.level")
            n1 = int(re.search(r"(\d+) readings", first).group(1))  # type: ignore[union-attr]
            later = wait_for(lambda: (s := term.screen()) and int(re.search(  # type: ignore
                r"(\d+) readings", s).group(1)) >= n1 + 6 and s, 60, "the screen to update")
            srv.set_value(1, 0, 13.0, "float32")
            moved = wait_for(lambda: re.search(r"LEVEL\.level\s+82\b", term.screen())
                             and term.screen(), 60, "the new value on screen")
            term.keys("C-c")
            gone = wait_for(lambda: "LEVEL.level" not in term.screen() and term.screen(), 30,
                            "tail to leave its screen")
        finally:
            term.close()
        assert d.stop() == 0
    for screen in (first, later, moved):
        assert screen.count("daq tail — site test-site rtu rtu-7") == 1, screen
        assert screen.count("LEVEL.level") == 1  # one row per channel: not a reprint
    row = next(line for line in later.splitlines() if line.startswith("LEVEL.level"))
    assert re.search(r"LEVEL\.level\s+82\.75\s+m\s+good", row), row
    assert any(b in row for b in BARS), row  # the last hour's sparkline
    assert "unit1/distance" in later and "unit2/distance" in later
    assert "Traceback" not in gone


def test_tail_piped_prints_lines_and_filters(run_daemon: Any, tmp_path: Path) -> None:
    with ModbusTestServer.tcp(units=(1, 2)) as srv:
        srv.set_value(1, 0, 12.25, "float32")
        cfg = write_config(tmp_path / "c.yaml", srv.url, "modbus_tcp")
        d = run_daemon(cfg, NO_BROKER)
        wait_for(lambda: (tmp_path / "state" / "control.sock").exists(), 60, "the socket")
        proc = subprocess.Popen([sys.executable, "-m", "daq", "tail", "--sensor", "LEVEL",
                                 "--json", "--state-dir", str(d.state_dir)],
                                stdout=subprocess.PIPE, text=True, cwd=REPO)
        assert proc.stdout is not None
        events = [json.loads(proc.stdout.readline()) for _ in range(3)]
        proc.kill()
        proc.wait(10)
        plain = subprocess.Popen([sys.executable, "-m", "daq", "tail", "--device", "unit2",
                                  "--state-dir", str(d.state_dir)],
                                 stdout=subprocess.PIPE, text=True, cwd=REPO)
        assert plain.stdout is not None
        line = plain.stdout.readline()
        plain.kill()
        plain.wait(10)
        wrong = daq("tail", "--sensor", "LEVL", "--state-dir", str(d.state_dir))
        assert d.stop() == 0
    nodaemon = daq("tail", "--state-dir", str(tmp_path / "nothing"))
    assert {e["channel"] for e in events} == {"LEVEL.level"}
    assert all(e["value"] == pytest.approx(82.75) for e in events)
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    assert "unit2/distance" in line and "\x1b" not in line
    assert wrong.returncode == 2 and "did you mean 'LEVEL'" in wrong.stderr
    assert nodaemon.returncode == 1 and "is the daemon running" in nodaemon.stderr
