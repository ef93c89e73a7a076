"""GNSS session store: per monitoring point, observation epochs and broadcast ephemerides
appended as they arrive, kept on disk in sessions aligned to the UTC clock.

Layout: ``<root>/<point>/<YYYYmmddTHHMMZ>.part`` while a session is open, renamed to
``.ses`` when it closes, with a ``.json`` summary beside it. A session id is
``"<point>/<YYYYmmddTHHMMZ>"`` (its UTC start). The file format and why it is not SQLite:
:mod:`daq.gnss.sessions.file_format`.

- Sessions last ``session_hours`` (default 4; must divide 24 h) from 00:00 UTC on.
- A session closes when an epoch of a later session arrives or when :meth:`close_due` finds
  its end passed; ``on_close(info)`` is then called (the solver's hook) in the thread that
  closed the session, so hand long work to another thread. A failing hook is logged and
  counted, never raised.
- Crash safety: records are flushed as written and fsynced every ``fsync_interval_s`` and at
  close. On start, a torn tail of an open session is cut off (counted) and the session
  carries on.
- A new session starts with the latest ephemeris of every satellite seen before, so it can
  be solved on its own; repeated broadcasts of one ephemeris are stored once.
- Retention: closed sessions older than ``retention_days`` and, beyond
  ``max_total_bytes``, the oldest closed ones are deleted (counted). Open sessions never.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import structlog

from daq.gnss.obs import (
    Ephemeris,
    GlonassEphemeris,
    GNSSTime,
    NavData,
    ObsData,
    ObsEpoch,
    ObsHeader,
)
from daq.gnss.rinex.writer import write_nav, write_obs

from . import file_format as sio
from .info import (
    POINT_RE,
    STAMP,
    UNIX0,
    SessionInfo,
    parse_session_id,
    records,
    summarise,
)

log = structlog.get_logger("daq.gnss.sessions.store")
__all__ = ["SessionInfo", "SessionStore", "parse_session_id", "summarise"]


@dataclass
class _Open:
    point: str
    start: datetime
    end: datetime
    path: Path
    fh: BinaryIO
    last_time: float | None = None
    eph_keys: set[tuple[str, str, float]] = field(default_factory=set)
    synced: float = field(default_factory=time.monotonic)


class SessionStore:
    """Sessions of every monitoring point under ``root`` (thread-safe)."""

    def __init__(self, root: str | Path, *, session_hours: float = 4.0,
                 retention_days: float | None = None, max_total_bytes: int | None = None,
                 fsync_interval_s: float = 10.0,
                 on_close: Callable[[SessionInfo], None] | None = None,
                 clock: Callable[[], datetime] | None = None, readonly: bool = False) -> None:
        self.length = round(session_hours * 3600)
        if self.length <= 0 or 86400 % self.length:
            raise ValueError(f"session_hours={session_hours}: must divide 24 h")
        self.root, self.readonly = Path(root), readonly
        if not readonly:
            self.root.mkdir(parents=True, exist_ok=True)
        self.retention_days, self.max_total_bytes = retention_days, max_total_bytes
        self.fsync_interval_s, self.on_close = fsync_interval_s, on_close
        self.clock = clock or (lambda: datetime.now(UTC).replace(tzinfo=None))
        self.counters = dict.fromkeys(
            ("epochs", "ephemerides", "duplicate_ephemerides", "out_of_order", "late_epochs",
             "torn_bytes_dropped", "sessions_closed", "deleted_by_age", "deleted_by_size",
             "hook_errors", "sessions_set_aside"), 0)
        self._open: dict[str, _Open] = {}
        self._headers: dict[str, ObsHeader] = {}
        self._latest: dict[str, dict[str, Ephemeris]] = {}
        self._lock = threading.RLock()
        if not readonly:  # a reader (the CLI) must never cut what the daemon is writing
            self._recover()

    def _writable(self) -> None:
        if self.readonly:
            raise PermissionError("session store opened read-only")

    # --- paths ---------------------------------------------------------------------

    def _path(self, point: str, start: datetime, suffix: str) -> Path:
        return self.root / point / f"{start:{STAMP}}{suffix}"

    def _window(self, t: GNSSTime) -> datetime:
        secs = (t.to_utc() - UNIX0).total_seconds()
        return UNIX0 + timedelta(seconds=secs // self.length * self.length)

    def _recover(self) -> None:
        for part in sorted(self.root.glob("*/*.part")):
            good, torn = sio.valid_length(part)
            if torn:
                with part.open("r+b") as f:
                    f.truncate(good)
                self.counters["torn_bytes_dropped"] += torn
                log.warning("gnss_session_torn_tail_dropped", path=str(part), bytes=torn)
            if good == 0:
                part.unlink()

    # --- writing -------------------------------------------------------------------

    def set_header(self, point: str, header: ObsHeader) -> None:
        """Header (position, antenna, obs types) written into this and later sessions."""
        self._writable()
        with self._lock:
            self._headers[point] = header
            cur = self._open.get(point) or self._resume(point)
            if cur is not None:
                self._append(cur, b"H", sio.encode_header(header))

    def add_epoch(self, point: str, epoch: ObsEpoch) -> bool:
        """Append one epoch (GPST); False if it was dropped (late or out of order)."""
        self._writable()
        if not POINT_RE.match(point):
            raise ValueError(f"bad point name {point!r}")
        with self._lock:
            start = self._window(epoch.time)
            cur = self._open.get(point) or self._resume(point)
            if cur is not None and start < cur.start:
                self.counters["late_epochs"] += 1
                return False
            if cur is not None and start > cur.start:
                self._close(cur)
                cur = None
            if cur is None:
                if self._path(point, start, ".ses").exists():
                    self.counters["late_epochs"] += 1
                    return False
                cur = self._start(point, start)
            t = epoch.time.gps_seconds
            if cur.last_time is not None and t <= cur.last_time:
                self.counters["out_of_order"] += 1
                return False
            self._append(cur, b"O", sio.encode_epoch(epoch))
            cur.last_time = t
            self.counters["epochs"] += 1
            return True

    def add_ephemeris(self, point: str, eph: Ephemeris) -> bool:
        """Record a broadcast ephemeris; False if this session already has it."""
        self._writable()
        with self._lock:
            self._latest.setdefault(point, {})[eph.sat] = eph
            cur = self._open.get(point) or self._resume(point)
            if cur is None:
                return False  # kept in memory; seeds the next session
            return self._add_eph(cur, eph)

    def _add_eph(self, cur: _Open, eph: Ephemeris) -> bool:
        key = sio.ephemeris_key(eph)
        if key in cur.eph_keys:
            self.counters["duplicate_ephemerides"] += 1
            return False
        cur.eph_keys.add(key)
        self._append(cur, b"N", sio.encode_ephemeris(eph))
        self.counters["ephemerides"] += 1
        return True

    def _append(self, cur: _Open, kind: bytes, payload: bytes) -> None:
        cur.fh.write(sio.frame(kind, payload))
        cur.fh.flush()  # in the OS after every record: a killed process loses nothing
        now = time.monotonic()
        if now - cur.synced >= self.fsync_interval_s:
            os.fsync(cur.fh.fileno())
            cur.synced = now

    def _start(self, point: str, start: datetime) -> _Open:
        path = self._path(point, start, ".part")
        path.parent.mkdir(parents=True, exist_ok=True)
        cur = _Open(point, start, start + timedelta(seconds=self.length), path,
                    path.open("ab"))
        self._open[point] = cur
        self._append(cur, b"S", sio.encode_json({
            "point": point, "start": f"{start:{STAMP}}", "seconds": self.length,
            "format": sio.FORMAT_VERSION}))
        if point in self._headers:
            self._append(cur, b"H", sio.encode_header(self._headers[point]))
        # seed: the last closed session's ephemerides, overridden by newer ones in memory
        seed = {**self._ephemerides_of_last_session(point), **self._latest.get(point, {})}
        self._latest[point] = seed
        for eph in seed.values():
            self._add_eph(cur, eph)
        log.info("gnss_session_opened", point=point, start=start.isoformat())
        return cur

    def _resume(self, point: str) -> _Open | None:
        """Reopen the newest ``.part`` of ``point`` left by an earlier run, if any."""
        parts = sorted((self.root / point).glob("*.part")) if POINT_RE.match(point) else []
        if not parts:
            return None
        cur = self._reopen(parts[-1])
        self._open[point] = cur
        return cur

    def _reopen(self, path: Path) -> _Open:
        """An existing ``.part`` ready for appending, its last epoch and ephemerides known."""
        start = datetime.strptime(path.stem, STAMP)
        cur = _Open(path.parent.name, start, start + timedelta(seconds=self.length), path,
                    path.open("ab"))
        for kind, payload, _end in records(path):
            if kind == b"O":
                cur.last_time = sio.decode_epoch(payload).time.gps_seconds
            elif kind == b"N":
                cur.eph_keys.add(sio.ephemeris_key(sio.decode_ephemeris(payload)))
        return cur

    def _ephemerides_of_last_session(self, point: str) -> dict[str, Ephemeris]:
        files = sorted((self.root / point).glob("*.ses"))
        latest: dict[str, Ephemeris] = {}
        if files:
            for kind, payload, _end in records(files[-1]):
                if kind == b"N":
                    eph = sio.decode_ephemeris(payload)
                    latest[eph.sat] = eph
        return latest

    # --- closing -------------------------------------------------------------------

    def close_due(self, now: datetime | None = None) -> list[SessionInfo]:
        """Close every open session whose end has passed (``now`` naive UTC)."""
        self._writable()
        now = now or self.clock()
        closed = []
        with self._lock:
            for part in sorted(self.root.glob("*/*.part")):
                point = part.parent.name
                start = datetime.strptime(part.stem, STAMP)
                if start + timedelta(seconds=self.length) > now:
                    continue
                cur = self._open.get(point)
                if cur is None or cur.path != part:  # left by an earlier run
                    cur = self._reopen(part)
                closed.append(self._close(cur))
        return closed

    def _close(self, cur: _Open) -> SessionInfo:
        os.fsync(cur.fh.fileno())
        cur.fh.close()
        if self._open.get(cur.point) is cur:
            del self._open[cur.point]
        final = cur.path.with_suffix(".ses")
        os.replace(cur.path, final)
        info = summarise(final, self.length)
        tmp = final.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(info.to_json()))
        os.replace(tmp, final.with_suffix(".json"))
        _fsync_dir(final.parent)
        self.counters["sessions_closed"] += 1
        log.info("gnss_session_closed", session=info.id, epochs=info.epochs)
        if self.on_close is not None:
            try:
                self.on_close(info)
            except Exception as err:  # the hook's failure must not lose the session
                self.counters["hook_errors"] += 1
                log.error("gnss_session_hook_failed", session=info.id, error=repr(err))
        self.apply_retention()  # after the hook: the solver sees the session first
        return info

    def set_aside(self, point: str, why: str) -> Path | None:
        """Take ``point``'s open session out of the way, unsolved (``<start>.<why>``): its
        epochs were misdated (a wrong system clock); the file is kept for inspection."""
        self._writable()
        with self._lock:
            cur = self._open.pop(point, None) or self._resume(point)
            self._open.pop(point, None)
            if cur is None:
                return None
            os.fsync(cur.fh.fileno())
            cur.fh.close()
            dest = cur.path.with_suffix(f".{why}")
            os.replace(cur.path, dest)
            self.counters["sessions_set_aside"] += 1
            log.warning("gnss_session_set_aside", point=point, path=str(dest), why=why)
            return dest

    def close(self) -> None:
        """Flush and release open files at shutdown; open sessions stay open on disk."""
        with self._lock:
            for cur in list(self._open.values()):
                os.fsync(cur.fh.fileno())
                cur.fh.close()
            self._open.clear()

    # --- reading -------------------------------------------------------------------

    def list(self, point: str | None = None) -> list[SessionInfo]:
        """Every session (of ``point``), oldest first."""
        with self._lock:
            for cur in self._open.values():
                cur.fh.flush()
            out = []
            for path in sorted(self.root.glob(f"{point or '*'}/*.*")):
                if path.suffix == ".part":
                    out.append(summarise(path, self.length))
                elif path.suffix == ".ses":
                    out.append(self._closed_info(path))
            return sorted(out, key=lambda i: (i.start, i.point))

    def _closed_info(self, ses: Path) -> SessionInfo:
        """The ``.json`` summary of a closed session, or (missing, empty or cut by a power
        cut) the session file itself scanned again."""
        try:
            return SessionInfo.from_json(json.loads(ses.with_suffix(".json").read_text()))
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            return summarise(ses, self.length)

    def find(self, session_id: str) -> Path:
        """Path of a session's file; ValueError if malformed, KeyError if unknown."""
        point, start = parse_session_id(session_id)
        for suffix in (".ses", ".part"):
            if (p := self._path(point, start, suffix)).exists():
                return p
        raise KeyError(session_id)

    def load(self, session_id: str, systems: str | None = None) -> tuple[ObsData, NavData]:
        """Observations and ephemerides of one session, ready for a solver or export;
        ``systems`` (e.g. "GC"): only those satellites and the codes they have (a solve
        of those systems gives the same answer on less memory)."""
        with self._lock:
            path = self.find(session_id)
            if (cur := self._open.get(path.parent.name)) is not None:
                cur.fh.flush()
            header, epochs, nav = ObsHeader(marker_name=path.parent.name), [], NavData()
            shared: dict[Any, Any] = {}
            for kind, payload, _end in records(path):
                if kind == b"H":
                    header = sio.decode_header(payload)
                elif kind == b"O":
                    ep = sio.decode_epoch(payload, shared)
                    epochs.append(ep if systems is None
                                  else sio.keep_systems(ep, systems, shared))
                elif kind == b"N":
                    nav.ephemerides.append(sio.decode_ephemeris(payload))
            return ObsData(header, epochs), nav

    def export(self, session_id: str, out_dir: str | Path) -> tuple[Path, Path]:
        """Write a session as RINEX 3.04 observation + mixed navigation files."""
        obs, nav = self.load(session_id)
        point, start = parse_session_id(session_id)
        for eph in nav.ephemerides:  # RTKLIB needs GLONASS channels in the obs header
            if isinstance(eph, GlonassEphemeris):
                obs.header.glonass_slots.setdefault(eph.sat, eph.k)
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        stem = f"{point}_{start:{STAMP}}"
        write_obs(obs, out / f"{stem}.obs")
        write_nav(nav, out / f"{stem}.nav")
        return out / f"{stem}.obs", out / f"{stem}.nav"

    # --- retention -----------------------------------------------------------------

    def apply_retention(self, now: datetime | None = None) -> tuple[int, int]:
        """Delete closed sessions by age, then by total size; returns (by age, by size)."""
        self._writable()
        now = now or self.clock()
        with self._lock:
            closed = sorted(self.root.glob("*/*.ses"), key=lambda p: (p.stem, p.parent.name))
            by_age = by_size = 0
            if self.retention_days is not None:
                limit = now - timedelta(days=self.retention_days)
                for p in list(closed):
                    end = datetime.strptime(p.stem, STAMP) + timedelta(seconds=self.length)
                    if end < limit:
                        _delete(p)
                        closed.remove(p)
                        by_age += 1
            if self.max_total_bytes is not None:
                total = sum(p.stat().st_size for p in self.root.glob("*/*.*"))
                while closed and total > self.max_total_bytes:
                    p = closed.pop(0)
                    total -= _delete(p)
                    by_size += 1
            self.counters["deleted_by_age"] += by_age
            self.counters["deleted_by_size"] += by_size
            if by_age or by_size:
                log.info("gnss_sessions_deleted", by_age=by_age, by_size=by_size)
            return by_age, by_size


def _delete(ses: Path) -> int:
    freed = 0
    for p in (ses, ses.with_suffix(".json")):
        if p.exists():
            freed += p.stat().st_size
            p.unlink()
    return freed


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
