"""The durable outbox: SQLite in WAL mode, the source of truth between sensor and broker.

A reading is *accepted* when the transaction that inserts it commits; the same transaction
assigns its per-channel ``seq``, which therefore survives restarts and never repeats, so a
gap in ``seq`` at a subscriber always means a lost reading or one that a gap record, or
the first reading after a start (``seq_skipped``, channels without slots), names.

Flash is the RTU's scarcest resource, so one row holds every reading of one topic and
lane from one commit (in practice one device's poll), deflated with a preset dictionary,
and the broker's acknowledgements delete whole ranges of rows (``ack_through``), never
row by row. A commit writes its rows and nothing else: the seqs it gave are in its
readings, the polls' instants in its ``marks``; the ``seqs`` table catches up before rows
are deleted (and every FLUSH_ROWS rows), and ``scan`` completes it from the rows on
opening. Freed pages are not zeroed (``secure_delete`` is on in some SQLite builds).
A row is published only once it is durable: ``sync()`` fsyncs the write-ahead log and
moves the watermark ``pending`` may read to; so a power cut can roll back only readings
no subscriber has seen (their seq may be given again, harmlessly), and the downtime gap
records of the restart cover them, because the devices' last polled instants roll back
with them. A commit costs the fsync of at least one 4 kB file-system block, so the
pipeline syncs every ``sync_interval`` (and at once for alarms and results, and for the
first commit after opening, so the first reading of a start leaves without waiting one
interval), not every commit: a kill -9 loses nothing committed; a power cut at most
``sync_interval``.

A file SQLite cannot read (truncated, foreign, corrupt) is set aside under a new name and
a fresh outbox started: acquisition never stops on a damaged file (``Outbox.set_aside``).
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
import os
import sqlite3
import struct
import threading
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import structlog

from .model import Lane, Quality, Reading

log = structlog.get_logger("daq.outbox")

# one table per lane (no index to update: each is read and cleared in rowid order). A
# commit dirties as few pages as possible (each dirty page is a page written to flash,
# twice): its rows carry their own seqs (in the readings) and the devices' last polled
# instants (``marks``); ``seqs`` (channel -> last seq, SLOT + device -> last poll) is
# brought up to date only before rows are deleted and every FLUSH_ROWS rows, and
# ``meta.seqs_through`` says up to which row of each lane it holds; on opening, the rows
# after that are read to complete it (``_scan``)
_SCHEMA = "".join(f"""
CREATE TABLE IF NOT EXISTS rows{int(lane)} (
    id INTEGER PRIMARY KEY,
    topic TEXT NOT NULL,
    n INTEGER NOT NULL,
    data BLOB NOT NULL,
    marks TEXT
);""" for lane in Lane) + """
CREATE TABLE IF NOT EXISTS seqs (channel TEXT PRIMARY KEY, last INTEGER NOT NULL)
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
SLOT = "#slot:"  # a seqs key no channel name can have: a device's last poll, epoch ms
_T = {lane: f"rows{int(lane)}" for lane in Lane}
TABLES = _T  # lane -> table name (daq/outbox_read.py reads them too)
FLUSH_ROWS = 2000  # rows committed before ``seqs`` is brought up to date without a delete
AT = "#at"  # a seqs key no channel name can have: the last commit's wall time, epoch ms
# After a start, a channel the caller gives no downtime skip (GNSS results, alarms,
# summaries, manual readings: no polling slots) skips this many seqs per second since the
# outbox's last commit, plus RESTART_BURST: a restored (older) state directory then never
# gives a number the lost run may have published. A channel faster than this always has
# slots (a polled device), whose skip is exact (daq/downtime.py).
RESTART_RATE = 10.0
RESTART_BURST = 100


