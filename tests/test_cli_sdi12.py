"""``daq sdi12 scan|identify|measure`` as subprocesses against the scripted SDI-12 sensor
behind a pseudo-terminal (8N1: ptys refuse even parity)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tty
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from daq.testing_serial import ScriptedSDI12Sensor

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def sensor() -> Iterator[tuple[str, ScriptedSDI12Sensor]]:
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    with ScriptedSDI12Sensor(master, "3", values=[12.345, -0.5, 770],
                             values_by_command={"R0": [21.5]}) as s:
        yield os.ttyname(slave), s
    os.close(slave)
    os.close(master)


def daq(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daq", "sdi12", *args, "--framing", "8N1"],
                          cwd=REPO, capture_output=True, text=True, timeout=60)


def test_scan_finds_and_identifies_the_sensor(sensor: tuple[str, Any]) -> None:
    port, _ = sensor
    res = daq("scan", port, "--addresses", "0123", "--timeout", "0.2", "--json")
    assert res.returncode == 0, res.stderr
    found = json.loads(res.stdout)["found"]
    assert found == [{"address": "3", "sdi12_version": "1.4", "vendor": "DAMWATCH",
                      "model": "SIMSDI", "firmware": "100", "serial": "SN0001"}]
    table = daq("scan", port, "--addresses", "345", "--timeout", "0.2")
    assert "DAMWATCH" in table.stdout and "1 of 3 address(es) answered" in table.stdout


def test_identify_and_measure(sensor: tuple[str, ScriptedSDI12Sensor]) -> None:
    port, s = sensor
    ident = daq("identify", port, "--address", "3")
    assert ident.returncode == 0 and "SIMSDI" in ident.stdout
    m = daq("measure", port, "--address", "3", "--json", "--timeout", "2")
    assert m.returncode == 0, m.stderr
    assert [v["text"] for v in json.loads(m.stdout)["values"]] == ["+12.345", "-0.500",
                                                                 "+770.000"]
    crc = daq("measure", port, "--address", "3", "--command", "MC", "--timeout", "2")
    assert crc.returncode == 0 and "+12.345" in crc.stdout
    r0 = daq("measure", port, "--address", "3", "--command", "R0", "--json")
    assert json.loads(r0.stdout)["values"][0]["value"] == 21.5
    assert "3M!" in s.commands and "3D0!" in s.commands


def test_silence_garbage_and_bad_input_in_words(sensor: tuple[str, ScriptedSDI12Sensor]
                                                ) -> None:
    port, s = sensor
    silent = daq("identify", port, "--address", "5", "--timeout", "0.2")
    assert silent.returncode == 1 and "no answer to 5I!" in silent.stderr
    s.garble_once("D0", "flip")
    garbled = daq("measure", port, "--address", "3", "--command", "MC", "--timeout", "2")
    assert garbled.returncode == 1 and "CRC mismatch" in garbled.stderr
    bad = daq("measure", port, "--address", "3", "--command", "X")
    assert bad.returncode == 2 and "not an SDI-12 measurement command" in bad.stderr
    for res in (silent, garbled, bad):
        assert "Traceback" not in res.stderr
    nobody = daq("scan", port, "--addresses", "01", "--timeout", "0.1")
    assert nobody.returncode == 1 and "no sensor answered" in nobody.stdout
