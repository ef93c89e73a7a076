"""The ``alarms:`` section: its schema (checked by ``daq check``) and the typed rules.

Rules are keyed on what a value *is* (sensor id or channel, then quantity), never on where
it came from, so a sensor value, a summary and a GNSS displacement are alarmed alike::

    alarms:
      max_shelve: 8h
      rules:
        P07:                       # sensor id, or a channel such as weir_logger/ch1
          level:                   # quantity of that sensor's readings
            hh: {limit: 121.0, deadband: 0.05, severity: 900}
            h: {limit: 120.5, deadband: 0.05, severity: 700}
            l: {limit: 100.0, deadband: 0.05}
            rate: {limit: 0.5, period: 1h, direction: rise, severity: 600}
            on_delay: 10s
            latch: true
            realarm: 4h
          fault: {on_delay: 0s, severity: 500}   # quality flags: the sensor-fault class
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..schema import MISSING, Ctx, Field, MapOf, Schema, join

LIMIT_KINDS = ("hh", "h", "l", "ll")
FAULT_FLAGS = ("no_signal", "wire_break", "stuck", "device_down", "not_finite",
               "manual_mismatch")


def _limit(severity: int) -> Schema:
    return Schema({
        "limit": Field("float", required=True),
        "deadband": Field("float", default=0.0, min=0),
        "severity": Field("int", default=severity, min=1, max=1000),
    })


RATE = Schema({
    "limit": Field("float", required=True, min=0,
                   doc="change per period, in the value's unit (or % with percent: true)"),
    "period": Field("duration", default=3600.0, min=1, max=30 * 86400),
    "direction": Field("str", default="both", choices=("rise", "fall", "both")),
    "percent": Field("bool", default=False),
    "deadband": Field("float", default=0.0, min=0),
    "severity": Field("int", default=600, min=1, max=1000),
})

_COMMON = {
    "on_delay": Field("duration", default=0.0, min=0, max=86400),
    "off_delay": Field("duration", default=0.0, min=0, max=86400),
    "latch": Field("bool", default=False),
    "realarm": Field("duration", default=0.0, min=0, max=30 * 86400,
                     doc="re-annunciate a standing alarm after this long (0: never)"),
    "realarm_count": Field("int", default=0, min=0, max=1000,
                           doc="re-annunciations per raise at most (0: no limit)"),
    "actions": Field("any", default=list, doc="names of alarms.actions to run"),
}

QUANTITY = Schema({
    "hh": Field(_limit(900)), "h": Field(_limit(700)),
    "l": Field(_limit(700)), "ll": Field(_limit(900)),
    "rate": Field(RATE), **_COMMON,
}, name="quantity alarms")

FAULT = Schema({
    "flags": Field("any", default=lambda: list(FAULT_FLAGS)),
    "bad_quality": Field("bool", default=True, doc="quality bad or missing is a fault"),
    "stuck_after": Field("duration", default=0.0, min=0, max=30 * 86400,
                         doc="a value unchanged (within stuck_band) this long is stuck; 0: off"),
    "stuck_band": Field("float", default=0.0, min=0),
    "severity": Field("int", default=500, min=1, max=1000),
    **_COMMON,
}, name="fault alarm")


class _SensorAlarms(Schema):
    """One sensor's entry: ``fault`` is the sensor-fault alarm, every other key a quantity."""

    def __init__(self) -> None:
        super().__init__(fields={}, name="sensor alarms")

    def check(self, value: Any, path: str, line: int | None, ctx: Ctx) -> Any:
        if not isinstance(value, dict):
            ctx.add(path, f"expected a mapping of quantities, got {type(value).__name__}", line)
            return MISSING
        lines = getattr(value, "key_lines", {})
        out: dict[str, Any] = {}
        for key, raw in value.items():
            kp, kline = join(path, str(key)), lines.get(str(key), line)
            if not re.match(r"^[A-Za-z0-9_][A-Za-z0-9_\-]*$", str(key)):
                ctx.add(kp, "a quantity may hold only letters, digits, _ and -", kline)
                continue
            schema = FAULT if key == "fault" else QUANTITY
            checked = schema.check(raw, kp, kline, ctx)
            if checked is MISSING:
                continue
            if key == "fault":
                flags = checked["flags"]
                if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
                    ctx.add(join(kp, "flags"), "expected a list of flag names", kline,
                            "e.g. [" + ", ".join(FAULT_FLAGS) + "]")
                    continue
            elif not any(k in checked for k in (*LIMIT_KINDS, "rate")):
                ctx.add(kp, "no limit given", kline, "give hh, h, l, ll and/or rate")
                continue
            out[str(key)] = checked
        _check_order(out, path, lines, ctx)
        return out