def scan(db: sqlite3.Connection) -> tuple[dict[str, int], dict[str, int]]:
    """The seqs and last polled instants (SLOT + device -> epoch ms) an outbox holds: the
    ``seqs`` table completed by the rows committed after it was last written. Returns them
    and, per lane (table name), the last row id they account for."""
    seqs = dict(db.execute("SELECT channel, last FROM seqs"))
    got = db.execute("SELECT value FROM meta WHERE key='seqs_through'").fetchone()
    tops = {t: db.execute(f"SELECT COALESCE(MAX(id), 0) FROM {t}").fetchone()[0]
            for t in _T.values()}
    if got is None:  # a file of a version that wrote ``seqs`` with every commit
        return seqs, tops
    through = json.loads(got[0])
    for t in tops:  # ids go on above the rows the table accounts for, even when deleted
        tops[t] = max(tops[t], int(through.get(t, 0)))
    for lane, t in _T.items():
        for _, _, _, data, marks in db.execute(
                f"SELECT id, topic, n, data, marks FROM {t} WHERE id>? ORDER BY id",
                (int(through.get(t, 0)),)):
            for r in decode_row(lane, (0, "", 0, data)).readings():
                ch, seq = r.get("channel"), r.get("seq")
                if isinstance(ch, str) and isinstance(seq, int) and seq > seqs.get(ch, 0):
                    seqs[ch] = seq
            for k, v in (json.loads(marks) if marks else {}).items():
                key = k if k == AT else SLOT + k
                if v > seqs.get(key, 0):
                    seqs[key] = v
    return seqs, tops


@dataclass(frozen=True, slots=True)
class Row:
    """One stored row: ``n`` readings of one lane and topic, ``payload`` their JSON objects
    joined by commas (ready to go inside a message's ``readings`` array)."""

    id: int
    lane: int
    topic: str
    n: int
    payload: str

    def readings(self) -> list[dict[str, Any]]:
        return list(json.loads(f"[{self.payload}]"))


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


# A row's readings are deflated with this preset dictionary (zlib's FDICT): the keys and
# words every reading repeats, so a poll of a few readings compresses to a fraction of
# what it does alone. It is part of the file format: never change it, add a new one (a
# row's first byte names the format, an older zlib stream its dictionary by checksum).
# Rows without it (older files) still decode.
ZDICT = (b'"quality":"suspect","ts":"2025-01-01T00:00:00.000Z","flags":["not_finite",'
         b'"gap":{"first":"2025-01-01T00:00:00.000Z","last":"","count":1,"interval_s":'
         b'"reason":"daemon_not_running"},"raw":{"words":[,"sensor":"calibration":{"id":'
         b'"quality":"missing","ts":"2026-","quality":"bad","ts":"2026-,"seq":1},'
         b'{"device":"","channel":"","quantity":"water_level","value":1,"unit":"m",'
         b'"quality":"good","ts":"2026-12-01T12:00:00.000Z","seq":1},{"device":"')
_ZDICT_ID = zlib.adler32(ZDICT)


# The row format (first byte 1): raw deflate with ZDICT as its history, ended by a sync
# flush (byte-aligned, no final block), after the length of the text it holds. A batch of
# such rows inflates in one call, each behind a stored block holding ZDICT: the history
# every row was compressed against then stands right before it in one stream, so the
# publisher drains a batch of rows in one step of SQLite and one call of zlib
# (``Outbox.read_topics``), not one of each per row. Rows of older files
# (a zlib stream, first byte 0x78, with or without ZDICT) still decode, one by one.
_RAW = 1
_HEAD = struct.Struct("<BI")
Stored = tuple[int, str, int, bytes]  # a row as ``Outbox.read`` gives it: id, topic, n, JSON
_STORED_ZDICT = b"\x00" + struct.pack("<HH", len(ZDICT), len(ZDICT) ^ 0xFFFF) + ZDICT


def pack(text: str) -> bytes:
    raw = text.encode()
    c = zlib.compressobj(6, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, ZDICT)
    return _HEAD.pack(_RAW, len(raw)) + c.compress(raw) + c.flush(zlib.Z_SYNC_FLUSH)


def unpack_bytes(data: bytes) -> bytes:
    """A row's readings as UTF-8 JSON text (the objects joined by commas)."""
    if data[:1] == b"\x01":
        size = _HEAD.unpack_from(data)[1]
        text = zlib.decompressobj(-15, ZDICT).decompress(data[_HEAD.size:])
        if len(text) != size:
            raise zlib.error("row data ends early")
        return text
    if len(data) > 6 and data[1] & 0x20:  # FDICT: the dictionary's checksum follows
        if int.from_bytes(data[2:6], "big") != _ZDICT_ID:
            raise zlib.error("row compressed with an unknown dictionary")
        d = zlib.decompressobj(15, ZDICT)
        text = d.decompress(data)
        if not d.eof:
            raise zlib.error("row data ends early")
        return text
    return zlib.decompress(data)


