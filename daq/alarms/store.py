"""Alarm state and audit trail, in the outbox's SQLite file, in tables of their own.

Its own connection, ``synchronous=FULL``: a state change is on the disk when ``commit``
returns, so a power cut cannot bring back an alarm the operator acknowledged. The state
and the transition's audit row are one transaction. The audit row stays ``queued = 0``
until its event is in the outbox; a crash in between is repaired at the next start (the
event then goes out once more at worst, with the same ``event_id`` for the subscriber).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alarm_state (
    alarm TEXT PRIMARY KEY,
    state TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS alarm_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    alarm TEXT NOT NULL,
    event TEXT NOT NULL,
    by TEXT,
    payload TEXT NOT NULL,
    queued INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS alarm_audit_unqueued ON alarm_audit(queued) WHERE queued = 0;
CREATE INDEX IF NOT EXISTS alarm_audit_alarm ON alarm_audit(alarm, id);
"""


class AlarmStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                                   timeout=10.0)
        self._db.execute("PRAGMA journal_mode=WAL")  # as the outbox: one mode per file
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def load(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {a: json.loads(s) for a, s in
                    self._db.execute("SELECT alarm, state FROM alarm_state")}

    def commit(self, states: dict[str, dict[str, Any]],
               events: Iterable[tuple[float, str, str, str | None, dict[str, Any]]]
               ) -> list[int]:
        """Write states and audit rows ``(ts, alarm, event, by, payload)`` in one durable
        transaction; return the audit ids (the events' ``event_id``)."""
        ids: list[int] = []
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(
                    "INSERT INTO alarm_state(alarm, state) VALUES (?, ?) ON CONFLICT(alarm) "
                    "DO UPDATE SET state = excluded.state",
                    [(a, json.dumps(s, separators=(",", ":"))) for a, s in states.items()])
                for ts, alarm, event, by, payload in events:
                    cur = self._db.execute(
                        "INSERT INTO alarm_audit(ts, alarm, event, by, payload) "
                        "VALUES (?,?,?,?,?)", (ts, alarm, event, by, "{}"))
                    rid = int(cur.lastrowid or 0)
                    payload["event_id"] = rid
                    self._db.execute("UPDATE alarm_audit SET payload=? WHERE id=?",
                                     (json.dumps(payload, separators=(",", ":")), rid))
                    ids.append(rid)
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        return ids

    def unqueued(self) -> list[tuple[int, dict[str, Any]]]:
        with self._lock:
            return [(i, json.loads(p)) for i, p in self._db.execute(
                "SELECT id, payload FROM alarm_audit WHERE queued = 0 ORDER BY id")]

    def mark_queued(self, ids: list[int]) -> None:
        if not ids:
            return
        with self._lock:
            self._db.executemany("UPDATE alarm_audit SET queued = 1 WHERE id = ?",
                                 [(i,) for i in ids])

    def history(self, alarm: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        with self._lock:
            if alarm is None:
                cur = self._db.execute("SELECT payload FROM alarm_audit ORDER BY id DESC "
                                       "LIMIT ?", (limit,))
            else:
                cur = self._db.execute("SELECT payload FROM alarm_audit WHERE alarm = ? "
                                       "ORDER BY id DESC LIMIT ?", (alarm, limit))
            return [json.loads(p) for (p,) in cur][::-1]

    def close(self) -> None:
        with self._lock:
            self._db.close()
