"""Read-only access to the outbox beside the running daemon (``daq buffer``, ``daq read``).

The file is opened with SQLite's ``mode=ro`` URI: nothing here can write, lock out the
daemon's commits or change a row. The row format belongs to ``daq.outbox`` (one table per
lane, one compressed row per poll and topic): rows are decoded with its own function.
Acknowledged rows stay until the daemon's next range delete (every few seconds), so a
count here can include a few readings the broker already has.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .access import denied, missing_dir, present
from .model import Lane, parse_ts
from .outbox import TABLES, Row, decode_row, scan

OUTBOX_NAME = "outbox.sqlite3"


class OutboxUnreadable(Exception):
    pass


def _ts(r: dict[str, Any]) -> datetime | None:
    try:
        return parse_ts(str(r["ts"]))
    except (KeyError, ValueError):
        return None


class OutboxReader:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not present(self.path):
            raise OutboxUnreadable(f"no outbox at {self.path}{missing_dir(self.path)}")
        if not os.access(self.path, os.R_OK):  # sqlite3 would say "unable to open"
            raise OutboxUnreadable(f"cannot read the outbox {self.path}: "
                                   f"{denied(self.path)}")
        try:
            self.db = sqlite3.connect(f"file:{quote(str(self.path.resolve()))}?mode=ro",
                                      uri=True, timeout=5.0,
                                      check_same_thread=False)  # callers serialise
            for table in TABLES.values():
                self.db.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchall()
        except sqlite3.Error as err:
            raise OutboxUnreadable(f"cannot read the outbox {self.path}: {err}") from None
        self._seqs: dict[str, int] | None = None

    def close(self) -> None:
        self.db.close()

    def last_seq(self, channel: str) -> int:
        """The channel's last seq: the ``seqs`` table completed by the rows committed
        since the daemon last wrote it (``daq.outbox.scan``)."""
        if self._seqs is None:
            self._seqs = scan(self.db)[0]
        return int(self._seqs.get(channel, 0))

    def _rows(self, lane: Lane, order: str = "ASC", limit: int | None = None) -> list[Row]:
        sql = f"SELECT id, topic, n, data FROM {TABLES[lane]} ORDER BY id {order}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [decode_row(lane, r) for r in self.db.execute(sql)]

    def _edge(self, lane: Lane, order: str) -> datetime | None:
        """Time of the oldest (ASC) or newest (DESC) unsent reading of one lane."""
        rows = self._rows(lane, order, 1)
        stamps = [t for r in rows[0].readings() if (t := _ts(r)) is not None] if rows else []
        if not stamps:
            return None
        return min(stamps) if order == "ASC" else max(stamps)

    def oldest(self, lane: Lane) -> datetime | None:
        return self._edge(lane, "ASC")

    def stats(self) -> dict[str, Any]:
        lanes = {}
        topics: dict[str, int] = {}
        channels: dict[str, int] = {}
        for lane in Lane:
            (n, readings) = self.db.execute(
                f"SELECT COUNT(*), COALESCE(SUM(n), 0) FROM {TABLES[lane]}").fetchone()
            lanes[lane.name.lower()] = {"rows": n, "readings": readings,
                                        "oldest": self._edge(lane, "ASC"),
                                        "newest": self._edge(lane, "DESC")}
            for topic, k in self.db.execute(
                    f"SELECT topic, SUM(n) FROM {TABLES[lane]} GROUP BY topic"):
                topics[topic] = topics.get(topic, 0) + k
            for row in self._rows(lane):
                for r in row.readings():
                    ch = str(r.get("channel"))
                    channels[ch] = channels.get(ch, 0) + 1
        oldest = min((e["oldest"] for e in lanes.values() if e["oldest"]), default=None)
        top = sorted(topics.items(), key=lambda kv: -kv[1])
        files = {p.name: p.stat().st_size for p in
                 (self.path, self.path.with_name(self.path.name + "-wal")) if p.exists()}
        return {"path": str(self.path), "rows": sum(e["rows"] for e in lanes.values()),
                "readings": sum(e["readings"] for e in lanes.values()),
                "lanes": lanes, "oldest_unsent": oldest,
                "topics": len(top), "top_topics": top[:10], "channels": len(channels),
                "top_channels": sorted(channels.items(), key=lambda kv: -kv[1])[:10],
                "counters": dict(self.db.execute("SELECT name, value FROM counters")),
                "bytes": files}

    def readings(self, since: datetime | None = None, until: datetime | None = None,
                 lane: str | None = None) -> Iterator[dict[str, Any]]:
        """Unsent readings, lane by lane in priority order and oldest first within a lane
        (the order the publisher sends them), with their ``topic`` and ``lane``."""
        lanes = [Lane[lane.upper()]] if lane is not None else list(Lane)
        for ln in lanes:
            for row in self._rows(ln):
                for r in row.readings():
                    t = _ts(r)
                    if t is not None and ((since and t < since) or (until and t >= until)):
                        continue
                    yield {"lane": ln.name.lower(), "topic": row.topic, **r}
