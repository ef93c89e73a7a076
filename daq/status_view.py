"""``daq status`` for a technician: the answers first, then the tables.

What is quarantined; per device the last good reading, its errors by kind and the
completeness over the last 24 h; the outbox's depth and the age of its oldest unsent
reading; the broker link with its last disconnect reason and how long it has been down;
the clock's sync state. Fields this module does not know (counters added later to the
status file) are shown generically, by name, so nothing in the file is hidden.
"""

from __future__ import annotations

import difflib
from datetime import UTC, datetime
from typing import Any

from .model import parse_ts
from .tables import render

_DEVICE_KNOWN = {"name", "driver", "interval", "up", "polls", "failures", "gaps", "skipped",
                 "consecutive_failures", "last_ok", "last_error", "last_values", "backoff"}
_ERROR_FIELDS = {"no_response": "no response", "protocol_errors": "protocol",
                 "driver_errors": "driver"}
_OUTBOX_KNOWN = {"depth", "cap_rows", "counters", "accepted"}
_BROKER_KNOWN = {"configured", "connected", "since", "last_error", "connects",
                 "messages_sent", "readings_acked", "inflight", "broker", "extra"}


def _devices(st: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(b["name"], d) for b in st.get("buses", []) for d in b.get("devices", [])]


def unknown_name(st: dict[str, Any], device: str | None, sensor: str | None) -> str | None:
    """The error for a --device/--sensor that names nothing, with a did-you-mean."""
    quarantined = {p["path"].split(".")[1] if p["path"].startswith("sensors.")
                   else p["path"].split(".")[3] for p in st.get("quarantined", [])
                   if p["path"].count(".") >= 1}
    checks = (("device", device, {d["name"] for _, d in _devices(st)}),
              ("sensor", sensor, set(st.get("sensor_ids") or ()) | {
                  ch.split(".")[0] for ch in st.get("sensor_values", {})}))
    for what, name, known in checks:
        if name is None or name in known or name in quarantined:
            continue
        close = difflib.get_close_matches(name, sorted(known | quarantined), 3, 0.5)
        hint = ("did you mean " + " or ".join(repr(c) for c in close) + "?") if close else (
            f"{what}s: " + (", ".join(sorted(known)[:20]) or "none"))
        return f"no {what} {name!r} in the running daemon; {hint}"
    return None


def _ago(ts: str | None, now: datetime) -> str:
    if not ts:
        return "-"
    s = (now - parse_ts(ts)).total_seconds()
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h" if s < 172800 else f"{s / 86400:.1f} d"


def _extra(d: dict[str, Any], known: set[str]) -> str:
    """Unknown fields, by name: numbers and flat dicts of numbers (counters by kind)."""
    parts = []
    for k, v in sorted(d.items()):
        if k in known or v in (None, 0, {}, [], ""):
            continue
        if isinstance(v, dict):
            inner = ", ".join(f"{ik} {iv}" for ik, iv in sorted(v.items())
                              if iv not in (0, None))
            if inner:
                parts.append(f"{k}: {inner}")
        elif not isinstance(v, list):
            parts.append(f"{k} {v}")
    return "; ".join(parts)


def _errors(d: dict[str, Any]) -> str:
    kinds = [f"{label} {d[k]}" for k, label in _ERROR_FIELDS.items() if d.get(k)]
    other = d.get("failures", 0) - sum(d.get(k, 0) for k in _ERROR_FIELDS)
    if other > 0:
        kinds.append(f"other {other}")
    extra = _extra(d, _DEVICE_KNOWN | set(_ERROR_FIELDS))
    return ", ".join(kinds) + ("; " if kinds and extra else "") + extra or "-"


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n - 1] + "…"