def _check_order(out: dict[str, Any], path: str, lines: Mapping[str, Any], ctx: Ctx) -> None:
    for q, spec in out.items():
        limits = [(k, spec[k]["limit"]) for k in LIMIT_KINDS if k in spec]
        values = [v for _, v in limits]
        if values != sorted(values, reverse=True):
            ctx.add(join(path, q), "limits must be ordered hh ≥ h ≥ l ≥ ll: "
                    + ", ".join(f"{k}={v}" for k, v in limits), lines.get(q))


COIL = Schema({
    "device": Field("str", required=True, doc="a configured Modbus device"),
    "address": Field("int", required=True, min=0, max=65535),
    "value": Field("bool", default=True),
})

ACTION = Schema({
    "when": Field("str", default="uplink_down", choices=("uplink_down", "always")),
    "events": Field("any", default=lambda: ["raised", "realarm"]),
    "min_severity": Field("int", default=1, min=1, max=1000),
    "coil": Field(COIL, doc="write a coil (needs alarms.allow_writes: true)"),
    "command": Field("any", doc="argv list; {alarm} {event} {value} {severity} filled in"),
    "retries": Field("int", default=3, min=0, max=100),
    "retry_delay": Field("duration", default=10.0, min=0.01, max=3600),
    "timeout": Field("duration", default=30.0, min=0.1, max=600),
})


def _check_alarms(out: dict[str, Any], path: str, lines: Mapping[str, Any], ctx: Ctx) -> None:
    actions = out.get("actions") or {}
    for name, a in actions.items():
        ap = join(join(path, "actions"), name)
        if "coil" not in a and "command" not in a:
            ctx.add(ap, "an action needs a coil and/or a command", lines.get("actions"))
        if "coil" in a and not out.get("allow_writes"):
            ctx.add(join(ap, "coil"), "writing to a device is off by default",
                    lines.get("actions"), "set alarms.allow_writes: true to allow it")
        cmd = a.get("command")
        if cmd is not None and (not isinstance(cmd, list) or not cmd
                                or not all(isinstance(c, str) for c in cmd)):
            ctx.add(join(ap, "command"), "expected a list of strings (argv)",
                    lines.get("actions"), 'e.g. ["/usr/local/bin/sms", "{alarm}"]')
        bad = [e for e in (a.get("events") or []) if e not in ACTION_EVENTS]
        if bad or not isinstance(a.get("events"), list):
            ctx.add(join(ap, "events"), f"unknown event(s) {bad}", lines.get("actions"),
                    "of " + ", ".join(ACTION_EVENTS))
    for sensor, entry in (out.get("rules") or {}).items():
        for q, spec in entry.items():
            names = spec.get("actions") or []
            if not isinstance(names, list):
                names = [names]
            for n in names:
                if n not in actions:
                    ctx.add(join(join(join(join(path, "rules"), sensor), q), "actions"),
                            f"no action {n!r} in alarms.actions", lines.get("rules"))


ACTION_EVENTS = ("raised", "realarm", "cleared", "returned", "reset")

