"""What every sensor kind shares: input samples, outputs, quality propagation.

A sensor's compute step receives one :class:`Sample` per input role (``frequency``,
``barometer`` ...) and returns :class:`Output` values. :func:`derive` evaluates one output
from the samples or outputs it depends on: the worst quality of those inputs carries over
(``good < suspect < bad < missing``), a dependency without a value gives an output
without a value (``missing`` if any input was missing, else ``bad``), and a conversion
that raises ``ValueError`` gives ``bad`` with the flag ``conversion_error``. Nothing here
raises on bad data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from ..convert import water_density_tanaka
from ..model import Quality
from ..schema import Ctx, Field, Schema, join

_RANK = {Quality.GOOD: 0, Quality.SUSPECT: 1, Quality.BAD: 2, Quality.MISSING: 3}


def worst(qualities: Iterable[Quality]) -> Quality:
    """The worst of ``qualities`` (``good`` if there are none)."""
    out = Quality.GOOD
    for q in qualities:
        if _RANK[q] > _RANK[out]:
            out = q
    return out


@dataclass(frozen=True)
class Sample:
    """One input value as a sensor sees it (engineering value of a device channel)."""

    role: str
    value: float | None
    quality: Quality = Quality.GOOD
    flags: tuple[str, ...] = ()
    ts: datetime | None = None


@dataclass(frozen=True)
class Output:
    """One derived quantity of a sensor, before it becomes a :class:`~daq.model.Reading`."""

    quantity: str
    value: float | None
    unit: str
    quality: Quality = Quality.GOOD
    flags: tuple[str, ...] = ()

    def flagged(self, quality: Quality, flag: str) -> Output:
        """This output with ``flag`` added and its quality at least ``quality``."""
        flags = self.flags if flag in self.flags else (*self.flags, flag)
        return replace(self, quality=worst((self.quality, quality)), flags=flags)


Dep = Sample | Output


def _merge_flags(deps: Iterable[Dep], extra: Iterable[str] = ()) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for dep in deps:
        for f in dep.flags:
            seen[f] = None
    for f in extra:
        seen[f] = None
    return tuple(seen)


class Events:
    """Events one compute step noticed; the sensor set counts each once per sensor and poll."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def add(self, name: str) -> None:
        self.names.add(name)


def derive(quantity: str, unit: str, deps: list[Dep], fn: Callable[[], float],
           events: Events) -> Output:
    """Evaluate ``fn`` (which reads the deps' values) into an output with propagated quality."""
    quality = worst(d.quality for d in deps)
    absent = [d for d in deps if d.value is None]
    if absent:
        own = []
        for d in absent:
            if isinstance(d, Sample):
                kind = "missing" if d.quality is Quality.MISSING else "bad"
                own.append(f"{d.role}_{kind}")
                events.add(f"input_{kind}")
        if quality is not Quality.MISSING:
            quality = Quality.BAD
        return Output(quantity, None, unit, quality, _merge_flags(deps, own))
    for d in deps:
        if isinstance(d, Sample) and d.quality is Quality.BAD:
            events.add("input_bad")
    try:
        value = float(fn())
    except (ValueError, ZeroDivisionError, OverflowError):
        events.add("conversion_error")
        return Output(quantity, None, unit, Quality.BAD,
                      _merge_flags(deps, ("conversion_error",)))
    if quality is Quality.MISSING:  # a gap record carries no value, whatever came with it
        return Output(quantity, None, unit, quality, _merge_flags(deps))
    return Output(quantity, value, unit, quality, _merge_flags(deps))


def val(dep: Dep) -> float:
    """The value of a dependency :func:`derive` has already checked is present."""
    assert dep.value is not None
    return dep.value


LENGTH_UNITS_M: dict[str, float] = {"m": 1.0, "cm": 0.01, "mm": 0.001, "ft": 0.3048}
TIME_UNITS_S: dict[str, float] = {"s": 1.0, "ms": 1e-3, "us": 1e-6}


def _check_density(out: dict[str, Any], path: str, lines: Mapping[str, Any], ctx: Ctx) -> None:
    model = out.get("model")
    if model == "fixed" and "value" not in out:
        ctx.add(join(path, "value"), "is required with model: fixed (kg/m³)", lines.get("model"))
    if model == "fixed" and "temperature" in out:
        ctx.add(join(path, "temperature"), "applies only to model: tanaka2001",
                lines.get("temperature"))
    if model == "tanaka2001" and "value" in out:
        ctx.add(join(path, "value"), "applies only to model: fixed", lines.get("value"))


DENSITY = Schema({
    "model": Field("str", required=True, choices=("fixed", "tanaka2001"),
                   doc="fixed ρ, or ρ(T) of Tanaka et al. 2001"),
    "value": Field("float", min=900.0, max=1100.0, doc="kg/m³, with model: fixed"),
    "temperature": Field("float", min=0.0, max=40.0,
                         doc="°C for tanaka2001; omitted: the sensor's measured temperature"),
}, name="density", validator=_check_density)

GRAVITY = Field("float", required=True, min=9.7, max=9.9, doc="local gravity in m/s²")


def density_needs_temperature(density_cfg: Mapping[str, Any]) -> bool:
    return density_cfg.get("model") == "tanaka2001" and "temperature" not in density_cfg


def density_term(density_cfg: Mapping[str, Any],
                 temperature: Dep | None) -> tuple[list[Dep], Callable[[], float]]:
    """The dependencies and the function giving ρ in kg/m³ for a ``density`` config."""
    if density_cfg["model"] == "fixed":
        rho = float(density_cfg["value"])
        return [], lambda: rho
    if "temperature" in density_cfg:
        t = float(density_cfg["temperature"])
        return [], lambda: water_density_tanaka(t)
    if temperature is None:  # the schema makes this impossible; stay total anyway
        raise ValueError("tanaka2001 density needs a temperature")
    dep = temperature
    return [dep], lambda: water_density_tanaka(val(dep))
