"""How much of an RS-485 line the daemon's Modbus RTU bus worker uses, per baud rate.

A half-duplex RS-485 emulator sits between two pseudo-terminal pairs: the master (the
daemon's bus worker, or a bare client) on one, a slave answering units 1..N at once (zero
turnaround) on the other. The emulator carries one frame at a time, delivers each byte
after its character time (10 bits at 8N1) and keeps the line idle for t3.5 between frames,
so the wire limit is exactly::

    transactions/s = 1 / ((8 + 5 + 2·registers) · char + 2 · t3.5)

First a bare client (write a request, read the reply, write the next; no gap of its own)
checks that the emulator reproduces the computed limit; then the daemon's BusWorker polls
N devices of 10 registers each, offered 1.4× what the line carries, and the achieved
transactions/s are printed as a ratio of the limit (targets: ≥ 0.95 at 9600 and 19200,
≥ 0.90 at 115200). At 115200 both the spec's t3.5 (fixed 1.75 ms above 19200 baud) and a
3.5-character gap (``frame_gap``) are measured.

Run: ``.venv/bin/python bench/bench_modbus_wire.py [--seconds 5] [--devices 40]``.
The emulator and slave run in a child process so they do not share the daemon's GIL.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import select
import struct
import sys
import time
import tty
from collections import deque

from daq.modbus_frame import crc16, rtu_request

REGS = 10


def _emulate(fd_master: int, slave_path: str, baud: int, t35: float, ready: mp.Event,
             stop: mp.Event) -> None:
    fd_slave = os.open(slave_path, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd_slave)
    ready.set()
    char = 10 / baud
    other = {fd_master: fd_slave, fd_slave: fd_master}
    pending: deque[tuple[int, float, bytearray]] = deque()  # (source, arrival, bytes)
    cur: list | None = None  # [source, start, data, sent]
    wire_end = 0.0
    while not stop.is_set():
        now = time.monotonic()
        if cur is not None:
            src, start, data, sent = cur
            k = min(len(data), int((now - start) / char + 1e-9))
            if k > sent:
                os.write(other[src], bytes(data[sent:k]))
                cur[3] = k
            if cur[3] == len(data):
                wire_end = start + len(data) * char
                cur = None
        if cur is None and pending:
            src, arrival, data = pending.popleft()
            cur = [src, max(arrival, wire_end + t35), data, 0]
        if cur is not None:
            wait = cur[1] + (cur[3] + 1) * char - time.monotonic()
        else:
            wait = 0.05
        ready_fds, _, _ = select.select([fd_master, fd_slave], [], [], max(wait, 0))
        for fd in ready_fds:
            data = os.read(fd, 512)
            t = time.monotonic()
            if cur is not None and cur[0] == fd and t < cur[1] + len(cur[2]) * char:
                cur[2] += data  # the sender is still talking: the same frame
            elif pending and pending[-1][0] == fd:
                pending[-1][2].extend(data)
            else:
                pending.append((fd, t, bytearray(data)))


def _child(fd_master: int, baud: int, t35: float, units: int, ready: mp.Event,
           stop: mp.Event) -> None:
    from daq.testing_modbus import ScriptedRtuSlave

    with ScriptedRtuSlave(units=tuple(range(1, units + 1))) as slave:
        _emulate(fd_master, slave.path, baud, t35, ready, stop)


class Line:
    """The emulated line: ``path`` is the master's serial port."""

    def __init__(self, baud: int, t35: float, units: int) -> None:
        self.fd, slave_fd = os.openpty()
        tty.setraw(slave_fd)
        tty.setraw(self.fd)
        self.path = os.ttyname(slave_fd)
        self._slave_fd = slave_fd
        ctx = mp.get_context("fork")
        self.ready, self.stop = ctx.Event(), ctx.Event()
        self.proc = ctx.Process(target=_child, args=(self.fd, baud, t35, units, self.ready,
                                                     self.stop), daemon=True)

    def __enter__(self) -> Line:
        self.proc.start()
        if not self.ready.wait(20):
            raise RuntimeError("emulator did not start")
        time.sleep(0.2)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.proc.join(5)
        os.close(self.fd)
        os.close(self._slave_fd)


