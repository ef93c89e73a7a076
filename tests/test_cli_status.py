"""``daq status`` against a running daemon with a real mosquitto: the technician's answers
(quarantine, errors by kind, completeness, outbox age, link down since, clock)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from daq.testing import ModbusTestServer

from .clitools import Tmux, daq, write_config
from .conftest import Broker, wait_for

pytestmark = pytest.mark.slow


def _config(tmp_path: Path, url: str) -> Path:
    cfg = write_config(tmp_path / "c.yaml", url, "modbus_tcp", units=(1, 2, 3),
                       interval="500ms")
    text = cfg.read_text().replace("    devices:\n", "    devices:\n      P07: {driver: modbsu, "
                                   "address: 9, interval: 1s}\n", 1)
    text += """  P08:
    kind: water_level
    calibration: {id: X, date: 2026-01-01}
    inputs: {distance: unit9/distance}
    method: radar
    distance_unit: m
    zero_elevation: 95.0
"""
    cfg.write_text(text)
    return cfg


def test_status_answers_the_questions(broker: Broker, run_daemon: Any,
                                      tmp_path: Path) -> None:
    with ModbusTestServer.tcp(units=(1, 2, 3)) as srv:
        srv.set_value(1, 0, 12.25, "float32")
        srv.mute(3)  # unit3 is silent: timeouts
        cfg = _config(tmp_path, srv.url)
        d = run_daemon(cfg, broker.url)
        state = str(d.state_dir)
        wait_for(lambda: (s := d.status()) and s["broker"]["connected"]
                 and s["completeness_24h"]["unit1"]["expected"] >= 6, 60, "polls")
        up = daq("status", "--state-dir", state)
        broker.stop()
        wait_for(lambda: (s := d.status()) and not s["broker"]["connected"]
                 and s["outbox"]["depth"]["raw"] > 5, 60, "the link down, readings buffered")
        down = daq("status", "--state-dir", state)
        as_json = daq("status", "--state-dir", state, "--json")
        one = daq("status", "--state-dir", state, "--device", "unit3")
        typo = daq("status", "--state-dir", state, "--device", "unti1")
        typo_sensor = daq("status", "--state-dir", state, "--sensor", "LEVL")
        quarantined_sensor = daq("status", "--state-dir", state, "--sensor", "P08")
        term = Tmux(tmp_path, [sys.executable, "-m", "daq", "status", "--state-dir", state])
        try:
            screen = term.wait_screen("errors by kind")
        finally:
            term.close()
        broker.start()
        assert d.stop() == 0
    assert up.returncode == 0, up.stderr
    assert "QUARANTINED: 2 problem(s)" in up.stdout
    assert "buses.line1.devices.P07" in up.stdout and "sensors.P08" in up.stdout
    assert re.search(r"broker 127\.0\.0\.1:\d+: connected since", up.stdout)
    unit1 = next(line for line in up.stdout.splitlines() if re.match(r"line1\s+unit1\b", line))
    assert "100.0 % of" in unit1
    unit3 = next(line for line in up.stdout.splitlines() if re.match(r"line1\s+unit3\b", line))
    assert "DOWN" in unit3 and "no response" in unit3 and "0.0 % of" in unit3
    assert re.search(r"broker 127\.0\.0\.1:\d+: DOWN since \S+Z \(\d+ s\)", down.stdout), \
        down.stdout
    assert "last disconnect:" in down.stdout or "last error:" in down.stdout
    assert re.search(r"oldest unsent \S+Z \(\d+ s old\)", down.stdout), down.stdout
    assert re.search(r"clock: (synchronised|NOT synchronised|unknown)", down.stdout)
    st = json.loads(as_json.stdout)
    assert st["completeness_24h"]["unit1"]["ratio"] == 1.0
    assert st["broker_down_since"] and st["outbox_oldest_unsent"]
    assert st["clock"]["synchronised"] in (True, False, None)
    assert one.returncode == 0 and "unit1" not in one.stdout.split("last error")[1]
    assert typo.returncode == 2 and "did you mean 'unit1'" in typo.stderr
    assert typo_sensor.returncode == 2 and "did you mean 'LEVEL'" in typo_sensor.stderr
    assert quarantined_sensor.returncode == 0  # known, but quarantined: not an error
    # what a person sees in a terminal: the answers, then the device table
    assert "QUARANTINED" in screen and "oldest unsent" in screen and "unit3" in screen
    assert "Traceback" not in up.stderr + down.stderr + typo.stderr
