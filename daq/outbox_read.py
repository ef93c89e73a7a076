"""Read-only access to the outbox beside the running daemon (``daq buffer``, ``daq read``).

The file is opened with SQLite's ``mode=ro`` URI: nothing here can write, lock out the
daemon's commits or change a row. The row format is known here and in ``daq.outbox`` only:
a row's payload is one reading (a JSON object) or, in a one-row-per-poll format, a list of
readings or an object holding ``readings``; :func:`readings_of` accepts all three.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .model import Lane, parse_ts

OUTBOX_NAME = "outbox.sqlite3"


class OutboxUnreadable(Exception):
    pass


def readings_of(payload: str) -> list[dict[str, Any]]:
    doc = json.loads(payload)
    if isinstance(doc, list):
        return [r for r in doc if isinstance(r, dict)]
    if isinstance(doc, dict) and isinstance(doc.get("readings"), list):
        return [r for r in doc["readings"] if isinstance(r, dict)]
    return [doc] if isinstance(doc, dict) else []


def _ts(r: dict[str, Any]) -> datetime | None:
    try:
        return parse_ts(str(r["ts"]))
    except (KeyError, ValueError):
        return None


class OutboxReader:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise OutboxUnreadable(f"no outbox at {self.path}")
        try:
            self.db = sqlite3.connect(f"file:{quote(str(self.path.resolve()))}?mode=ro",
                                      uri=True, timeout=5.0,
                                      check_same_thread=False)  # callers serialise
            self.db.execute("SELECT 1 FROM outbox LIMIT 1").fetchall()
        except sqlite3.Error as err:
            raise OutboxUnreadable(f"cannot read the outbox {self.path}: {err}") from None

    def close(self) -> None:
        self.db.close()

    def last_seq(self, channel: str) -> int:
        row = self.db.execute("SELECT last FROM seqs WHERE channel=?", (channel,)).fetchone()
        return int(row[0]) if row else 0

    def _edge(self, lane: Lane, order: str) -> datetime | None:
        """Time of the oldest (ASC) or newest (DESC) unsent reading of one lane."""
        row = self.db.execute(f"SELECT payload FROM outbox WHERE lane=? ORDER BY id {order} "
                              "LIMIT 1", (int(lane),)).fetchone()
        stamps = [t for r in readings_of(row[0]) if (t := _ts(r)) is not None] if row else []
        if not stamps:
            return None
        return min(stamps) if order == "ASC" else max(stamps)

    def oldest(self, lane: Lane) -> datetime | None:
        return self._edge(lane, "ASC")

    def stats(self) -> dict[str, Any]:
        lanes = {}
        for lane in Lane:
            (n,) = self.db.execute("SELECT COUNT(*) FROM outbox WHERE lane=?",
                                   (int(lane),)).fetchone()
            lanes[lane.name.lower()] = {"rows": n, "oldest": self._edge(lane, "ASC"),
                                        "newest": self._edge(lane, "DESC")}
        oldest = min((e["oldest"] for e in lanes.values() if e["oldest"]), default=None)
        channels = self.db.execute(
            "SELECT channel, COUNT(*) FROM outbox GROUP BY channel ORDER BY COUNT(*) DESC"
        ).fetchall()
        files = {p.name: p.stat().st_size for p in
                 (self.path, self.path.with_name(self.path.name + "-wal")) if p.exists()}
        return {"path": str(self.path), "rows": sum(e["rows"] for e in lanes.values()),
                "lanes": lanes, "oldest_unsent": oldest,
                "channels": len(channels), "top_channels": channels[:10],
                "counters": dict(self.db.execute("SELECT name, value FROM counters")),
                "bytes": files}

    def readings(self, since: datetime | None = None, until: datetime | None = None,
                 lane: str | None = None) -> Iterator[dict[str, Any]]:
        """Unsent readings, oldest first, with their ``topic`` and ``lane``."""
        sql, params = "SELECT lane, topic, payload FROM outbox", []
        if lane is not None:
            sql += " WHERE lane=?"
            params.append(int(Lane[lane.upper()]))
        for ln, topic, payload in self.db.execute(sql + " ORDER BY id", params):
            for r in readings_of(payload):
                t = _ts(r)
                if t is not None and ((since and t < since) or (until and t >= until)):
                    continue
                yield {"lane": Lane(ln).name.lower(), "topic": topic, **r}
