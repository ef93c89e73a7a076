"""Outbox cost per accepted reading: disk bytes written (flash wear) and throughput.

Accepts and acknowledges N readings (~200-byte JSON) through :class:`daq.outbox.Outbox`,
once committing every reading on its own (the baseline, measured in the same run) and
then in batches as the daemon's pipeline does. Reports bytes written to storage per
reading from ``/proc/self/io`` (``write_bytes``) and readings/s, each as a ratio to the
baseline. Run: ``python bench/bench_outbox.py [N]``. Numbers, not pass/fail.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from daq.model import Lane, Quality, Reading, utcnow
from daq.outbox import Outbox


def write_bytes() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    raise RuntimeError("no write_bytes in /proc/self/io")


def run(n: int, batch: int, workdir: Path) -> tuple[float, float]:
    ob = Outbox(workdir / f"outbox-{batch}.sqlite3")
    ts = utcnow()
    items = [(f"data/logger{i % 3}", Reading(
        device=f"logger{i % 3}", channel=f"logger{i % 3}/ch{i % 17:02d}.freq",
        quantity="frequency", value=2500.0 + i % 97, unit="Hz", quality=Quality.GOOD,
        ts=ts, lane=Lane.RAW, raw={"registers": [17800, 12345]})) for i in range(n)]
    before, t0 = write_bytes(), time.perf_counter()
    for i in range(0, n, batch):
        ob.add(items[i:i + batch])
        # the publisher deletes what the broker acknowledged once per commit interval
        ob.ack(ob.pending(Lane.RAW, 0, batch))
    ob._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    elapsed = time.perf_counter() - t0
    written = write_bytes() - before
    ob.close()
    return written / n, n / elapsed


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    here = Path(__file__).resolve().parent
    with tempfile.TemporaryDirectory(dir=here) as d:  # real disk, not tmpfs
        base_bytes, base_rate = run(n, 1, Path(d))
        print(f"outbox, {n} readings accepted and acknowledged (baseline: 1 per commit)")
        print(f"{'readings/commit':>16} {'bytes/reading':>14} {'ratio':>7} "
              f"{'readings/s':>11} {'ratio':>7}")
        print(f"{1:>16} {base_bytes:>14.0f} {1.0:>7.3f} {base_rate:>11.0f} {1.0:>7.2f}")
        for batch in (9, 100, 200, 1000):  # 9: the demo's rate with 1 s commits
            b, r = run(n, batch, Path(d))
            print(f"{batch:>16} {b:>14.0f} {b / base_bytes:>7.3f} {r:>11.0f} "
                  f"{r / base_rate:>7.2f}")


if __name__ == "__main__":
    main()
