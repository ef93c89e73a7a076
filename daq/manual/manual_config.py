"""The ``manual:`` section: which sensors take manual readings and how they are judged.

::

    manual:
      pair_window: 30min           # nearest automatic value within this time is the pair
      sensors:
        LEVEL:                     # sensor id or channel (as in alarms.rules)
          quantity: water_level    # the automatic quantity it is compared with
          unit: m
          range: [90.0, 130.0]     # plausible values; outside is refused
          tolerance: 0.03          # |manual - automatic| beyond: both suspect, fault alarm
          criteria: {min_pairs: 108, u95_max: 0.03, repeat_max: 0.02}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..schema import Ctx, Field, MapOf, Schema, join

CRITERIA = Schema({
    "min_pairs": Field("int", default=108, min=1),
    "u95_max": Field("float", min=0, doc="95 % uncertainty: sqrt(mean² + (2σ)²)"),
    "within_min": Field("float", default=0.0, min=0, max=1,
                        doc="share of pairs within tolerance required (0..1)"),
    "repeat_max": Field("float", min=0, doc="repeat manual readings agree within"),
})


def _check_sensor(out: dict[str, Any], path: str, lines: Mapping[str, Any], ctx: Ctx) -> None:
    rng = out.get("range")
    if rng is not None and not (isinstance(rng, list) and len(rng) == 2
                                and all(isinstance(x, int | float) for x in rng)
                                and rng[0] < rng[1]):
        ctx.add(join(path, "range"), "expected [low, high] with low < high",
                lines.get("range"))


SENSOR = Schema({
    "quantity": Field("str", required=True),
    "unit": Field("str", required=True),
    "range": Field("any"),
    "tolerance": Field("float", required=True, min=0),
    "severity": Field("int", default=500, min=1, max=1000),
    "criteria": Field(CRITERIA),
}, validator=_check_sensor)

MANUAL = Schema({
    "pair_window": Field("duration", default=1800.0, min=1, max=86400),
    "sensors": Field(MapOf(Field(SENSOR), key_pattern=r"^[A-Za-z0-9_][\w./\-]*$",
                           key_rule="a sensor id or channel"), default=dict),
})


@dataclass(frozen=True)
class ManualSensor:
    key: str
    quantity: str
    unit: str
    tolerance: float
    low: float | None = None
    high: float | None = None
    severity: int = 500
    min_pairs: int = 108
    u95_max: float | None = None
    within_min: float = 0.0
    repeat_max: float | None = None


@dataclass(frozen=True)
class ManualConfig:
    sensors: Mapping[str, ManualSensor]
    pair_window: float = 1800.0


def build(checked: Mapping[str, Any]) -> ManualConfig:
    out = {}
    for key, s in (checked.get("sensors") or {}).items():
        rng = s.get("range") or (None, None)
        c = s.get("criteria") or {}
        out[key] = ManualSensor(key=key, quantity=s["quantity"], unit=s["unit"],
                                tolerance=s["tolerance"], low=rng[0], high=rng[1],
                                severity=s["severity"], min_pairs=c.get("min_pairs", 108),
                                u95_max=c.get("u95_max"), within_min=c.get("within_min", 0.0),
                                repeat_max=c.get("repeat_max"))
    return ManualConfig(sensors=out, pair_window=float(checked.get("pair_window", 1800.0)))
