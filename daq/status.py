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
        return None, f"no status file at {path}: is the daemon running with this state dir?"
    except (OSError, ValueError) as err:
        return None, f"cannot read {path}: {err}"
    age = time.time() - parse_ts(status["updated"]).timestamp()
    status["age_s"] = round(age, 1)
    # on flash the file is rewritten on a change of state or once a minute, not every 2 s
    fresh = age < max(STALE_AFTER_S, 2 * float(status.get("status_interval_s", 2.0)) + 5)
    status["running"] = _pid_alive(int(status["pid"])) and fresh
    return status, None


def show_status(st: dict[str, Any], device: str | None = None,
                sensor: str | None = None) -> str:
    out = []
    state = "running" if st["running"] else f"NOT RUNNING (status {st['age_s']} s old)"
    out.append(f"daq {st['version']} pid {st['pid']} — site {st['site']} rtu {st['rtu']} "
               f"— {state}, since {st['started']}")
    b = st["broker"]
    if not b.get("configured"):
        out.append("broker: none configured — readings are kept in the outbox")
    else:
        link = "connected" if b["connected"] else "DOWN"
        out.append(f"broker {b['broker']}: {link}" + (f" since {b['since']}" if b["since"]
                                                       else "")
                   + (f" — last error: {b['last_error']}" if b["last_error"] else "")
                   + f" — {b['readings_acked']} readings acknowledged")
    ob = st["outbox"]
    depth = ob["depth"]
    out.append(f"outbox: {sum(depth.values())} buffered (alarm {depth['alarm']}, result "
               f"{depth['result']}, raw {depth['raw']}) of cap {ob['cap_rows']}; "
               f"evicted {sum(v for k, v in ob['counters'].items() if k.startswith('evicted'))}")
    fault = ob.get("fault")
    if fault:
        out.append(f"outbox: COMMITS FAILING since {fault['since']}: {fault['error']} — "
                   f"{fault['held_in_memory']} readings held in memory, not yet accepted")
    if ob.get("set_aside"):
        out.append(f"outbox: a damaged file was set aside as {ob['set_aside']}")
    ack_error = b.get("extra", {}).get("ack_error") if b.get("configured") else None
    if ack_error:
        out.append(f"outbox: acknowledgements cannot be recorded: {ack_error} — "
                   "acknowledged readings stay in the outbox and may be sent again")
    clock = {True: "synchronised", False: "NOT synchronised", None: "unknown"}
    out.append(f"clock: {clock[st.get('clock_synchronised')]}")
    rows = []
    for bus in st["buses"]:
        for d in bus["devices"]:
            if device and d["name"] != device:
                continue
            up = {True: "up", False: "DOWN", None: "waiting"}[d["up"]]
            rows.append([bus["name"], d["name"], d["driver"], up, d["polls"], d["failures"],
                         d["gaps"], d["last_ok"], d["last_error"] or ""])
    out.append("")
    out.append(render(["bus", "device", "driver", "state", "polls", "fail", "gaps",
                       "last ok (UTC)", "last error"], rows))
    if device:
        for bus in st["buses"]:
            for d in bus["devices"]:
                if d["name"] == device:
                    out.append("")
                    out.append(render(["channel", "value", "unit", "quality"],
                                      [[ch, v["value"], v["unit"], v["quality"]]
                                       for ch, v in d["last_values"].items()]))
    if st.get("gnss"):
        out.extend(["", _gnss_table(st["gnss"])])
    values = st.get("sensor_values", {})
    if sensor:
        chosen = {ch: v for ch, v in values.items() if ch.split(".")[0] == sensor}
        out.append("")
        if chosen:
            out.append(render(["channel", "value", "unit", "quality", "time (UTC)"],
                              [[ch, v["value"], v["unit"], v["quality"], v["ts"]]
                               for ch, v in sorted(chosen.items())]))
        else:
            known = sorted({ch.split(".")[0] for ch in values})
            out.append(f"no values from sensor {sensor!r} yet; sensors with values: "
                       + (", ".join(known) or "none"))
    elif values and not device:
        out.append(f"\n{len(values)} sensor channels; `daq status --sensor ID` shows one")
    return "\n".join(out)


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
