"""What a GNSS session holds (listing, summaries) and how sessions are named."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from daq.gnss.obs import GNSSTime

from . import file_format as sio

POINT_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
STAMP = "%Y%m%dT%H%MZ"
UNIX0 = datetime(1970, 1, 1)


def parse_session_id(session_id: str) -> tuple[str, datetime]:
    """``"P01/20220225T1200Z"`` → ("P01", its UTC start); ValueError if malformed."""
    point, _, stamp = session_id.partition("/")
    if not POINT_RE.match(point):
        raise ValueError(f"bad session id {session_id!r}: expected POINT/YYYYmmddTHHMMZ")
    try:
        return point, datetime.strptime(stamp, STAMP)
    except ValueError:
        raise ValueError(f"bad session id {session_id!r}: expected POINT/YYYYmmddTHHMMZ") \
            from None


@dataclass
class SessionInfo:
    """What a session holds. Times are naive UTC; ``gaps`` lists (from, to) of missing
    stretches between epochs longer than 1.5 nominal intervals."""

    id: str
    point: str
    start: datetime
    end: datetime
    state: str  # "open" or "closed"
    size: int = 0
    epochs: int = 0
    first: datetime | None = None
    last: datetime | None = None
    interval_s: float | None = None
    satellites: dict[str, int] = field(default_factory=dict)  # distinct per system
    mean_sats: float = 0.0
    gaps: list[tuple[datetime, datetime]] = field(default_factory=list)
    ephemerides: int = 0

    def to_json(self) -> dict[str, Any]:
        def iso(t: datetime | None) -> str | None:
            return t.isoformat() + "Z" if t else None
        return {"id": self.id, "point": self.point, "start": iso(self.start),
                "end": iso(self.end), "state": self.state, "size": self.size,
                "epochs": self.epochs, "first": iso(self.first), "last": iso(self.last),
                "interval_s": self.interval_s, "satellites": self.satellites,
                "mean_sats": round(self.mean_sats, 2), "ephemerides": self.ephemerides,
                "gaps": [[iso(a), iso(b)] for a, b in self.gaps]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SessionInfo:
        def dt(s: str | None) -> datetime | None:
            return datetime.fromisoformat(s[:-1]) if s else None
        return cls(d["id"], d["point"], dt(d["start"]) or UNIX0, dt(d["end"]) or UNIX0,
                   d["state"], d["size"], d["epochs"], dt(d["first"]), dt(d["last"]),
                   d["interval_s"], d["satellites"], d["mean_sats"],
                   [(dt(a) or UNIX0, dt(b) or UNIX0) for a, b in d["gaps"]],
                   d["ephemerides"])


def records(path: Path) -> list[tuple[bytes, bytes, int]]:
    with path.open("rb") as f:
        return list(sio.scan(f))


def summarise(path: Path, length_s: int) -> SessionInfo:
    """Scan a session file: epochs, satellites per system, time span, gaps.

    The session length is taken from the file's own meta record (``length_s`` if absent).
    """
    start = datetime.strptime(path.stem, STAMP)
    times: list[float] = []
    sats: dict[str, set[str]] = {}
    nsat = neph = 0
    for kind, payload, _end in records(path):
        if kind == b"S":
            length_s = int(json.loads(payload).get("seconds", length_s))
        elif kind == b"O":
            ep = sio.decode_epoch(payload)
            times.append(ep.time.gps_seconds)
            nsat += len(ep.sats)
            for s in ep.sats:
                sats.setdefault(s[0], set()).add(s)
        elif kind == b"N":
            neph += 1
    info = SessionInfo(f"{path.parent.name}/{path.stem}", path.parent.name, start,
                       start + timedelta(seconds=length_s),
                       "open" if path.suffix == ".part" else "closed", path.stat().st_size,
                       len(times), ephemerides=neph,
                       satellites={k: len(v) for k, v in sorted(sats.items())},
                       mean_sats=nsat / len(times) if times else 0.0)
    if times:
        utc = [GNSSTime.from_seconds(t).to_utc() for t in (times[0], times[-1])]
        info.first, info.last = utc
        if len(times) > 1:
            step = np.diff(np.array(times))
            info.interval_s = float(np.median(step))
            for k in np.flatnonzero(step > 1.5 * info.interval_s):
                a, b = (GNSSTime.from_seconds(times[i]).to_utc() for i in (k, k + 1))
                info.gaps.append((a, b))
    return info
