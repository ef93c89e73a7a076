"""The durable outbox: SQLite in WAL mode, the source of truth between sensor and broker.

A reading is *accepted* when the transaction that inserts it commits; the same transaction
assigns its per-channel ``seq``, which therefore survives restarts and never repeats, so a
gap in ``seq`` at a subscriber always means a lost reading. A row leaves only when the
broker has acknowledged it. Rows are read lane by lane (alarms, results, raw samples) and
in insertion order within a lane, which keeps each channel's order. Commits come in
batches, because every commit costs the RTU's flash several kB (FIELD-NOTES.md).
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .model import Lane, Reading

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    lane INTEGER NOT NULL,
    topic TEXT NOT NULL,
    channel TEXT NOT NULL,
    seq INTEGER NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_lane_id ON outbox(lane, id);
CREATE TABLE IF NOT EXISTS seqs (channel TEXT PRIMARY KEY, last INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class Row:
    id: int
    lane: int
    topic: str
    channel: str
    seq: int
    payload: str


def _encode(payload: dict[str, object]) -> str:
    """JSON text of a reading. JSON has no NaN: the pipeline already turns a non-finite
    value into null + bad; any left deeper (in ``raw`` or a session summary) become null,
    and objects JSON cannot hold become their repr. A reading is never refused."""
    try:
        return json.dumps(payload, separators=(",", ":"), allow_nan=False, default=repr)
    except ValueError:
        return json.dumps(_nulled(payload), separators=(",", ":"), allow_nan=False,
                          default=repr)


def _nulled(x: object) -> object:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _nulled(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_nulled(v) for v in x]
    return x


class Outbox:
    """Thread-safe; one connection guarded by a lock (SQLite serialises writers anyway)."""

    def __init__(self, path: str | Path, *, max_rows: int | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")  # effective only on a new file
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL: a commit survives a crash of the process (kill -9); only a power
        # cut may lose the last commits before the WAL is synced.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._seqs = dict(self._db.execute("SELECT channel, last FROM seqs"))
        self._depth = dict.fromkeys(Lane, 0)
        for lane, n in self._db.execute("SELECT lane, COUNT(*) FROM outbox GROUP BY lane"):
            self._depth[Lane(lane)] = n
        self.max_rows = max_rows

    # -- accepting ------------------------------------------------------------------------

    def add(self, items: Sequence[tuple[str, Reading]], *,
            envelope: dict[str, str] | None = None) -> list[int]:
        """Commit readings (each with its topic) in one transaction; return their seqs."""
        if not items:
            return []
        seqs: list[int] = []
        rows = []
        touched: dict[str, int] = {}
        # seqs are taken under the lock: two writers (pipeline, GNSS solver) adding to one
        # channel at once must never be given the same seq
        with self._lock:
            for topic, reading in items:
                seq = touched.get(reading.channel, self._seqs.get(reading.channel, 0)) + 1
                touched[reading.channel] = seq
                payload = reading.to_payload(seq)
                if envelope:
                    payload = {**envelope, **payload}
                rows.append((int(reading.lane), topic, reading.channel, seq, _encode(payload)))
                seqs.append(seq)
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(
                    "INSERT INTO outbox(lane, topic, channel, seq, payload) VALUES (?,?,?,?,?)",
                    rows)
                self._db.executemany(
                    "INSERT INTO seqs(channel, last) VALUES (?, ?) "
                    "ON CONFLICT(channel) DO UPDATE SET last = excluded.last",
                    list(touched.items()))
                self._db.execute("COMMIT")
            except BaseException:
                self._rollback_locked()
                raise
            self._seqs.update(touched)
            for row in rows:
                self._depth[Lane(row[0])] += 1
            if self.max_rows is not None and sum(self._depth.values()) > self.max_rows:
                self._evict_locked(sum(self._depth.values()) - self.max_rows)
        return seqs

    def _rollback_locked(self) -> None:
        """Undo an open transaction; when BEGIN itself failed (database locked) there is
        none, and a bare ROLLBACK would raise and hide the real error."""
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def _evict_locked(self, excess: int) -> None:
        """Drop the oldest rows of the lowest lanes first; alarms are never evicted."""
        for lane in (Lane.RAW, Lane.RESULT):
            if excess <= 0:
                break
            cur = self._db.execute(
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE lane=? "
                "ORDER BY id LIMIT ?)", (int(lane), excess))
            n = cur.rowcount
            self._depth[lane] -= n
            excess -= n
            if n:
                self._bump_locked(f"evicted_{lane.name.lower()}", n)

    def _bump_locked(self, name: str, n: int) -> None:
        self._db.execute("INSERT INTO counters(name, value) VALUES (?, ?) ON CONFLICT(name) "
                         "DO UPDATE SET value = value + excluded.value", (name, n))

    def bump(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._bump_locked(name, n)

    # -- draining -------------------------------------------------------------------------

    def pending(self, lane: Lane, after_id: int, limit: int) -> list[Row]:
        """Rows of one lane after ``after_id``, oldest first."""
        with self._lock:
            cur = self._db.execute(
                "SELECT id, lane, topic, channel, seq, payload FROM outbox "
                "WHERE lane=? AND id>? ORDER BY id LIMIT ?", (int(lane), after_id, limit))
            return [Row(*r) for r in cur]

    def ack(self, rows: Iterable[Row]) -> int:
        """Delete acknowledged rows in one transaction; returns how many were still there."""
        rows = list(rows)
        if not rows:
            return 0
        with self._lock:
            depth = dict(self._depth)
            try:
                self._db.execute("BEGIN IMMEDIATE")
                deleted = 0
                for row in rows:
                    n = self._db.execute("DELETE FROM outbox WHERE id=?", (row.id,)).rowcount
                    deleted += n
                    depth[Lane(row.lane)] -= n
                self._db.execute("COMMIT")
            except BaseException:
                self._rollback_locked()  # never leave a transaction open for the next add
                raise
            self._depth = depth
            return deleted

    def maintain(self) -> None:
        """Give freed pages back to the file system (called now and then, not per ack:
        every vacuum step is another write to the RTU's flash)."""
        with self._lock:
            self._db.execute("PRAGMA incremental_vacuum(1024)")

    # -- inspection -----------------------------------------------------------------------

    def depth(self) -> dict[str, int]:
        with self._lock:
            return {lane.name.lower(): n for lane, n in self._depth.items()}

    def counters(self) -> dict[str, int]:
        with self._lock:
            return dict(self._db.execute("SELECT name, value FROM counters"))

    def last_seq(self, channel: str) -> int:
        with self._lock:
            return self._seqs.get(channel, 0)

    def all_rows(self) -> list[Row]:
        """Every row in the outbox, in id order (inspection and tests)."""
        with self._lock:
            cur = self._db.execute(
                "SELECT id, lane, topic, channel, seq, payload FROM outbox ORDER BY id")
            return [Row(*r) for r in cur]

    def close(self) -> None:
        with self._lock:
            self._db.close()
