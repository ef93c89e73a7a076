"""The commands a technician runs most start fast: no Numba, numpy or GNSS code imported.

Each command runs in a fresh interpreter that reports ``sys.modules`` after ``main``
returns (timings are in bench/bench_cli_startup.py). ``daq check`` may import the GNSS
configuration schema (to check a ``gnss:`` section), nothing else of daq.gnss.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
PROBE = """
import json, sys
from daq.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
heavy = sorted(m for m in sys.modules
               if m.split(".")[0] in ("numba", "numpy", "pymodbus", "paho")
               or m.startswith("daq.gnss") or m.startswith("daq_drivers.nmea"))
print("MODULES " + json.dumps(heavy), file=sys.stderr)
"""
GNSS_CONFIG = {"daq.gnss", "daq.gnss.gnss_config"}  # the `gnss:` section's schema


def imported(*argv: str) -> set[str]:
    res = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    line = next(x for x in res.stderr.splitlines() if x.startswith("MODULES "))
    assert "Traceback" not in res.stderr
    return set(json.loads(line.removeprefix("MODULES ")))


@pytest.mark.parametrize("argv", [["--help"], ["modbus", "read", "--help"], ["ports", "-h"],
                                  ["status", "--state-dir", "/nonexistent"]])
def test_help_and_status_import_nothing_heavy(argv: list[str]) -> None:
    assert imported(*argv) == set()


def test_check_of_a_modbus_site_imports_no_numpy_numba_or_gnss() -> None:
    mods = imported("check", "--config", "configs/demo.yaml")
    assert not {m for m in mods if m.split(".")[0] in ("numpy", "numba")}
    assert {m for m in mods if m.startswith("daq.gnss")} <= GNSS_CONFIG
    assert not {m for m in mods if m.startswith("daq_drivers.nmea") or m.startswith("paho")}


def test_gnss_commands_are_still_there_when_asked_for() -> None:
    res = subprocess.run([sys.executable, "-m", "daq", "gnss", "--help"], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0
    for name in ("decode", "sessions", "solve", "replay"):
        assert name in res.stdout


def test_top_level_help_has_examples_and_no_raw_markup() -> None:
    res = subprocess.run([sys.executable, "-m", "daq", "--help"], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0
    assert "examples:" in res.stdout and "daq modbus scan" in res.stdout
    for cmd in ("ports", "modbus", "gnss", "completion", "check", "status"):
        assert f"    {cmd}" in res.stdout
    for markup in ("``", ":class:", ":func:", "%(", "[bold"):
        assert markup not in res.stdout


def _parsers(parser: Any, path: str = "daq") -> Any:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _parsers(child, f"{path} {name}")


def test_every_help_is_plain_text_and_the_commands_show_examples() -> None:
    from daq.cli import build_parser

    seen = dict(_parsers(build_parser()))
    for path, parser in seen.items():
        text = parser.format_help()
        for markup in ("``", ":class:", ":func:", ":data:", "%("):
            assert markup not in text, (path, markup)
    for path in ("daq", "daq run", "daq check", "daq status", "daq drivers", "daq demo",
                 "daq ports", "daq modbus read", "daq modbus scan", "daq modbus trace",
                 "daq sdi12 scan", "daq sdi12 measure", "daq mqtt check", "daq completion"):
        assert "examples:" in seen[path].format_help(), path
