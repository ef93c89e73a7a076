"""``daq status``: read the running daemon's status file and show it to a technician."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from .model import parse_ts
from .tables import render

STALE_AFTER_S = 10.0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_status(state_dir: Path) -> tuple[dict[str, Any] | None, str | None]:
    path = state_dir / "status.json"
    try:
        status = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        from .access import missing_dir

        return None, (f"no status file at {path}{missing_dir(path)}: is the daemon running "
                      "with this state dir?")
    except PermissionError:
        from .access import denied

        return None, f"cannot read the daemon's status {path}: {denied(path)}"
    except (OSError, ValueError) as err:
        return None, f"cannot read {path}: {err}"
    age = time.time() - parse_ts(status["updated"]).timestamp()
    status["age_s"] = round(age, 1)
    # on flash the file is rewritten on a change of state or once a minute, not every 2 s
    fresh = age < max(STALE_AFTER_S, 2 * float(status.get("status_interval_s", 2.0)) + 5)
    status["running"] = _pid_alive(int(status["pid"])) and fresh
    return status, None


def _processing_lines(p: dict[str, Any], sensor: str | None) -> list[str]:
    """The open window of each chain (one sensor's with --sensor) and today's FR; while
    the kernels load, since when; if they failed to, the error."""
    state = p.get("state")
    if state == "loading":
        return [f"processing: loading the kernels since {p['since']} (chained readings "
                "are held until they are ready)"]
    if state == "failed":
        return [f"processing: FAILED to load since {p['since']}: {p['error']}",
                "  chained readings are published unprocessed; see daq check"]
    out = []
    if sensor:
        rows = []
        for ch, c in sorted(p.get("chains", {}).items()):
            if ch.split(".")[0] != sensor and ch.split("/")[0] != sensor:
                continue
            for label, w in c["windows"].items():
                if w.get("start") is None:
                    rows.append([f"{ch}/{label}", "-", "", "", "", "", "", ""])
                    continue
                comp = w["completeness"]
                rows.append([f"{ch}/{label}", f"{w['start']} → {w['end']}",
                             f"{w['n_valid']}/{w['n_expected']}",
                             "" if comp is None else f"{100 * comp:.1f} %",
                             w["mean"], w["min"], w["max"], " ".join(w["flags"])])
        if rows:
            out.append(render(["window", "open (UTC)", "n/expected", "complete", "mean",
                               "min", "max", "flags"], rows))
    today = p.get("today")
    if today and today.get("fr") is not None:
        out.append(f"today ({today['date']}, day from {today['day_start_hour']:g}:00 "
                   f"{today['timezone']}): missing rate {100 * today['fr']:.2f} % "
                   f"({today['missing']} of {today['expected']} expected so far)")
        for name, u in sorted(today["units"].items()):
            rate = "-" if u["online_rate"] is None else f"{100 * u['online_rate']:.1f} %"
            out.append(f"  unit {name}: online {rate}, failures {u['failures']}")
    return out


def _gnss_table(g: dict[str, Any]) -> str:
    """Receivers (what each delivered) and monitoring points (their last session)."""
    streams = render(
        ["gnss stream", "point", "port", "bytes", "frames", "epochs", "dropped",
         "decode errors", "last epoch (UTC)", "session"],
        [[s["name"], s["point"], "open" if s["open"] else f"DOWN {s['error'] or ''}",
          s["bytes"], s["frames"], s["epochs"], s["epochs_dropped"],
          sum(s["decode_errors"].values()), s["last_epoch"] or "-", s["session"] or "-"]
         for s in g["streams"]])
    rows = []
    for name, p in g["points"].items():
        last = p.get("last") or {}
        d = last.get("displacement_mm") or {}
        rows.append([name, last.get("id", "-"), last.get("verdict", "-"), last.get("ratio"),
                     " / ".join(f"{d[k]:+.1f}" for k in ("along", "downstream", "vertical"))
                     if d else "-"])
    points = render(["gnss point", "last session", "verdict", "ratio",
                     "along / downstream / vertical mm"], rows)
    waiting = f"\nwaiting for a reference session: {', '.join(g['waiting'])}" \
        if g.get("waiting") else ""
    return f"{streams}\n\n{points}{waiting}"
