"""A deformation series as a terminal chart (plain text; ANSI colours when asked).

One chart per dam axis: time left to right, millimetres bottom to top. ``o`` a session's
own (raw) displacement, ``*`` the filtered value at a session and ``-`` the filtered line
between sessions, ``:`` its ±2σ band; on the line under
the chart ``S`` a step, ``J`` a held jump, ``X`` an outlier dropped, ``x`` a session
without a fix or rejected, ``?`` sessions missing before this one. Pure functions.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

AXES = ("along", "downstream", "vertical")
_UNIX0 = datetime(1970, 1, 1, tzinfo=UTC)
_COLOURS = {"o": "36", "*": "1;33", "-": "33", ":": "2", "S": "1;31", "J": "31", "X": "35",
            "x": "31", "?": "33"}


def utc_of(t_days: float) -> datetime:
    return _UNIX0 + timedelta(seconds=round(t_days * 86400.0))


def _marker(row: dict[str, Any]) -> str:
    ev = row.get("events") or []
    for code, name in (("S", "step"), ("J", "jump"), ("X", "outlier"), ("x", "no_fix"),
                       ("x", "session_rejected"), ("?", "sessions_missing")):
        if name in ev:
            return code
    return ""


def _paint(ch: str, colour: bool) -> str:
    if not colour or ch not in _COLOURS:
        return ch
    return f"\x1b[{_COLOURS[ch]}m{ch}\x1b[0m"


def chart(rows: list[dict[str, Any]], axis: int, width: int = 72, height: int = 14,
          colour: bool = False) -> str:
    """The chart of one axis (0 along, 1 downstream, 2 vertical) of ``rows`` (history
    entries in time order)."""
    width, height = max(width, 10), max(height, 4)
    ts = [float(r["t_days"]) for r in rows]
    t0, t1 = (min(ts), max(ts)) if ts else (0.0, 1.0)
    span = (t1 - t0) or 1.0

    def col(t: float) -> int:
        return min(width - 1, round((t - t0) / span * (width - 1)))

    values: list[float] = []
    for r in rows:
        if r.get("raw_mm") is not None:
            values.append(float(r["raw_mm"][axis]))
        if r.get("displacement_mm") is not None:
            f, s = float(r["displacement_mm"][axis]), float(r["sigma_mm"][axis])
            values += [f - 2 * s, f + 2 * s]
    lo, hi = (min(values), max(values)) if values else (-1.0, 1.0)
    if hi - lo < 1.0:
        mid = (hi + lo) / 2
        lo, hi = mid - 0.5, mid + 0.5
    pad = 0.05 * (hi - lo)
    lo, hi = lo - pad, hi + pad

    def line(v: float) -> int:
        return min(height - 1, max(0, round((hi - v) / (hi - lo) * (height - 1))))

    grid = [[" "] * width for _ in range(height)]
    marks = [" "] * width
    for c, f, s in _line(rows, axis, col, width):
        for y in range(line(f + 2 * s), line(f - 2 * s) + 1):
            if grid[y][c] == " ":
                grid[y][c] = ":"
        grid[line(f)][c] = "-"
    for r in rows:                       # line and points over the band
        c = col(float(r["t_days"]))
        if r.get("displacement_mm") is not None:
            grid[line(float(r["displacement_mm"][axis]))][c] = "*"
        if r.get("raw_mm") is not None:
            grid[line(float(r["raw_mm"][axis]))][c] = "o"
        m = _marker(r)
        if m and (marks[c] == " " or m == "S"):
            marks[c] = m
    label_rows = {0, height - 1, (height - 1) // 2}
    out = [f"{AXES[axis]} (mm)"]
    for y in range(height):
        v = hi - y * (hi - lo) / (height - 1)
        label = f"{v:8.1f} |" if y in label_rows else "         |"
        out.append(label + "".join(_paint(ch, colour) for ch in grid[y]))
    out.append("         +" + "-" * width)
    out.append("          " + "".join(_paint(ch, colour) for ch in marks).rstrip())
    if ts:
        a, b = f"{utc_of(t0):%Y-%m-%d %H:%M}", f"{utc_of(t1):%Y-%m-%d %H:%M} UTC"
        out.append("          " + a + " " * max(1, width - len(a) - len(b)) + b)
    return "\n".join(out)


def _line(rows: list[dict[str, Any]], axis: int, col: Any, width: int
          ) -> list[tuple[int, float, float]]:
    """(column, filtered, σ) for every column from the first to the last filtered session,
    linear between sessions, so the line and band read as a trend."""
    pts = [(col(float(r["t_days"])), float(r["displacement_mm"][axis]),
            float(r["sigma_mm"][axis])) for r in rows if r.get("displacement_mm") is not None]
    out: list[tuple[int, float, float]] = []
    for (c0, f0, s0), (c1, f1, s1) in itertools.pairwise(pts):
        for c in range(c0, c1):
            a = (c - c0) / (c1 - c0)
            out.append((c, f0 + a * (f1 - f0), s0 + a * (s1 - s0)))
    if pts:
        out.append(pts[-1])
    return [p for p in out if 0 <= p[0] < width]


def legend() -> str:
    return ("o session (raw)   * - filtered   : ±2σ band   "
            "S step  J jump held  X outlier dropped  x no fix/rejected  ? sessions missing")


def latest(rows: list[dict[str, Any]]) -> str:
    """One line per axis: the last filtered value, velocity and their σ."""
    last = next((r for r in reversed(rows) if r.get("displacement_mm") is not None), None)
    if last is None:
        return "no filtered value yet (no fixed session)"
    lines = [f"last filtered ({last['session']}, {last['status']}):"]
    for i, name in enumerate(AXES):
        d, s = last["displacement_mm"][i], last["sigma_mm"][i]
        v, sv = last["velocity_mm_day"][i], last["sigma_velocity_mm_day"][i]
        lines.append(f"  {name:<10} {d:+8.2f} ± {s:.2f} mm   velocity {v:+7.3f} ± "
                     f"{sv:.3f} mm/day")
    return "\n".join(lines)

