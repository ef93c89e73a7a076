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

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from ..model import Quality

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
    return Output(quantity, value, unit, quality, _merge_flags(deps))


def val(dep: Dep) -> float:
    """The value of a dependency :func:`derive` has already checked is present."""
    assert dep.value is not None
    return dep.value


LENGTH_UNITS_M: dict[str, float] = {"m": 1.0, "cm": 0.01, "mm": 0.001, "ft": 0.3048}
TIME_UNITS_S: dict[str, float] = {"s": 1.0, "ms": 1e-3, "us": 1e-6}