def _head(st: dict[str, Any], now: datetime) -> list[str]:
    state = "running" if st["running"] else f"NOT RUNNING (status {st['age_s']} s old)"
    out = [f"daq {st['version']} pid {st['pid']} — site {st['site']} rtu {st['rtu']} "
           f"— {state}, since {st['started']} (up {_ago(st['started'], now)})"]
    q = st.get("quarantined") or []
    if q:
        out.append(f"QUARANTINED: {len(q)} problem(s) kept out of acquisition:")
        out.extend(f"  - {p['path']}" + (f" (line {p['line']})" if p.get("line") else "")
                   + f": {p['message']}" + (f" — {p['hint']}" if p.get("hint") else "")
                   for p in q)
    else:
        out.append("quarantined: nothing")
    b = st["broker"]
    if not b.get("configured"):
        out.append("broker: none configured — readings are kept in the outbox")
    else:
        extra = b.get("extra") or {}
        if b["connected"]:
            line = f"broker {b['broker']}: connected since {b['since']}"
        else:
            down = st.get("broker_down_since") or extra.get("disconnected_at")
            line = f"broker {b['broker']}: DOWN" + (
                f" since {down} ({_ago(down, now)})" if down else "")
        if extra.get("last_disconnect"):
            line += (f" — last disconnect: {extra['last_disconnect']} at "
                     f"{extra.get('disconnected_at', '?')}")
        if b["last_error"]:
            line += f" — last error: {b['last_error']}"
        line += f" — {b['readings_acked']} readings acknowledged, {b['connects']} connect(s)"
        more = _extra({**b, **{k: v for k, v in extra.items() if k not in (
            "last_disconnect", "disconnected_at")}}, _BROKER_KNOWN)
        out.append(line + (f" — {more}" if more else ""))
    ob = st["outbox"]
    depth = ob["depth"]
    oldest = st.get("outbox_oldest_unsent")
    evicted = sum(v for k, v in ob["counters"].items() if k.startswith("evicted"))
    line = (f"outbox: {sum(depth.values())} unsent (alarm {depth['alarm']}, result "
            f"{depth['result']}, raw {depth['raw']}) of cap {ob['cap_rows']}; oldest unsent "
            + (f"{oldest} ({_ago(oldest, now)} old)" if oldest else "-")
            + f"; evicted {evicted}")
    counters = _extra(ob["counters"], {k for k in ob["counters"] if k.startswith("evicted")})
    more = _extra(ob, _OUTBOX_KNOWN)
    out.append(line + (f"; {counters}" if counters else "") + (f"; {more}" if more else ""))
    fault = ob.get("fault")
    if fault:
        out.append(f"outbox: COMMITS FAILING since {fault['since']}: {fault['error']} — "
                   f"{fault['held_in_memory']} readings held in memory, not yet accepted")
    if ob.get("set_aside"):
        out.append(f"outbox: a damaged file was set aside as {ob['set_aside']}")
    ack_error = (b.get("extra") or {}).get("ack_error") if b.get("configured") else None
    if ack_error:
        out.append(f"outbox: acknowledgements cannot be recorded: {ack_error} — "
                   "acknowledged readings stay in the outbox and may be sent again")
    clock = st.get("clock") or {"synchronised": st.get("clock_synchronised")}
    verdict = {True: "synchronised", False: "NOT synchronised", None: "unknown"}[
        clock.get("synchronised")]
    detail = ", ".join(f"{k.removesuffix('_ms').replace('_', ' ')} {v}"
                       + (" ms" if k.endswith("_ms") else "") for k, v in clock.items()
                       if k != "synchronised" and v is not None)
    out.append(f"clock: {verdict}" + (f" ({detail})" if detail else ""))
    return out


def show_status(st: dict[str, Any], device: str | None = None,
                sensor: str | None = None, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    out = _head(st, now)
    comp = st.get("completeness_24h") or {}
    rows = []
    for bus, d in _devices(st):
        if device and d["name"] != device:
            continue
        up = {True: "up", False: "DOWN", None: "waiting"}[d["up"]]
        c = comp.get(d["name"]) or {}
        ratio = (f"{c['ratio'] * 100:.1f} % of {c['expected']}"
                 if c.get("ratio") is not None else "-")
        rows.append([bus, d["name"], d["driver"], up, d["polls"], ratio, d["gaps"],
                     d.get("skipped", 0), d["last_ok"], _ago(d["last_ok"], now), _errors(d),
                     _clip(d["last_error"] or "", 70 if not device else 400)])
    out += [f"bus {b['name']} ({b.get('url', '')}): NOT OPEN — {b.get('error') or ''}"
            for b in st.get("buses", []) if not b.get("open", True) and b.get("error")]
    out += ["", render(["bus", "device", "driver", "state", "polls", "complete 24 h",
                        "gaps", "skipped", "last good (UTC)", "ago", "errors by kind",
                        "last error"], rows)]
    if device:
        for _, d in _devices(st):
            if d["name"] == device:
                out += ["", render(["channel", "value", "unit", "quality"],
                                   [[ch, v["value"], v["unit"], v["quality"]]
                                    for ch, v in d["last_values"].items()])]
                counters = (st.get("driver_counters") or {}).get(device)
                if counters:
                    out.append(f"driver counters: {_extra(counters, set())}")
    if st.get("gnss"):
        from .status import _gnss_table

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
            out.append(f"no values from sensor {sensor!r} yet (quarantined or its device "
                       "has not answered)")
    elif values and not device:
        out.append(f"\n{len(values)} sensor channels; `daq status --sensor ID` shows one")
    if st.get("processing"):
        from .status import _processing_lines

        out.extend(["", *_processing_lines(st["processing"], sensor)])
    return "\n".join(out)
