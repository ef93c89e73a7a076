"""Things a new user tripped over: each one is fixed and stays fixed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from daq.demo import Watcher, _simulated_faults

REPO = Path(__file__).resolve().parents[1]


def daq(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daq", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60)


def test_convert_error_keeps_its_quotes() -> None:
    res = daq("convert", "vw-digits", "abc")
    assert res.returncode == 2
    assert res.stderr.strip() == "daq convert: parameter f must be a number, got 'abc'"


def test_demo_refuses_a_negative_duration() -> None:
    res = daq("demo", "--duration", "-5")
    assert res.returncode == 2 and "give 0 (run until Ctrl-C) or more" in res.stderr


def test_readme_lists_every_command() -> None:
    readme = (REPO / "README.md").read_text()
    for cmd in ("daq gnss replay", "daq ports", "daq modbus read", "daq modbus scan",
                "daq modbus trace", "daq sdi12", "daq mqtt check", "daq completion"):
        assert f"| `{cmd}" in readme, cmd


def test_docs_cite_only_files_in_the_repository() -> None:
    text = (REPO / "docs" / "conversions.md").read_text()
    assert "DOMAIN.md" not in text


def _reading(channel: str, value: float, unit: str) -> dict[str, Any]:
    return {"channel": channel, "value": value, "unit": unit, "quality": "good",
            "ts": "2026-01-01T00:00:00.000Z", "seq": 1}


def test_demo_table_shows_the_barometer_but_not_piezometer_steps() -> None:
    w = object.__new__(Watcher)
    w.lock = __import__("threading").Lock()
    w.latest = {c: _reading(c, v, u) for c, v, u in (
        ("BARO.pressure", 100.5, "kPa"), ("P01.pressure", 300.0, "kPa"),
        ("P01.head", 30.6, "m"), ("P01.elevation", 110.2, "m"), ("vw_a/ch01.freq", 2500, "Hz"))}
    rows = [line.split()[0] for line in w.table().splitlines()[2:]]
    assert rows == ["BARO.pressure", "P01.elevation"]


def test_demo_explains_the_simulated_dropouts() -> None:
    cfg = SimpleNamespace(buses=[SimpleNamespace(
        name="rs485_sim", url="sim://reservoir?seed=1&dropout=0.01&spikes=0.001")])
    text = _simulated_faults(cfg)
    assert "1% of requests on rs485_sim get no reply on purpose" in text
    assert "'missing' gap record" in text and "0.1% of samples carry a spike" in text