ALARMS = Schema({
    "max_shelve": Field("duration", default=8 * 3600.0, min=60, max=30 * 86400,
                        doc="longest a timed shelve may last"),
    "allow_writes": Field("bool", default=False,
                          doc="let actions write coils (explicit; off by default)"),
    "actions": Field(MapOf(Field(ACTION)), default=dict),
    "rules": Field(MapOf(Field(_SensorAlarms()), key_pattern=r"^[A-Za-z0-9_][\w./\-]*$",
                         key_rule="a sensor id or channel (letters, digits, _ . / -)"),
                   default=dict),
}, validator=_check_alarms)


@dataclass(frozen=True)
class Rule:
    """One alarm: a limit (hh/h/l/ll), a rate of change, or the sensor-fault alarm."""

    id: str  # "P07/level.hh", "P07/fault"
    sensor: str
    quantity: str | None  # None for the fault alarm (any quantity of the sensor)
    kind: str  # hh h l ll rate fault
    severity: int
    limit: float = 0.0
    deadband: float = 0.0
    on_delay: float = 0.0
    off_delay: float = 0.0
    latch: bool = False
    realarm: float = 0.0
    realarm_count: int = 0
    period: float = 3600.0
    direction: str = "both"
    percent: bool = False
    flags: tuple[str, ...] = ()
    bad_quality: bool = True
    actions: tuple[str, ...] = ()
    stuck_after: float = 0.0
    stuck_band: float = 0.0
    source: str | None = None  # "manual": fed by manual readings only (daq/manual)

    @property
    def klass(self) -> str:
        return "fault" if self.kind == "fault" else "process"

    @property
    def name(self) -> str:  # the alarm's name under its sensor
        return self.id.split("/")[-1]


@dataclass(frozen=True)
class Action:
    name: str
    when: str = "uplink_down"
    events: tuple[str, ...] = ("raised", "realarm")
    min_severity: int = 1
    coil: Mapping[str, Any] | None = None  # {device, address, value}
    command: tuple[str, ...] | None = None
    retries: int = 3
    retry_delay: float = 10.0
    timeout: float = 30.0


@dataclass(frozen=True)
class AlarmsConfig:
    rules: tuple[Rule, ...]
    max_shelve: float = 8 * 3600.0
    actions: Mapping[str, Action] | None = None
    allow_writes: bool = False


def build(checked: Mapping[str, Any]) -> AlarmsConfig:
    rules: list[Rule] = []
    for sensor, entry in (checked.get("rules") or {}).items():
        for q, spec in entry.items():
            common = {k: spec[k] for k in _COMMON}
            acts = common["actions"]
            common["actions"] = tuple(acts if isinstance(acts, list) else [acts])
            if q == "fault":
                rules.append(Rule(id=f"{sensor}/fault", sensor=sensor, quantity=None,
                                  kind="fault", severity=spec["severity"],
                                  flags=tuple(spec["flags"]),
                                  bad_quality=spec["bad_quality"],
                                  stuck_after=spec["stuck_after"],
                                  stuck_band=spec["stuck_band"], **common))
                continue
            for kind in (*LIMIT_KINDS, "rate"):
                if kind not in spec:
                    continue
                s = dict(spec[kind])
                rules.append(Rule(id=f"{sensor}/{q}.{kind}", sensor=sensor, quantity=q,
                                  kind=kind, **s, **common))
    actions = {n: Action(name=n, when=a["when"], events=tuple(a["events"]),
                         min_severity=a["min_severity"], coil=a.get("coil"),
                         command=tuple(a["command"]) if a.get("command") else None,
                         retries=a["retries"], retry_delay=a["retry_delay"],
                         timeout=a["timeout"])
               for n, a in (checked.get("actions") or {}).items()}
    return AlarmsConfig(rules=tuple(rules), actions=actions,
                        max_shelve=float(checked.get("max_shelve", 8 * 3600.0)),
                        allow_writes=bool(checked.get("allow_writes", False)))