def unpack(data: bytes) -> str:
    """A row's readings as text."""
    return unpack_bytes(data).decode()


# A batch for the publisher (``Outbox.read_topics``): every id in it, in order, and per
# topic (in topic order) the ids, reading counts and JSON texts of its rows in id order.
Text = bytes | memoryview
Topics = list[tuple[str, list[int], list[int], list[Text]]]


def _grouped(ids: str, ns: str, topics: str, heads: bytes,
             stream: bytes) -> tuple[list[int], Topics] | None:
    """``Outbox.read_topics`` from the columns SQLite concatenated in one step, rows in
    (topic, id) order, or None when they are not all of the current format or do not line
    up. Every step is one call into C for the whole batch: no Python loop per row."""
    idl, nl, tl = list(map(int, ids.split(","))), list(map(int, ns.split(","))), \
        topics.split("\0")
    count = len(idl)
    if len(heads) != _HEAD.size * count or not len(nl) == len(tl) == count or \
            heads[::_HEAD.size] != bytes([_RAW]) * count or tl != sorted(tl):
        return None
    d = zlib.decompressobj(-15)
    try:
        out = d.decompress(stream)
    except zlib.error:
        return None  # row by row, so the damaged row is the one that fails
    sizes = struct.unpack(f"<{'BI' * count}", heads)[1::2]
    if d.eof or d.unused_data or len(out) != sum(sizes) + len(ZDICT) * count:
        return None
    ends = itertools.accumulate(n + len(ZDICT) for n in sizes)
    view = memoryview(out)  # each row's text a view, not a copy, until its message
    texts: list[Text] = [view[e - n:e] for n, e in zip(sizes, ends, strict=True)]
    groups: Topics = []
    start = 0
    while start < count:
        topic = tl[start]
        end = bisect.bisect_right(tl, topic, start)
        gids = idl[start:end]
        if gids != sorted(gids):
            return None
        groups.append((topic, gids, nl[start:end], texts[start:end]))
        start = end
    return sorted(idl), groups


def decode_row(lane: Lane, r: tuple[int, str, int, bytes]) -> Row:
    """A stored row (id, topic, n, compressed data) as a :class:`Row`."""
    return Row(r[0], int(lane), r[1], r[2], unpack(r[3]))


SET_ASIDE_TOPIC = "event/outbox"


def salvage(path: str, error: str) -> dict[str, Any]:
    """What can still be read of a set-aside outbox, each part only if SQLite can read
    it: the devices' last polls, and per lane the readings it held (never delivered)
    with their time span and, per channel, the seqs they had."""
    size = sum(os.path.getsize(p) for p in (path, f"{path}-wal") if os.path.exists(p))
    info: dict[str, Any] = {"path": path, "size_bytes": size, "error": error,
                            "delivered": False, "readable": False, "last_polls": {}}
    try:
        db = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True)
    except sqlite3.Error:
        return info
    try:
        try:
            seqs = scan(db)[0]
        except (sqlite3.Error, ValueError, zlib.error):
            seqs = dict(db.execute("SELECT channel, last FROM seqs"))
        info["last_polls"] = {k.removeprefix(SLOT): int(v) for k, v in seqs.items()
                              if k.startswith(SLOT)}
        held: dict[str, Any] = {}
        for lane, t in _T.items():
            n, first, last = 0, "", ""
            chans: dict[str, tuple[int, int]] = {}
            for r in db.execute(f"SELECT id, topic, n, data FROM {t} ORDER BY id"):
                for p in decode_row(lane, r).readings():
                    n += 1
                    ts, ch, seq = str(p.get("ts")), str(p.get("channel")), p.get("seq")
                    first, last = min(first or ts, ts), max(last, ts)
                    if isinstance(seq, int):
                        lo, hi = chans.get(ch, (seq, seq))
                        chans[ch] = (min(lo, seq), max(hi, seq))
            held[lane.name.lower()] = {"readings": n, "first": first or None,
                                       "last": last or None,
                                       "seqs": {c: list(v) for c, v in chans.items()}}
        info["held"], info["readable"] = held, True
    except (sqlite3.Error, ValueError, zlib.error):
        pass  # what was read so far is kept
    finally:
        db.close()
    return info