def limit(baud: int, t35: float) -> float:
    return 1 / ((8 + 5 + 2 * REGS) * 10 / baud + 2 * t35)


def bare_client(line: Line, seconds: float, units: int) -> float:
    fd = os.open(line.path, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    want = 5 + 2 * REGS
    done = 0
    try:
        end = start = 0.0
        while True:
            unit = done % units + 1
            os.write(fd, rtu_request(unit, "holding", 0, REGS))
            got = b""
            while len(got) < want:
                r, _, _ = select.select([fd], [], [], 1.0)
                if not r:
                    raise RuntimeError("no reply on the emulated line")
                got += os.read(fd, want - len(got))
            assert crc16(got[:-2]) == struct.unpack("<H", got[-2:])[0]
            now = time.monotonic()
            if done == 20:
                start = now
                end = now + seconds
            done += 1
            if start and now >= end:
                return (done - 21) / (now - start)
    finally:
        os.close(fd)


def daemon_worker(line: Line, baud: int, gap: float | None, seconds: float,
                  units: int, rate: float) -> tuple[float, int]:
    import threading

    from daq.bus import BusWorker, PollResult
    from daq.config import BusConfig, DeviceConfig
    from daq.testing import build_driver
    from daq_drivers.modbus import ModbusDriver

    interval = max(0.1, round(units / (1.4 * rate), 2))
    devs = tuple(DeviceConfig(f"d{u}", "b", "modbus", u, interval, None, "raw", {}, 300.0)
                 for u in range(1, units + 1))
    bus = BusConfig("b", "modbus_rtu", line.path, baud, 8, "N", 1, 0.5, 0, devs,
                    frame_gap=gap)
    drivers = {d.name: build_driver(ModbusDriver, {"registers": [
        {"name": f"r{i}", "address": i} for i in range(REGS)]}, address=d.address,
        name=d.name) for d in devs}
    ok = [0]
    bad = [0]
    lock = threading.Lock()

    def sink(r: PollResult) -> None:
        with lock:
            if r.ok:
                ok[0] += 1
            elif r.values and r.values[0].flags != ("skipped",):
                bad[0] += 1

    w = BusWorker(bus, drivers, sink)
    w.start()
    try:
        time.sleep(1.0)
        with lock:
            first, t0 = ok[0], time.monotonic()
        time.sleep(seconds)
        with lock:
            last, t1 = ok[0], time.monotonic()
    finally:
        w.stop()
        w.join(10)
    return (last - first) / (t1 - t0), bad[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--devices", type=int, default=40)
    ap.add_argument("--baud", type=int, action="append", help="only these baud rates")
    args = ap.parse_args()
    import logging

    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    cases = [(9600, None, 0.95), (19200, None, 0.95), (115200, None, 0.90),
             (115200, 3.5 * 10 / 115200, 0.90)]
    print(f"{args.devices} devices x {REGS} registers, 8N1, zero slave turnaround, "
          f"{args.seconds:g} s per measurement")
    print(f"{'baud':>7} {'t3.5 ms':>8} {'limit/s':>8} {'bare/s':>8} {'bare÷lim':>8} "
          f"{'daemon/s':>9} {'daemon÷lim':>10} {'target':>6} {'failed':>6}")
    worst = 0
    for baud, gap, target in cases:
        if args.baud and baud not in args.baud:
            continue
        t35 = gap if gap is not None else (1.75e-3 if baud > 19200 else 35 / baud)
        lim = limit(baud, t35)
        with Line(baud, t35, args.devices) as line:
            bare = bare_client(line, args.seconds, args.devices)
        with Line(baud, t35, args.devices) as line:
            got, failed = daemon_worker(line, baud, gap, args.seconds, args.devices, lim)
        ratio = got / lim
        worst |= ratio < target
        print(f"{baud:>7} {t35 * 1e3:>8.3f} {lim:>8.1f} {bare:>8.1f} {bare / lim:>8.3f} "
              f"{got:>9.1f} {ratio:>10.3f} {target:>6.2f} {failed:>6}", flush=True)
    return 1 if worst else 0


if __name__ == "__main__":
    sys.exit(main())
