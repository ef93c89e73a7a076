"""The bundled demo end to end: configs/demo.yaml through the daemon to a real mosquitto,
and `daq demo` with its own broker and live table.

The demo polls weirs, rain and barometer every minute on wall-clock slots, so waiting for
each of them could take 60 s; the `daq run` test therefore uses a copy of demo.yaml whose
only change is that no interval exceeds 2 s (checked below), which keeps it under ~30 s.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from daq import config
from daq.config import instantiate
from daq.sensors.config import KIND_OUTPUTS

from .conftest import REPO, Broker, Subscriber, validator, wait_for

pytestmark = pytest.mark.slow

DEMO = REPO / "configs" / "demo.yaml"
_INTERVAL = re.compile(r"^(\s+interval:\s*)(\S+)", re.MULTILINE)


def fast_copy(dst: Path) -> Path:
    """demo.yaml with every device interval of 10 s or more set to 2 s; nothing else."""
    text = DEMO.read_text()
    fast = _INTERVAL.sub(lambda m: m.group(1) + ("2s" if m.group(2) != "1s" else "1s"), text)
    assert [ln for ln in text.splitlines() if "interval:" not in ln] == \
        [ln for ln in fast.splitlines() if "interval:" not in ln]
    dst.write_text(fast)
    return dst


def expected_channels(path: Path) -> set[str]:
    """Every device channel ("device/channel") and sensor output ("ID.output")."""
    cfg = config.load(path)
    out = {f"{d.name}/{c.name}" for d in cfg.devices
           for c in instantiate(d, cfg.drivers).channels}
    for sid, s in cfg.sensors.items():
        outputs = set(KIND_OUTPUTS[s["kind"]])
        if s["kind"] == "vw_piezometer" and "tip_elevation" not in s:
            outputs.discard("elevation")
        out |= {f"{sid}.{o}" for o in outputs}
    return out


def test_demo_config_publishes_every_channel(broker: Broker, subscriber: Subscriber,
                                             run_daemon: Any, tmp_path: Path) -> None:
    """`daq run` on the demo configuration publishes schema-valid readings with a value from
    every simulated device channel and every sensor output (23 sensors) within 30 s."""
    cfg_path = fast_copy(tmp_path / "demo-fast.yaml")
    want = expected_channels(cfg_path)
    assert len(want) > 100

    def seen() -> set[str]:
        return {r["channel"] for r in subscriber.readings()
                if r["quality"] in ("good", "suspect") and r["value"] is not None}

    d = run_daemon(cfg_path, broker.url, tmp_path / "state")
    try:
        wait_for(lambda: want <= seen(), 30, "a reading from every channel")
    except AssertionError as err:
        raise AssertionError(f"{err}; never seen: {sorted(want - seen())}") from None
    assert d.proc.poll() is None
    assert d.stop() == 0
    data_v, reading_v = validator("data.json"), validator("reading.json")
    payloads = subscriber.payloads("/data/")
    for msg in payloads:
        data_v.validate(msg)
        assert (msg["site"], msg["rtu"]) == ("shandong-demo", "rtu-01")
    readings = subscriber.readings()
    for r in readings:
        reading_v.validate(r)
    sensor_readings = [r for r in readings if "sensor" in r and r.get("sensor")]
    assert {r["sensor"] for r in sensor_readings} == set(config.load(cfg_path).sensors)
    assert all(r["calibration"]["id"] for r in sensor_readings)


def test_daq_demo_prints_the_live_table_and_exits_0(tmp_path: Path) -> None:
    """`daq demo --duration 12` starts its own mosquitto, prints the running count and a
    table of the latest engineering values, and exits 0."""
    proc = subprocess.run([sys.executable, "-m", "daq", "demo", "--duration", "12",
                           "--state-dir", str(tmp_path / "state")],
                          capture_output=True, text=True, timeout=90, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    out = proc.stdout
    assert "broker says RTU online" in out
    counts = [int(n) for n in re.findall(r"; (\d+) readings in \d+ messages", out)]
    assert counts and counts[-1] > 0
    # rows of the table (the latest value may be a gap record: 1 % of polls are dropped)
    assert re.search(r"^LEVEL\.level\s+\S+\s+m\s+(good|suspect|bad|missing)\s", out,
                     re.MULTILINE)
    assert re.search(r"^P01\.elevation\s+\S+\s+m\s+(good|suspect|bad|missing)\s", out,
                     re.MULTILINE)
    assert re.search(r"^LEVEL\.level\s+8\d\.\d+\s+m\s+good\s", out, re.MULTILINE)
