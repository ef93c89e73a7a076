"""The ``processing`` config section: chains per channel, checked by ``daq check``.

Imports no NumPy or Numba: checking a config must not load them.

.. code-block:: yaml

    processing:
      timezone: Asia/Shanghai
      day_start: 8              # the hydrological day runs 08:00–08:00 local time
      report: true              # a daily completeness report (report/daily)
      chains:
        L1.level:               # a published channel: "<sensor>.<output>" or "device/ch"
          despike: {window: 7, threshold: 3, min_deviation: 0.05}
          stuck: {tolerance: 0.0005, samples: 300}
          summaries: [10min]
          raw: decimate          # keep | decimate | drop, once summarised
          decimate: 60
        R1.rainfall:
          totals: [1h, 1d]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..schema import MISSING, Ctx, Field, ListOf, MapOf, Schema, join, parse_duration

DAY = 86400.0
_NAME = r"[A-Za-z0-9_][A-Za-z0-9_.\-]*"
CHANNEL_NAME = rf"^{_NAME}(/{_NAME})?$"  # "L1.level" or "device/channel"


class PeriodList(ListOf):
    """A list of window lengths (``[10min]``, ``[1h, 1d]``): each must divide a day. A
    problem carries the line of its own item."""

    def check(self, value: Any, path: str, line: int | None, ctx: Ctx) -> Any:
        if value is None:
            return []
        if not isinstance(value, list):
            ctx.add(path, f"expected a list, got {type(value).__name__}", line)
            return MISSING
        lines = getattr(value, "item_lines", [])
        out = []
        for i, v in enumerate(value):
            where = lines[i] if i < len(lines) else line
            try:
                p = parse_duration(v)
            except (TypeError, ValueError) as err:
                ctx.add(join(path, i), str(err), where)
                continue
            if not (p > 0 and (DAY % p == 0)):
                ctx.add(join(path, i), f"a window of {v!r} does not divide a day", where,
                        "e.g. 10s, 1min, 10min, 1h, 1d")
                continue
            out.append(p)
        return out


def _check_despike(out: dict[str, Any], path: str, lines: Mapping[str, Any],
                   ctx: Ctx) -> None:
    if out.get("window", 7) % 2 == 0:
        ctx.add(join(path, "window"), f"{out['window']} is even", lines.get("window"),
                "a Hampel window is 2k+1 samples: 5, 7, 11 …")


DESPIKE = Schema({
    "window": Field("int", default=7, min=3, max=301,
                    doc="Hampel window 2k+1 (odd), in samples"),
    "threshold": Field("float", default=3.0, min=0.0, doc="t in |x − median| > t·1.4826·MAD"),
    "min_deviation": Field("float", default=0.0, min=0.0,
                           doc="a spike must also depart this far from the median (units):"
                               " on a quiet plateau the MAD is noise, and noise is no spike"),
}, name="despike", validator=_check_despike)

STUCK = Schema({
    "tolerance": Field("float", default=0.0, min=0.0, doc="span (engineering units)"),
    "samples": Field("int", required=True, min=2, doc="run length that makes a value stuck"),
}, name="stuck")


def _check_chain(out: dict[str, Any], path: str, lines: Mapping[str, Any], ctx: Ctx) -> None:
    if out.get("raw") != "keep" and not (out.get("summaries") or out.get("totals")):
        ctx.add(join(path, "raw"), f"raw: {out.get('raw')} with nothing summarised would "
                "lose the data", lines.get("raw"), "add summaries or totals, or raw: keep")


class ChainSchema(Schema):
    """A chain's schema; a problem of the chain as a whole carries the line of its name."""

    def check(self, value: Any, path: str, line: int | None, ctx: Ctx) -> Any:
        out = super().check(value, path, line, ctx)
        if isinstance(out, dict) and not any(
                out.get(k) for k in ("despike", "stuck", "summaries", "totals")):
            ctx.add(path, "an empty chain", line, "give despike, stuck, summaries or totals")
        return out


CHAIN = ChainSchema({
    "interval": Field("duration", min=0.01, max=DAY,
                      doc="sampling interval; default: the interval of the device polled"),
    "despike": Field(DESPIKE),
    "stuck": Field(STUCK),
    "summaries": Field(PeriodList(Field("any")), default=list,
                       doc="window statistics, e.g. [10min]"),
    "totals": Field(PeriodList(Field("any")), default=list,
                    doc="totals (rain), e.g. [1h, 1d]; any missing sample voids a total"),
    "min_completeness": Field("float", default=0.9, min=0.0, max=1.0,
                              doc="below this a summary is 'suspect'"),
    "raw": Field("str", default="keep", choices=("keep", "decimate", "drop")),
    "decimate": Field("int", default=10, min=2, max=100000,
                      doc="with raw: decimate, keep one raw sample in this many"),
}, name="chain", validator=_check_chain)

def _check_section(out: dict[str, Any], path: str, lines: Mapping[str, Any],
                   ctx: Ctx) -> None:
    tz = out.get("timezone", "UTC")
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(tz)
    except (KeyError, ValueError, OSError):  # OSError: a directory such as 'Asia'
        ctx.add(join(path, "timezone"), f"unknown time zone {tz!r}", lines.get("timezone"),
                "an IANA name such as Asia/Shanghai")


PROCESSING = Schema({
    "timezone": Field("str", default="UTC", doc="IANA zone the windows and days align to"),
    "day_start": Field("float", default=0.0, min=0.0, max=23.99,
                       doc="local hour a day starts (8 for the hydrological day)"),
    "report": Field("bool", default=True, doc="publish a daily completeness report"),
    "chains": Field(MapOf(Field(CHAIN), key_pattern=CHANNEL_NAME,
                          key_rule="a chain is named after its channel: a sensor output "
                                   "like L1.level or a device channel like dev/ch1"),
                    default=dict),
}, name="processing", validator=_check_section)


def check_channels(processing: Mapping[str, Any], channels: Iterable[str],
                   ctx: Ctx, raw: Any = None) -> None:
    """Every chain must name a channel the RTU publishes. ``raw``: the section as read
    from the YAML, whose mappings know the line of each key."""
    import difflib

    lines = getattr((raw or {}).get("chains") if isinstance(raw, dict) else None,
                    "key_lines", {})
    known = sorted(set(channels))
    for name in (processing.get("chains") or {}):
        if name not in known:
            close = difflib.get_close_matches(name, known, 1)
            ctx.add(f"processing.chains.{name}", "no such channel",
                    lines.get(name), f"did you mean {close[0]!r}?" if close
                    else "a sensor output like L1.level or a device channel like dev/ch1")
