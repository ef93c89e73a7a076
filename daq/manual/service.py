"""The daemon's side of manual readings: remember the automatic values of the sensors that
take manual readings, and enter a manual reading (validated, paired, stored, published).

A manual reading goes out on the result lane with source ``manual`` and its pair: the
nearest automatic value within ``manual.pair_window`` and the difference. A difference
beyond the sensor's tolerance marks the manual reading ``suspect`` and raises the
sensor's ``{sensor}/manual`` fault alarm (a later manual reading within tolerance clears
it). The automatic pair was published as it was measured; in the same commit as the
manual reading goes an *annotation* of it (``annotation/{sensor}``, result lane, schema
``annotation.json``): its idempotency key (rtu, channel, seq) and time, quality
``suspect``, reason ``manual_mismatch``, the manual value, the difference and the
tolerance, so a central server can mark the reading it already holds.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import structlog

from ..model import Lane, Quality, Reading, format_ts
from .manual_config import ManualConfig, ManualSensor

log = structlog.get_logger("daq.manual")

ANNOTATION = "annotation"  # extra.source of an annotation: no tap takes it for a value


def is_entered(r: Reading) -> bool:
    """A manual reading or an annotation: not a measured value for alarms, pairing or
    field calibration."""
    return r.extra.get("source") in ("manual", ANNOTATION)


class ManualError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def alarm_rules(cfg: ManualConfig) -> list[Any]:
    """One sensor-fault alarm per sensor: manual and automatic disagree."""
    from ..alarms.alarm_config import Rule

    return [Rule(id=f"{s.key}/manual", sensor=s.key, quantity=None, kind="fault",
                 severity=s.severity, flags=("manual_mismatch",), bad_quality=False,
                 source="manual") for s in cfg.sensors.values()]


def with_manual_rules(alarms: Any, cfg: ManualConfig) -> Any:
    """The alarms configuration plus the manual-mismatch fault alarms."""
    import dataclasses

    from ..alarms.alarm_config import AlarmsConfig

    base = alarms if alarms is not None else AlarmsConfig(rules=())
    return dataclasses.replace(base, rules=(*base.rules, *alarm_rules(cfg)))


def validate(s: ManualSensor, value: Any, unit: str | None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise ManualError("bad_value", f"{value!r} is not a number")
    if unit is not None and unit != s.unit:
        raise ManualError("bad_unit", f"{s.key} is read in {s.unit!r}, not {unit!r}")
    if s.low is not None and s.high is not None and not s.low <= value <= s.high:
        raise ManualError("implausible", f"{value:g} {s.unit} is outside {s.key}'s plausible "
                          f"range [{s.low:g}, {s.high:g}]")
    return float(value)


class ManualService:
    def __init__(self, cfg: ManualConfig, outbox: Any, rtu: str = "") -> None:
        from .store import ManualStore

        self.cfg = cfg
        self.rtu = rtu
        self.outbox = outbox
        self.store = ManualStore(outbox.path)
        self._lock = threading.Lock()
        self._unit_warned: set[str] = set()

    def watch(self, outbox: Any) -> None:
        """Wrap ``outbox.add``: committed automatic values of manual sensors are kept."""
        add = outbox.add

        def tapped(items: Any, **kw: Any) -> list[int]:
            seqs: list[int] = add(items, **kw)
            try:
                self.accepted(items, seqs)
            except Exception as err:  # pairing must never cost a commit
                log.error("manual_tap_failed", error=f"{type(err).__name__}: {err}")
            return seqs

        outbox.add = tapped

    def accepted(self, items: Any, seqs: list[int]) -> None:
        rows = []
        for (_, r), seq in zip(items, seqs, strict=False):
            if r.value is None or is_entered(r) or r.lane == Lane.ALARM:
                continue
            for key in {r.sensor, r.channel} - {None}:
                s = self.cfg.sensors.get(str(key))
                if s is None or s.quantity != r.quantity or r.quality.value != "good":
                    continue
                if r.unit and r.unit != s.unit:  # never pair values in different units
                    if s.key not in self._unit_warned:
                        self._unit_warned.add(s.key)
                        log.error("manual_unit_mismatch", sensor=s.key, manual=s.unit,
                                  automatic=r.unit)
                    continue
                rows.append((s.key, r.ts.timestamp(), float(r.value), r.channel, seq))
        self.store.add_auto(rows)

    def add(self, sensor: str, value: Any, *, ts: float | None = None, by: str = "unknown",
            unit: str | None = None) -> dict[str, Any]:
        s = self.cfg.sensors.get(sensor)
        if s is None:
            raise ManualError("unknown_sensor", f"{sensor!r} takes no manual readings; "
                              f"configured: {', '.join(sorted(self.cfg.sensors)) or 'none'}")
        v = validate(s, value, unit)
        now = time.time()
        ts = now if ts is None else float(ts)
        if ts > now + 300:
            raise ManualError("future", f"{format_ts(_dt(ts))} is in the future")
        with self._lock:
            pair = self.store.nearest_auto(s.key, ts, self.cfg.pair_window)
            row: dict[str, Any] = {"key": s.key, "ts": ts, "value": v, "unit": s.unit,
                                   "by": by, "entered": now}
            if pair is not None:
                diff = v - pair[1]
                row.update(auto_ts=pair[0], auto_value=pair[1], auto_channel=pair[2],
                           auto_seq=pair[3], difference=diff,
                           suspect=int(abs(diff) > s.tolerance))
            row["id"] = self.store.add_reading(row)
            items = [(f"manual/{s.key}", self.reading(s, row))]
            if row.get("suspect"):
                items.append((f"{ANNOTATION}/{s.key}", self.annotation(s, row)))
            self.outbox.add(items)
        if row.get("suspect"):
            log.warning("manual_mismatch", sensor=s.key, difference=row["difference"],
                        tolerance=s.tolerance)
        return _public(row)

    def reading(self, s: ManualSensor, row: dict[str, Any]) -> Reading:
        suspect = bool(row.get("suspect"))
        extra: dict[str, Any] = {"source": "manual", "by": row["by"], "manual_id": row["id"]}
        if row.get("auto_ts") is not None:
            extra["pair"] = {"channel": row["auto_channel"], "seq": row["auto_seq"],
                             "ts": format_ts(_dt(row["auto_ts"])), "value": row["auto_value"],
                             "difference": row["difference"], "tolerance": s.tolerance,
                             "suspect": suspect}
        return Reading(device="manual", channel=f"{s.key}.{s.quantity}.manual",
                       quantity=s.quantity, value=row["value"], unit=s.unit,
                       quality=Quality.SUSPECT if suspect else Quality.GOOD,
                       ts=_dt(row["ts"]), lane=Lane.RESULT, sensor=s.key,
                       flags=("manual_mismatch",) if suspect else (), extra=extra)

    def annotation(self, s: ManualSensor, row: dict[str, Any]) -> Reading:
        """The correction of an automatic reading a manual one disagrees with: on its own
        channel ``{sensor}.{quantity}.annotation`` (so the automatic channel's seq is left
        alone), ``ts`` and ``value`` those of the automatic reading it names."""
        manual_channel = f"{s.key}.{s.quantity}.manual"
        return Reading(
            device="manual", channel=f"{s.key}.{s.quantity}.{ANNOTATION}",
            quantity=s.quantity, value=row["auto_value"], unit=s.unit,
            quality=Quality.SUSPECT, ts=_dt(row["auto_ts"]), lane=Lane.RESULT, sensor=s.key,
            flags=("manual_mismatch",), extra={
                "source": ANNOTATION,
                "annotates": {"rtu": self.rtu, "channel": row["auto_channel"],
                              "seq": row["auto_seq"], "ts": format_ts(_dt(row["auto_ts"]))},
                "annotation": {
                    "quality": "suspect", "reason": "manual_mismatch",
                    "manual": {"value": row["value"], "ts": format_ts(_dt(row["ts"])),
                               "by": row["by"], "channel": manual_channel,
                               "manual_id": row["id"]},
                    "difference": row["difference"], "tolerance": s.tolerance}})

    def register(self, server: Any) -> None:
        from ..control import RequestError

        def add(args: dict[str, Any]) -> Any:
            try:
                return self.add(args["sensor"], args["value"], ts=args.get("ts"),
                                by=args.get("by") or "unknown", unit=args.get("unit"))
            except ManualError as err:
                raise RequestError(err.code, err.message) from None

        server.register("manual_add", add, params={
            "sensor": str, "value": (int, float), "ts": (int, float), "by": str, "unit": str},
            required=("sensor", "value"))

    def close(self) -> None:
        self.store.close()


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _public(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for k in ("ts", "auto_ts", "entered"):
        if out.get(k) is not None:
            out[k] = format_ts(_dt(out[k]))
    out["suspect"] = bool(out.get("suspect"))
    return out
