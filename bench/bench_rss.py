"""Peak memory of ``daq run`` for a Modbus-only configuration of 20 devices.

Starts a real pymodbus server (20 units x 10 float32 registers) and a mosquitto, runs
``python -m daq run`` against them for a while, and reads the daemon's peak RSS
(``VmHWM``) from ``/proc``; the baseline, in the same run, is ``python -c pass``. Also
reports whether numpy / numba / llvmlite were loaded (they must not be for this
configuration). First, what the NMEA driver keeps of a day of 1-s GGA (``keep_fixes:
86400``, 4-h sessions) in its columns, against the former lists of ``EnuFix`` objects
holding the same epochs (the baseline, measured with tracemalloc in the same run).
Run: ``python bench/bench_rss.py [seconds]``. Numbers, not pass/fail.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from daq.localbroker import LocalBroker
from daq.testing import ModbusTestServer

# `daq run` without building the whole CLI parser (whose GNSS subcommands import Numba
# until the parser is lazy): what the daemon itself costs
DAEMON_ONLY = """
import argparse, sys
from daq import cli
p = argparse.ArgumentParser()
for a in ("--config", "--state-dir", "--mqtt-url", "--log-format"):
    p.add_argument(a)
p.add_argument("--insecure", action="store_true")
args = p.parse_args(sys.argv[2:])
sys.exit(cli.cmd_run(args))
"""


def peak_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM")


def heavy_loaded(pid: int) -> list[str]:
    maps = Path(f"/proc/{pid}/maps").read_text()
    return [m for m in ("numpy", "numba", "llvmlite") if f"/{m}/" in maps]


def config(path: Path, url: str, units: int) -> Path:
    regs = ", ".join(f"{{name: r{i}, address: {2 * i}, type: float32, unit: m}}"
                     for i in range(10))
    devices = "\n".join(f"      unit{u}: {{driver: modbus, address: {u}, interval: 1s, "
                        f"options: {{registers: [{regs}]}}}}" for u in range(1, units + 1))
    path.write_text(f"site: bench\nrtu: rss\nbuses:\n  line1:\n    protocol: modbus_tcp\n"
                    f"    url: {url.removeprefix('tcp://')}\n    devices:\n{devices}\n")
    return path


def nmea_day() -> None:
    """A day of GGA at 1 Hz through the NMEA driver: its fixes and session, new vs former."""
    import tracemalloc

    from daq.gnss.solver.receiver_rtk import EnuFix
    from daq.gnss.streams.framing import nmea_checksum
    from daq_drivers.nmea.driver import NmeaDriver

    ref = {"lat": 18.461989, "lon": -69.9153515, "height": -19.1}
    driver = NmeaDriver("gnss", None, {"reference": ref, "keep_fixes": 86400})
    for sec in range(86400 - 60):  # the last session not yet closed: 4 h less a minute
        body = (f"GNGGA,{sec // 3600:02d}{sec // 60 % 60:02d}{sec % 60:02d}.00,"
                f"1827.{72064 + sec % 41 - 20:05d},N,06954.92124,W,{4 if sec % 9 else 5},"
                "12,0.48,22.6,M,-41.5,M,1.0,0000")
        driver.feed(f"${body}*{nmea_checksum(body.encode()):02X}\r\n".encode())
    new = (driver.fixes.nbytes() + driver.session_fixes.nbytes()
           + driver.session_times.buffer_info()[1] * driver.session_times.itemsize)
    tracemalloc.start()
    fixes = list(driver.fixes)  # what the former lists held: an EnuFix per epoch, twice
    session = [EnuFix(f.quality, f.e, f.n, f.u)  # a second object, the same floats
               for f in fixes[len(fixes) - len(driver.session_fixes):]]
    times = list(driver.session_times)
    old = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    print(f"NMEA driver, a day of GGA at 1 Hz ({len(fixes)} fixes kept, {len(session)} in the "
          f"open session): former lists {old / 2**20:.1f} MiB = {old / 1e6:.1f} MB (baseline), "
          f"columns {new / 2**20:.2f} MiB = {new / 1e6:.2f} MB ({new / old:.3f}x)")
    del fixes, session, times


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 20.0
    nmea_day()
    base = subprocess.Popen([sys.executable, "-c",
                             "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    time.sleep(0.5)
    base_kb = peak_kb(base.pid)
    base.communicate(b"")
    with tempfile.TemporaryDirectory() as d, \
            ModbusTestServer.tcp(units=range(1, 21)) as srv:
        broker = LocalBroker(Path(d)).start()
        try:
            cfg = config(Path(d) / "c.yaml", srv.url, 20)
            results = {}
            for name, cmd in (("daq run (the CLI)", [sys.executable, "-m", "daq"]),
                              ("daemon path alone", [sys.executable, "-c", DAEMON_ONLY])):
                proc = subprocess.Popen(
                    [*cmd, "run", "--config", str(cfg), "--state-dir",
                     str(Path(d) / name[:3]), "--mqtt-url", broker.url, "--log-format",
                     "json"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(seconds)
                results[name] = (peak_kb(proc.pid), heavy_loaded(proc.pid))
                proc.terminate()
                proc.wait(20)
            polls = len(srv.requests)
        finally:
            broker.stop()
    print(f"peak RSS, {seconds:.0f} s of `daq run`, 20 Modbus TCP devices x 10 registers at 1 s "
          f"({polls} polls served)")
    print(f"  python -c pass (baseline): {base_kb / 1024:6.1f} MiB = {base_kb * 1.024e-3:5.1f} MB")
    for name, (kb, heavy) in results.items():
        print(f"  {name + ':':<26} {kb / 1024:6.1f} MiB = {kb * 1.024e-3:5.1f} MB  "
              f"({kb / base_kb:.2f}x baseline, {(kb - base_kb) / 1024:.1f} MiB more); "
              f"numpy/numba/llvmlite loaded: {', '.join(heavy) or 'none'}")


if __name__ == "__main__":
    main()
