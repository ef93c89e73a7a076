"""Manual readings, their pairs, and the automatic values they are paired with, kept in the
outbox's SQLite file in tables of their own (own connection; a manual reading is durable,
``synchronous=FULL``, before it is answered)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS manual_auto (
    key TEXT NOT NULL, ts REAL NOT NULL, value REAL NOT NULL, channel TEXT NOT NULL,
    seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS manual_auto_key_ts ON manual_auto(key, ts);
CREATE TABLE IF NOT EXISTS manual_reading (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL, ts REAL NOT NULL, value REAL NOT NULL, unit TEXT NOT NULL,
    by TEXT, entered REAL NOT NULL,
    auto_ts REAL, auto_value REAL, auto_channel TEXT, auto_seq INTEGER,
    difference REAL, suspect INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS manual_reading_key_ts ON manual_reading(key, ts);
"""

KEEP_AUTO_S = 400 * 86400  # automatic values kept for pairing late entries (> a quarter)

COLUMNS = ("id", "key", "ts", "value", "unit", "by", "entered", "auto_ts", "auto_value",
           "auto_channel", "auto_seq", "difference", "suspect")


class ManualStore:
    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        if readonly:
            self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True,
                                       check_same_thread=False)
            return
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                                   timeout=10.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def add_auto(self, rows: Iterable[tuple[str, float, float, str, int]]) -> None:
        rows = list(rows)
        if not rows:
            return
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT INTO manual_auto VALUES (?,?,?,?,?)", rows)
            self._db.execute("DELETE FROM manual_auto WHERE ts < ?",
                             (rows[-1][1] - KEEP_AUTO_S,))
            self._db.execute("COMMIT")

    def nearest_auto(self, key: str, ts: float, window: float) -> tuple[Any, ...] | None:
        """(ts, value, channel, seq) of the automatic value nearest ``ts`` within window."""
        with self._lock:
            return self._db.execute(
                "SELECT ts, value, channel, seq FROM manual_auto WHERE key=? AND ts BETWEEN ? "
                "AND ? ORDER BY abs(ts - ?) LIMIT 1", (key, ts - window, ts + window, ts)
            ).fetchone()

    def add_reading(self, row: dict[str, Any]) -> int:
        cols = [c for c in COLUMNS if c != "id"]
        with self._lock:
            cur = self._db.execute(
                f"INSERT INTO manual_reading({', '.join(cols)}) VALUES "
                f"({', '.join('?' * len(cols))})", [row.get(c) for c in cols])
            return int(cur.lastrowid or 0)

    def readings(self, key: str, since: float = 0.0) -> list[dict[str, Any]]:
        with self._lock:
            try:
                cur = self._db.execute(
                    f"SELECT {', '.join(COLUMNS)} FROM manual_reading WHERE key=? AND ts>=? "
                    "ORDER BY ts", (key, since))
            except sqlite3.OperationalError:  # no manual reading was ever entered
                return []
            return [dict(zip(COLUMNS, r, strict=True)) for r in cur]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def suspect_autos(db: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every automatic reading a manual one disagreed with (its channel, seq, time and
    value) and the manual reading, from any connection to the file (``daq buffer`` opens it
    read-only); none before a manual reading was ever entered."""
    try:
        cur = db.execute("SELECT auto_channel, auto_seq, auto_ts, auto_value, id, ts, value, "
                         "by, difference FROM manual_reading WHERE suspect=1 AND auto_seq "
                         "IS NOT NULL ORDER BY id")
    except sqlite3.OperationalError:  # no such table: no manual reading yet
        return []
    return [{"channel": r[0], "seq": r[1], "ts": r[2], "value": r[3], "manual_id": r[4],
             "manual_ts": r[5], "manual_value": r[6], "by": r[7], "difference": r[8]}
            for r in cur]
