"""Outbox cost per accepted reading: disk bytes written (flash wear) and commit time.

Simulates the daemon's steady state, one bus tick per second: each tick commits one
reading per channel of every device (``Outbox.add``, one compressed row per poll), every
5 ticks the write-ahead log is synced (``outbox.sync_interval``; only synced rows are
sent), and the publisher acknowledges by range (``ack_through``) every 10 s or 2000
readings; checkpoints included. The baseline, measured in the same run on the same disk,
is the previous design: one uncompressed row per reading, deleted row by row each second,
``synchronous=NORMAL``. Bytes come from ``/proc/self/io`` (``write_bytes``: pages this
process dirtied for the block device). Two loads: 20 devices x 10 registers (200
readings/s) and the demo's (3 devices x 3 channels, 9 readings/s).
Run: ``python bench/bench_outbox.py [ticks]``. Numbers, not pass/fail.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from daq.model import Lane, Quality, Reading, utcnow
from daq.outbox import Outbox

ACK_EVERY = 10  # ticks: daq.daemon.ACK_INTERVAL_S at one tick per second
SYNC_EVERY = 5  # ticks: the default outbox.sync_interval


def write_bytes() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    raise RuntimeError("no write_bytes in /proc/self/io")


def tick(devices: int, channels: int, t: int) -> list[tuple[str, Reading]]:
    ts = utcnow()
    return [(f"data/unit{d:02d}", Reading(
        device=f"unit{d:02d}", channel=f"unit{d:02d}/r{c}", quantity="water_level",
        value=100.0 + 0.001 * ((t * 7 + d * 13 + c) % 997), unit="m", quality=Quality.GOOD,
        ts=ts, lane=Lane.RAW)) for d in range(devices) for c in range(channels)]


def run_new(path: Path, devices: int, channels: int, ticks: int) -> tuple[float, float]:
    ob = Outbox(path, sync_interval=0.0)  # synced every SYNC_EVERY ticks, below
    ob.sync_interval = 1e9
    n, spent, unacked = 0, 0.0, 0
    before = write_bytes()
    for t in range(ticks):
        items = tick(devices, channels, t)
        t0 = time.perf_counter()
        ob.add(items, slots={f"unit{d:02d}": time.time() for d in range(devices)})
        if t % SYNC_EVERY == SYNC_EVERY - 1:  # outbox.sync_interval: 5 s
            ob.sync()
        unacked += len(items)
        if t % ACK_EVERY == ACK_EVERY - 1 or unacked >= 2000:  # as the publisher does
            rows = ob.pending(Lane.RAW, 0, 100_000)
            ob.ack_through(Lane.RAW, rows[-1].id)
            unacked = 0
        spent += time.perf_counter() - t0
        n += len(items)
    ob._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    written = write_bytes() - before
    ob.close()
    return written / n, spent / ticks


def run_old(path: Path, devices: int, channels: int, ticks: int) -> tuple[float, float]:
    """The previous outbox: a row per reading with its seq table, deletes one by one."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA auto_vacuum=INCREMENTAL")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript("""
        CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, lane INTEGER, topic TEXT,
            channel TEXT, seq INTEGER, payload TEXT);
        CREATE INDEX outbox_lane_id ON outbox(lane, id);
        CREATE TABLE seqs (channel TEXT PRIMARY KEY, last INTEGER NOT NULL);""")
    n, spent, seqs = 0, 0.0, {}
    before = write_bytes()
    for t in range(ticks):
        items = tick(devices, channels, t)
        t0 = time.perf_counter()
        rows = []
        for topic, r in items:
            seqs[r.channel] = seq = seqs.get(r.channel, 0) + 1
            rows.append((2, topic, r.channel, seq, json.dumps(r.to_payload(seq),
                                                              separators=(",", ":"))))
        db.execute("BEGIN IMMEDIATE")
        db.executemany("INSERT INTO outbox(lane, topic, channel, seq, payload) "
                       "VALUES (?,?,?,?,?)", rows)
        db.executemany("INSERT OR REPLACE INTO seqs VALUES (?, ?)", list(seqs.items()))
        db.execute("COMMIT")
        ids = [i for (i,) in db.execute("SELECT id FROM outbox WHERE lane=2 ORDER BY id")]
        db.execute("BEGIN IMMEDIATE")
        for i in ids:
            db.execute("DELETE FROM outbox WHERE id=?", (i,))
        db.execute("COMMIT")
        spent += time.perf_counter() - t0
        n += len(items)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    written = write_bytes() - before
    db.close()
    return written / n, spent / ticks


def main() -> None:
    ticks = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    here = Path(__file__).resolve().parent
    print(f"outbox flash per accepted reading, {ticks} one-second ticks, commit per tick, "
          "range ack per 10 ticks (baseline: previous design, same run, same disk)")
    print(f"{'load':>26} {'B/reading':>10} {'baseline':>9} {'ratio':>6} {'ms/tick':>8} "
          f"{'baseline':>9}")
    with tempfile.TemporaryDirectory(dir=here) as d:  # real disk, not tmpfs
        for name, devices, channels in (("20 dev x 10 reg (200/s)", 20, 10),
                                        ("demo (9/s)", 3, 3)):
            old_b, old_t = run_old(Path(d) / f"old-{devices}.db", devices, channels, ticks)
            new_b, new_t = run_new(Path(d) / f"new-{devices}.db", devices, channels, ticks)
            print(f"{name:>26} {new_b:>10.0f} {old_b:>9.0f} {new_b / old_b:>6.3f} "
                  f"{new_t * 1e3:>8.2f} {old_t * 1e3:>9.2f}")


if __name__ == "__main__":
    main()
