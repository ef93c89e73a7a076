"""A point's deformation series on disk: ``<state dir>/gnss_points/<point>.series.jsonl``.

One JSON object per line (:meth:`daq.gnss.solver.series.SeriesUpdate.to_dict` plus
``window_start``), appended by the solver thread, read by ``daq gnss series``. A session
solved again (after a crash) appears again: readers keep its last line. No numpy here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from daq.gnss.solver.series import SeriesUpdate


def history_path(points_dir: Path, point: str) -> Path:
    return points_dir / f"{point}.series.jsonl"


def append_history(points_dir: Path, point: str, u: SeriesUpdate, window_start: str) -> None:
    """One line per update; a re-solved session appears again (readers keep the last)."""
    points_dir.mkdir(parents=True, exist_ok=True)
    line = json.dumps({**u.to_dict(), "window_start": window_start}, allow_nan=False)
    with history_path(points_dir, point).open("a") as f:
        f.write(line + "\n")
        f.flush()


def read_history(points_dir: Path, point: str) -> tuple[list[dict[str, Any]], int]:
    """The point's updates in time order, the last of each session; and how many lines
    could not be read (a torn last line after a power cut)."""
    path = history_path(points_dir, point)
    by_session: dict[str, dict[str, Any]] = {}
    bad = 0
    with path.open() as f:
        for line in f:
            if not line.strip():
                continue
            try:
                d = json.loads(line)
                SeriesUpdate.from_dict(d)
            except (ValueError, KeyError, TypeError, IndexError):
                bad += 1
                continue
            by_session[str(d["session"])] = d
    return sorted(by_session.values(), key=lambda d: float(d["t_days"])), bad