def set_aside_record(info: dict[str, Any]) -> Reading:
    """The event saying an outbox was set aside and its content not delivered (README,
    MQTT contract; ``schemas/set_aside.json``)."""
    return Reading(device="daq", channel="daq.outbox", quantity="outbox_set_aside",
                   value=None, unit="", quality=Quality.MISSING, ts=datetime.now(UTC),
                   lane=Lane.ALARM, flags=("outbox_set_aside",), extra={"set_aside": info})


class Outbox:
    """Thread-safe; one connection guarded by a lock (SQLite serialises writers anyway)."""

    def __init__(self, path: str | Path, *, max_rows: int | None = None,
                 sync_interval: float = 0.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.set_aside: str | None = None  # where a damaged file went, for status
        aside: dict[str, Any] | None = None
        try:
            self._db = self._open()
        except sqlite3.OperationalError:
            raise  # locked, disk I/O, no permission: the file may be fine; never move it
        except sqlite3.DatabaseError as err:  # not a database, malformed, truncated
            self.set_aside = self._set_aside(err)
            aside = salvage(self.set_aside, f"{type(err).__name__}: {err}")
            self._db = self._open()
            # the devices' last polls, where they can be read: the first poll of each
            # then gives the downtime gap records from there (daq/downtime.py)
            self._db.executemany("INSERT OR REPLACE INTO seqs VALUES (?, ?)",
                                 [(SLOT + k, v) for k, v in aside["last_polls"].items()])
            # the seqs of the damaged file are lost: start above any counter it can have
            # held (one seq per second since 1970), so no key is ever given twice
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('seq_floor', ?)",
                             (str(int(time.time())),))
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('set_aside', ?)",
                             (self.set_aside,))
        self._seqs, self._flushed = scan(self._db)
        self._dirty: set[str] = set(self._seqs)  # not in ``seqs`` as it is on the disk
        self._unflushed = 0  # rows committed since ``seqs`` was last written
        self.slots: dict[str, float] = {k.removeprefix(SLOT): v / 1000 for k, v in
                                        self._seqs.items() if k.startswith(SLOT)}
        self._started: set[str] = set()  # channels given a seq since the outbox opened
        meta = dict(self._db.execute("SELECT key, value FROM meta"))
        self._seq_floor = int(meta.get("seq_floor", 0))
        self.restart_skip = self._restart_skip()
        self.set_aside = self.set_aside or meta.get("set_aside")
        self._depth = {lane: self._db.execute(f"SELECT COALESCE(SUM(n), 0) FROM {_T[lane]}")
                       .fetchone()[0] for lane in Lane}
        self.max_rows = max_rows
        self._top = {lane: self._flushed[_T[lane]] for lane in Lane}
        self._durable = dict(self._top)  # what a previous run committed is synced now
        self._sync_lock = threading.Lock()
        self.synced_at = time.monotonic()
        self.sync_interval = sync_interval
        self._wal_fd: int | None = None
        if aside is not None:  # said on the uplink, first of all, durably
            self.add([(SET_ASIDE_TOPIC, set_aside_record(aside))])
        self.sync()
        self.synced_at = -math.inf  # the first commit of this run is synced at once

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA page_size=512")  # small pages: less flash per commit
            db.execute("PRAGMA auto_vacuum=NONE")  # pointer-map pages cost flash per commit
            db.execute("PRAGMA secure_delete=OFF")  # zeroing freed pages is flash too
            db.execute("PRAGMA journal_mode=WAL")
            # NORMAL: a commit survives kill -9 at once; it is on the disk after sync(),
            # and the publisher reads no further than the last sync (see the module doc)
            db.execute("PRAGMA synchronous=NORMAL")
            new = not db.execute("SELECT 1 FROM sqlite_master").fetchone()
            db.executescript(_SCHEMA)
            if new:
                db.execute("INSERT INTO meta VALUES ('seqs_through', '{}')")
            if db.execute("PRAGMA quick_check(1)").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError("integrity check failed")
            _migrate(db)
        except BaseException:
            db.close()
            raise
        return db

    def _restart_skip(self) -> int:
        """The seqs each channel without a downtime skip jumps at its first reading."""
        if not any(not k.startswith(("#", SLOT)) for k in self._seqs) and not self._seq_floor:
            return 0  # a new outbox: nothing can have been published from it
        if AT not in self._seqs:  # a file of a version that kept no commit time
            return RESTART_BURST
        idle = max(time.time() - self._seqs[AT] / 1000, 0.0)
        return math.ceil(idle * RESTART_RATE) + RESTART_BURST

    def _set_aside(self, err: sqlite3.DatabaseError) -> str:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        target = self.path.with_name(f"{self.path.name}.damaged-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            src = Path(f"{self.path}{suffix}")
            if src.exists():
                os.replace(src, f"{target}{suffix}")
        log.error("outbox_damaged_set_aside", path=str(self.path), moved_to=str(target),
                  error=f"{type(err).__name__}: {err}",
                  hint="a new outbox was started; the old file is kept for inspection")
        return str(target)

    # -- accepting ------------------------------------------------------------------------

    def add(self, items: Sequence[tuple[str, Reading]], *,
            envelope: dict[str, str] | None = None, slots: dict[str, float] | None = None,
            skip: dict[str, int] | None = None) -> list[int]:
        """Commit readings (each with its topic) in one transaction; return their seqs.

        ``slots`` records each device's last polled instant (epoch s) with the readings,
        the start of the downtime a restart reports. ``skip`` gives channels whose seqs
        jump before their next reading: after a restart, the seqs the missing slots could
        have used (a restored state directory may already have sent them).
        """
        if not items:
            return []
        seqs: list[int] = []
        groups: dict[tuple[int, str], list[str]] = {}
        touched: dict[str, int] = {}
        skip = dict(skip or {})
        # seqs are taken under the lock: two writers (pipeline, GNSS solver) adding to one
        # channel at once must never be given the same seq
        with self._lock:
            for topic, reading in items:
                ch = reading.channel
                last = touched.get(ch, max(self._seqs.get(ch, 0), self._seq_floor))
                if ch in skip:
                    jump = skip.pop(ch)
                elif ch not in self._started and ch not in touched:
                    jump = self.restart_skip
                else:
                    jump = 0
                seq = last + jump + 1
                touched[ch] = seq
                payload = reading.to_payload(seq)
                if jump and "gap" in payload:
                    payload["gap"] = {**payload["gap"], "seq_skipped": [last + 1, seq - 1]}
                elif jump:
                    payload["seq_skipped"] = [last + 1, seq - 1]
                if envelope:
                    payload = {**envelope, **payload}
                groups.setdefault((int(reading.lane), topic), []).append(_encode(payload))
                seqs.append(seq)
            rows = [(lane, topic, len(texts), pack(",".join(texts)))
                    for (lane, topic), texts in groups.items()]
            marks = {k: round(v * 1000) for k, v in (slots or {}).items()}
            marks[AT] = round(time.time() * 1000)
            try:
                self._db.execute("BEGIN IMMEDIATE")
                top = dict(self._top)
                for i, (lane, topic, n, data) in enumerate(rows):
                    # ids given here, never reused while the process runs (a cursor may
                    # point past an emptied table); AUTOINCREMENT would cost a page
                    top[Lane(lane)] += 1
                    self._db.execute(
                        f"INSERT INTO {_T[Lane(lane)]}(id, topic, n, data, marks) "
                        "VALUES (?,?,?,?,?)", (top[Lane(lane)], topic, n, data,
                                               None if i else json.dumps(marks)))
                new = {**touched, **{k if k == AT else SLOT + k: v for k, v in marks.items()}}
                flush = self._unflushed + len(rows) >= FLUSH_ROWS
                if flush:
                    self._write_seqs_locked(new, top)
                self._db.execute("COMMIT")
            except BaseException:
                self._rollback_locked()
                raise
            self._seqs.update(new)
            self._started.update(touched)
            self._top = top
            if flush:
                self._flushed_locked()
            else:
                self._dirty.update(new)
                self._unflushed += len(rows)
            self.slots.update(slots or {})
            for lane, _, n, _ in rows:
                self._depth[Lane(lane)] += n
            if self.max_rows is not None and sum(self._depth.values()) > self.max_rows:
                self._evict_locked(sum(self._depth.values()) - self.max_rows)
        if any(r[0] != Lane.RAW for r in rows):
            self.sync()  # alarms and results leave at once
        else:
            self.sync_if_due()
        return seqs

    def sync_if_due(self) -> None:
        if self._top != self._durable and \
                time.monotonic() - self.synced_at >= self.sync_interval:
            self.sync()

    def sync(self) -> None:
        """Make every commit so far durable (fsync of the write-ahead log) and let the
        publisher read up to it."""
        with self._sync_lock:
            with self._lock:
                top = dict(self._top)
                if self._wal_fd is None:
                    try:
                        self._wal_fd = os.open(f"{self.path}-wal", os.O_RDONLY)
                    except FileNotFoundError:  # nothing written through the log yet
                        self._durable = top
                        return
            os.fsync(self._wal_fd)
            self._durable = top
            self.synced_at = time.monotonic()

    def _write_seqs_locked(self, new: dict[str, int], top: dict[Lane, int]) -> None:
        """Bring ``seqs`` up to date with every row up to ``top`` (inside a transaction,
        before rows are deleted: their readings then no longer say which seqs they took)."""
        entries = {k: self._seqs[k] for k in self._dirty} | new
        self._db.executemany("INSERT INTO seqs(channel, last) VALUES (?, ?) "
                             "ON CONFLICT(channel) DO UPDATE SET last = excluded.last",
                             list(entries.items()))
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('seqs_through', ?)",
                         (json.dumps({_T[lane]: top[lane] for lane in Lane}),))

    def _flushed_locked(self) -> None:
        self._dirty.clear()
        self._unflushed = 0

    def _rollback_locked(self) -> None:
        """Undo an open transaction; when BEGIN itself failed (database locked) there is
        none, and a bare ROLLBACK would raise and hide the real error."""
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def _evict_locked(self, excess: int) -> None:
        """Drop the oldest rows of the lowest lanes first; alarms are never evicted."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            if self._dirty:
                self._write_seqs_locked({}, self._top)
            gone: dict[Lane, int] = {}
            for lane in (Lane.RAW, Lane.RESULT):
                while excess > 0:
                    found = self._db.execute(
                        f"SELECT id, n FROM {_T[lane]} ORDER BY id LIMIT 256").fetchall()
                    if not found:
                        break
                    upto, n = 0, 0
                    for rid, k in found:
                        upto, n = rid, n + k
                        if n >= excess:
                            break
                    self._db.execute(f"DELETE FROM {_T[lane]} WHERE id<=?", (upto,))
                    gone[lane] = gone.get(lane, 0) + n
                    excess -= n
            for lane, n in gone.items():
                self._bump_locked(f"evicted_{lane.name.lower()}", n)
            self._db.execute("COMMIT")
        except BaseException:
            self._rollback_locked()
            raise
        self._flushed_locked()
        for lane, n in gone.items():
            self._depth[lane] -= n

    def _bump_locked(self, name: str, n: int) -> None:
        self._db.execute("INSERT INTO counters(name, value) VALUES (?, ?) ON CONFLICT(name) "
                         "DO UPDATE SET value = value + excluded.value", (name, n))

    def bump(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._bump_locked(name, n)

    # -- draining -------------------------------------------------------------------------

    def pending(self, lane: Lane, after_id: int, limit: int) -> list[Row]:
        """Rows of one lane after ``after_id``, oldest first."""
        return [Row(i, int(lane), t, n, p.decode()) for i, t, n, p in
                self.read(lane, after_id, limit)]

    def read(self, lane: Lane, after_id: int, limit: int) -> list[Stored]:
        """``pending`` as (id, topic, n, readings as UTF-8 JSON) tuples."""
        return sorted((i, topic, n, bytes(text)) for topic, ids, ns, texts in
                      self.read_topics(lane, after_id, limit)[1]
                      for i, n, text in zip(ids, ns, texts, strict=True))

    def read_topics(self, lane: Lane, after_id: int,
                    limit: int) -> tuple[list[int], Topics]:
        """The rows ``read`` gives, grouped by topic for the publisher's messages: every
        id in order, and per topic its rows' ids, reading counts and texts in id order.
        The publisher's path, which drains tens of thousands of rows a second."""
        args = (after_id, self._durable[lane], limit)
        with self._lock:  # one step of SQLite for the whole batch: one release of the GIL
            ids, ns, topics, heads, stream = self._db.execute(
                "SELECT group_concat(id), group_concat(n), group_concat(topic, char(0)), "
                "CAST(group_concat(substr(data, 1, 5), '') AS BLOB), "
                "CAST(group_concat(? || substr(data, 6), '') AS BLOB) FROM (SELECT * FROM "
                f"(SELECT * FROM {_T[lane]} WHERE id>? AND id<=? ORDER BY id LIMIT ?) "
                "ORDER BY topic, id)", (_STORED_ZDICT, *args)).fetchone()
        if ids is None:
            return [], []
        got = _grouped(ids, ns, topics, heads, stream)  # outside the lock: commits go on
        if got is not None:
            return got
        with self._lock:  # rows of an older format, or not as expected: one by one
            rows = self._db.execute(f"SELECT id, topic, n, data FROM {_T[lane]} WHERE id>? "
                                    "AND id<=? ORDER BY id LIMIT ?", args).fetchall()
        by: dict[str, tuple[list[int], list[int], list[Text]]] = {}
        for i, topic, n, data in rows:
            g = by.setdefault(topic, ([], [], []))
            g[0].append(i)
            g[1].append(n)
            g[2].append(unpack_bytes(data))
        return [r[0] for r in rows], [(t, *by[t]) for t in sorted(by)]

    def has_pending(self, lane: Lane, after_id: int) -> bool:
        """Whether ``pending`` would return anything (no query: the publisher asks often)."""
        return self._durable[lane] > after_id

    def ack_through(self, lane: Lane, last_id: int) -> int:
        """Delete every row of ``lane`` up to ``last_id`` (acknowledged by the broker) in
        one statement; returns how many readings went."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                if self._dirty:
                    self._write_seqs_locked({}, self._top)
                n = self._db.execute(f"SELECT COALESCE(SUM(n), 0) FROM {_T[lane]} "
                                     "WHERE id<=?", (last_id,)).fetchone()[0]
                self._db.execute(f"DELETE FROM {_T[lane]} WHERE id<=?", (last_id,))
                self._db.execute("COMMIT")
            except BaseException:
                self._rollback_locked()  # never leave a transaction open for the next add
                raise
            self._flushed_locked()
            self._depth[lane] -= n
            return int(n)

    def ack(self, rows: Sequence[Row]) -> int:
        """Acknowledge rows that are each the oldest of their lane (tests, tools)."""
        done = 0
        for lane in Lane:
            ids = [r.id for r in rows if r.lane == lane]
            if ids:
                done += self.ack_through(lane, max(ids))
        return done

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
        """Every row in the outbox, lane by lane in sending order (inspection, tests)."""
        with self._lock:
            return [decode_row(lane, r) for lane in Lane for r in self._db.execute(
                f"SELECT id, topic, n, data FROM {_T[lane]} ORDER BY id")]

    def all_readings(self) -> list[dict[str, Any]]:
        """Every reading in the outbox, in commit order (inspection and tests)."""
        return [p for row in self.all_rows() for p in row.readings()]

    def close(self) -> None:
        try:
            with self._lock:
                if self._dirty:  # spares the next start reading the rows since the last
                    self._db.execute("BEGIN IMMEDIATE")
                    self._write_seqs_locked({}, self._top)
                    self._db.execute("COMMIT")
                    self._flushed_locked()
        except (sqlite3.Error, OSError):
            self._rollback_locked()
        try:
            self.sync()
        except (sqlite3.Error, OSError):
            pass
        with self._lock:
            self._db.close()
            if self._wal_fd is not None:
                os.close(self._wal_fd)


def _migrate(db: sqlite3.Connection) -> None:
    """An outbox written by an older version (one row per reading in ``outbox``): its rows
    move into ``rows`` unchanged in order, in one transaction. Row tables without
    ``marks`` (their seqs table was written with every commit) get the column."""
    for t in _T.values():
        if "marks" not in {c[1] for c in db.execute(f"PRAGMA table_info({t})")}:
            db.execute(f"ALTER TABLE {t} ADD COLUMN marks TEXT")
    if not db.execute("SELECT 1 FROM sqlite_master WHERE name='outbox'").fetchone():
        return
    db.execute("BEGIN IMMEDIATE")
    old = db.execute("SELECT lane, topic, payload FROM outbox ORDER BY id").fetchall()
    for lane, topic, p in old:
        db.execute(f"INSERT INTO {_T[Lane(lane)]}(topic, n, data) VALUES (?,1,?)",
                   (topic, zlib.compress(p.encode())))
    db.execute("DROP TABLE outbox")
    db.execute("COMMIT")
    if old:
        log.info("outbox_migrated", rows=len(old))
