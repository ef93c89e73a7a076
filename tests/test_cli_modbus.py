"""``daq modbus read|scan|trace`` as subprocesses against real pymodbus servers.

Over TCP, and over a pseudo-terminal (RTU) where one unit answers some addresses with an
exception, one answers with a damaged CRC, one is muted and others are absent.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
import tty
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pymodbus.simulator import DataType, SimData, SimDevice

from daq.testing import ModbusTestServer
from daq.tools import rtu

REPO = Path(__file__).resolve().parents[1]
ORDERS = ("ABCD", "CDAB", "BADC", "DCBA")


def daq(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daq", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def words_in_order(value: float, order: str) -> list[int]:
    """A float32 as a device using ``order`` lays it out (written apart from the tool)."""
    a, b, c, d = struct.pack(">f", value)
    layout = {"ABCD": (a, b, c, d), "CDAB": (c, d, a, b), "BADC": (b, a, d, c),
              "DCBA": (d, c, b, a)}[order]
    return [layout[0] << 8 | layout[1], layout[2] << 8 | layout[3]]


class MixedRtuServer(ModbusTestServer):
    """Unit 1: 20 registers; unit 2: 3 registers (exception 02 above); unit 4 answers with
    a wrong CRC; unit 5 is muted; every other id is absent."""

    sizes: ClassVar[dict[int, int]] = {1: 20, 2: 3, 4: 20, 5: 20}

    def _devices(self) -> list[SimDevice]:
        bits = [SimData(0, values=[False] * 16, datatype=DataType.BITS)]
        return [SimDevice(id=u, simdata=(bits, list(bits), [SimData(
            0, count=self.sizes[u], values=0, datatype=DataType.REGISTERS)], [SimData(
                0, count=self.sizes[u], values=0, datatype=DataType.REGISTERS)]),
            action=partial(self._action, u)) for u in self.units]

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        data = super()._trace_packet(sending, data)
        if sending and data and data[0] == 4:
            return data[:-1] + bytes([data[-1] ^ 0x5A])
        return data


@pytest.fixture
def mixed() -> Iterator[MixedRtuServer]:
    srv = MixedRtuServer(units=(1, 2, 4, 5), transport="rtu")
    srv.start()
    srv.mute(5)
    srv.set_registers(1, 5, [1234])
    yield srv
    srv.stop()


def test_decode_all_identifies_a_float32_written_in_each_of_the_four_orders() -> None:
    with ModbusTestServer.tcp(units=(1,)) as srv:
        for i, order in enumerate(ORDERS):
            srv.set_registers(1, 10 + 2 * i, words_in_order(81.99, order))
        res = daq("modbus", "read", srv.url, "--unit", "1", "--address", "10", "--count",
                  "8", "--decode", "all", "--json")
        table = daq("modbus", "read", srv.url, "--unit", "1", "--address", "10",
                    "--count", "8", "--decode", "all")
    assert res.returncode == 0, res.stderr
    rows = {(r["address"], r["type"]): r for r in json.loads(res.stdout)["decodings"]}
    for i, order in enumerate(ORDERS):
        values = rows[(10 + 2 * i, "float32")]["values"]
        matching = [o for o, v in values.items() if abs(v - 81.99) < 1e-4]
        assert matching == [order], (order, values)
    # the human table: the value stands in the column of its order, the rest is not it
    header = table.stdout.splitlines()[1].split()
    assert header[:3] == ["register", "type", "ABCD"]
    lines = [x.split() for x in table.stdout.splitlines() if " float32 " in x]
    by_address = {int(x[0]): x[2:] for x in lines}
    for i, order in enumerate(ORDERS):
        cells = by_address[10 + 2 * i]
        assert cells[ORDERS.index(order)] == "81.99"
        assert cells.count("81.99") == 1


def test_read_one_type_over_tcp_and_errors_in_words() -> None:
    with ModbusTestServer.tcp(units=(1,), size=10) as srv:
        srv.set_value(1, 0, -12.5, "float32", word_order="little")
        ok = daq("modbus", "read", srv.url, "--unit", "1", "--address", "0", "--type",
                 "float32", "--order", "CDAB", "--json")
        exc = daq("modbus", "read", srv.url, "--unit", "1", "--address", "50")
        silent = daq("modbus", "read", srv.url, "--unit", "9", "--address", "0",
                     "--timeout", "0.2")
    assert ok.returncode == 0 and json.loads(ok.stdout)["values"][0]["value"] == -12.5
    assert exc.returncode == 1 and "exception 02 (illegal data address)" in exc.stderr
    assert silent.returncode == 1 and "Nothing came back within 0.2 s" in silent.stderr
    for res in (exc, silent):
        assert "Traceback" not in res.stderr


@pytest.mark.parametrize("args,words", [
    (["--unit", "300"], "unit 300"), (["--count", "126"], "count 126"),
    (["--kind", "coil", "--decode", "all"], "not coils"),
    (["--type", "float64", "--count", "2"], "needs 4 registers"),
    (["--baud", "fast"], "not a baud rate")])
def test_read_bad_input_is_exit_2_in_words(args: list[str], words: str) -> None:
    base = {"--unit": "1", "--address": "0"}
    for k, v in base.items():
        if k not in args:
            args = [*args, k, v]
    res = daq("modbus", "read", "tcp://127.0.0.1:1", *args)
    assert res.returncode == 2 and words in res.stderr and "Traceback" not in res.stderr


def test_read_over_rtu_pty_with_trace(mixed: MixedRtuServer) -> None:
    res = daq("modbus", "read", mixed.port, "--unit", "1", "--address", "5", "--trace",
              "--baud", "115200")
    assert res.returncode == 0, res.stderr
    assert "1234" in res.stdout
    trace = [x for x in res.stderr.splitlines() if x.startswith("trace")]
    assert len(trace) == 2
    assert " tx crc ok  01 03 00 05 00 01 " in trace[0]
    assert " rx crc ok  01 03 02 04 d2 " in trace[1] and "ms" in trace[1]


def test_read_through_the_sim_url_handler() -> None:
    res = daq("modbus", "read", "sim://cli-test", "--unit", "1", "--kind", "input",
              "--address", "0", "--type", "float32", "--json")
    assert res.returncode == 0, res.stderr
    value = json.loads(res.stdout)["values"][0]["value"]
    assert 0 < value < 100  # the radar's distance to the water, in m


def test_scan_classifies_every_answer(mixed: MixedRtuServer) -> None:
    res = daq("modbus", "scan", mixed.port, "--ids", "1-6", "--address", "5",
              "--timeout", "0.2", "--baud", "115200", "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    got = {r["unit"]: r["outcome"] for r in out["results"]}
    assert got == {1: "value", 2: "exception", 3: "silent", 4: "bad_crc", 5: "silent",
                   6: "silent"}
    by_unit = {r["unit"]: r for r in out["results"]}
    assert by_unit[1]["values"] == [1234] and by_unit[2]["exception"] == 2
    summary = out["summary"]
    assert summary["answered"] == 3 and summary["silent"] == 3
    assert summary["ms_per_dead_address"] >= 190  # each silent id waited its timeout


def test_scan_table_and_nobody_answers_exit_1(mixed: MixedRtuServer) -> None:
    res = daq("modbus", "scan", mixed.port, "--ids", "1,2,4", "--address", "5",
              "--timeout", "0.2")
    assert res.returncode == 0
    assert "exception 02 (illegal data address)" in res.stdout
    assert "bad crc" in res.stdout and "3 of 3 answered" in res.stdout
    none = daq("modbus", "scan", mixed.port, "--ids", "7-8", "--timeout", "0.1")
    assert none.returncode == 1 and "Nobody answered" in none.stderr
    assert "\r" not in none.stderr  # no progress bar when stderr is not a terminal


def test_scan_over_tcp() -> None:
    with ModbusTestServer.tcp(units=(3,)) as srv:
        res = daq("modbus", "scan", srv.url, "--ids", "1-4", "--json")
    assert res.returncode == 0
    got = {r["unit"]: r["outcome"] for r in json.loads(res.stdout)["results"]}
    assert got == {1: "silent", 2: "silent", 3: "value", 4: "silent"}


def _pty() -> tuple[int, str]:
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    path = os.ttyname(slave)
    os.close(slave)
    return master, path


def test_trace_listens_and_shows_crc_verdicts_and_gaps() -> None:
    master, path = _pty()
    request = rtu.rtu_request(7, 3, 0, 2)
    reply = rtu.with_crc(bytes([7, 3, 4, 0, 1, 0, 2]))
    damaged = reply[:-1] + b"\x00"
    proc = subprocess.Popen([sys.executable, "-m", "daq", "modbus", "trace", path,
                             "--baud", "9600", "--frames", "4", "--json"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None and proc.stdout is not None
        assert "listening on" in proc.stderr.readline()
        os.write(master, request)
        time.sleep(0.05)
        os.write(master, reply)
        time.sleep(0.1)
        os.write(master, damaged)
        time.sleep(0.1)
        os.write(master, request + reply)  # back to back: split by CRC, gap 0
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        os.close(master)
    assert proc.returncode == 0, err
    frames = [json.loads(x) for x in out.splitlines()]
    assert [f["crc"] for f in frames] == ["ok", "ok", "BAD", "ok"]
    assert frames[0]["hex"] == request.hex(" ") and "read holding 0+2" in frames[0]["what"]
    assert frames[1]["gap_ms"] >= 40 and frames[2]["gap_ms"] >= 90
    assert frames[1]["gap_ok"] and frames[2]["gap_ok"]


def test_trace_of_modbus_tcp_is_refused_in_words() -> None:
    res = daq("modbus", "trace", "tcp://127.0.0.1:502")
    assert res.returncode == 2 and "serial line" in res.stderr


def test_scan_progress_bar_in_a_real_terminal(mixed: MixedRtuServer, tmp_path: Path,
                                              ) -> None:
    tmux = pytest.importorskip("shutil").which("tmux")
    if tmux is None:
        pytest.skip("tmux is not installed (scripts/_setup.sh installs it)")
    session = f"daq-scan-{os.getpid()}"
    done = tmp_path / "done"
    cmd = (f"cd {REPO} && {sys.executable} -m daq modbus scan {mixed.port} --ids 1-30 "
           f"--address 5 --timeout 0.3; echo $? > {done}; sleep 60")
    env: dict[str, Any] = {**os.environ, "TERM": "xterm"}
    subprocess.run([tmux, "new-session", "-d", "-s", session, "-x", "120", "-y", "30", cmd],
                   check=True, env=env)
    try:
        def screen() -> str:
            return subprocess.run([tmux, "capture-pane", "-p", "-t", session],
                                  capture_output=True, text=True).stdout

        seen = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "/30 " not in seen:
            seen = screen()
            time.sleep(0.1)
        assert "/30 " in seen and "[#" in seen and "answered" in seen
        bar = next(x for x in seen.splitlines() if "/30 " in x)
        assert bar.count("[") == 1  # redrawn in place, not one line per id
        while time.monotonic() < deadline and not done.exists():
            time.sleep(0.2)
        final = screen()
    finally:
        subprocess.run([tmux, "kill-session", "-t", session], capture_output=True)
    assert done.read_text().strip() == "0"
    assert "3 of 30 answered" in final
    assert "/30 " not in final  # the bar is gone once the table is printed
    assert sum("/30 " in x for x in seen.splitlines()) == 1
