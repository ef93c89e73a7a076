"""The sensor set: device channel values in, engineering readings out.

After each poll of a device the daemon calls :meth:`SensorSet.process` with the values
(gap records included). Every sensor whose *primary* input (the measurement: frequency,
level, pressure ...) comes from that device is computed; its other inputs (temperature,
barometer) come from the same poll when on the same device, else from the latest values
kept from other devices' polls, no older than the sensor's ``input_max_age``. A
barometer input is interpolated linearly in time between the two readings around the
poll's time when both exist; otherwise its nearest reading is held. Each output becomes a
:class:`~daq.model.Reading` on channel ``"<sensor id>.<quantity>"`` carrying the sensor's
calibration; outputs outside the sensor's ``limits`` are kept with quality ``bad``.
"""

from __future__ import annotations

import bisect
import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from ..errors import ConfigError, ConfigProblem
from ..model import ChannelValue, Lane, Quality, Reading
from ..schema import MISSING, Ctx, join
from .common import Events, Output, Sample
from .config import SENSORS_FIELD, CheckedSensor
from .kinds_level import compute_level, compute_rain
from .kinds_vw import VW_PRIMARY, compute_barometer, compute_thermistor, compute_vw
from .kinds_weir import compute_weir

Compute = Callable[[Mapping[str, Any], Mapping[str, Sample], Events], list[Output]]

COMPUTE: dict[str, Compute] = {
    "vw_piezometer": compute_vw,
    "thermistor": compute_thermistor,
    "weir": compute_weir,
    "water_level": compute_level,
    "rain": compute_rain,
    "barometer": compute_barometer,
}
PRIMARY_ROLES = (*VW_PRIMARY, "resistance", "level", "pressure", "distance", "echo_time",
                 "counts", "current", "rain")
log = structlog.get_logger("daq.sensors")

# the published quantity of an output where it is not the output's own name
QUANTITY = {
    ("vw_piezometer", "elevation"): "piezometric_elevation",
    ("vw_piezometer", "pressure"): "pore_pressure",
    ("water_level", "level"): "water_level",
    ("weir", "head"): "weir_head",
    ("weir", "flow"): "seepage_flow",
    ("barometer", "pressure"): "barometric_pressure",
}
HISTORY = 64  # readings kept per auxiliary channel (a few hours at 10-min barometer scans)


@dataclass
class _Sensor:
    id: str
    kind: str
    cfg: dict[str, Any]
    inputs: dict[str, tuple[str, str]]  # role -> (device, channel)
    primary: str
    compute: Compute
    # a field re-zero: (the configuration with the new native zero, calibration.field);
    # one attribute, so the pipeline thread reads both together (see SensorSet.zero)
    zeroed: tuple[dict[str, Any], dict[str, Any]] | None = None

    @property
    def device(self) -> str:
        return self.inputs[self.primary][0]


@dataclass(frozen=True)
class _Kept:
    ts: datetime
    value: float | None
    quality: Quality
    flags: tuple[str, ...]


def _usable(k: _Kept) -> bool:
    return k.value is not None and k.quality in (Quality.GOOD, Quality.SUSPECT)


class _History:
    """Recent values of one channel, ordered by time."""

    def __init__(self) -> None:
        self.items: list[_Kept] = []

    def add(self, kept: _Kept) -> None:
        bisect.insort(self.items, kept, key=lambda k: k.ts)
        del self.items[:-HISTORY]

    def sample(self, role: str, ts: datetime, max_age: float, interpolate: bool) -> Sample:
        good = [k for k in self.items if _usable(k)]
        before = [k for k in good if k.ts <= ts]
        after = [k for k in good if k.ts >= ts]
        b = before[-1] if before else None
        a = after[0] if after else None
        fresh = [k for k in (b, a) if k is not None
                 and abs((k.ts - ts).total_seconds()) <= max_age]
        if interpolate and b is not None and a is not None and len(fresh) == 2 and a.ts > b.ts:
            w = (ts - b.ts).total_seconds() / (a.ts - b.ts).total_seconds()
            assert a.value is not None and b.value is not None
            q = Quality.SUSPECT if Quality.SUSPECT in (a.quality, b.quality) else Quality.GOOD
            return Sample(role, b.value + w * (a.value - b.value), q, (), ts)
        if fresh:
            k = min(fresh, key=lambda k: abs((k.ts - ts).total_seconds()))
            return Sample(role, k.value, k.quality, k.flags, k.ts)
        latest = self.items[-1] if self.items else None
        if latest is not None and abs((latest.ts - ts).total_seconds()) <= max_age:
            return Sample(role, latest.value, latest.quality, latest.flags, latest.ts)
        return Sample(role, None, Quality.MISSING, (f"{role}_stale",), None)


class SensorSet:
    """Every configured sensor; ``process`` turns one device's poll into readings."""

    def __init__(self, sensors: list[_Sensor]) -> None:
        self._sensors = sensors
        self._by_device: dict[str, list[_Sensor]] = {}
        self._history: dict[tuple[str, str], _History] = {}
        for s in sensors:
            self._by_device.setdefault(s.device, []).append(s)
            for role, ref in s.inputs.items():
                if role != s.primary:
                    self._history.setdefault(ref, _History())
        self.counters: dict[str, int] = {}
        self._failed: set[str] = set()  # logged once each
        self._last: dict[str, tuple[datetime, dict[str, Sample]]] = {}  # a re-zero's poll

    @property
    def ids(self) -> list[str]:
        return [s.id for s in self._sensors]

    # -- field re-zero (daq calibrate zero; daq/sensors/zero.py) ---------------------------

    def native_zero(self, sid: str, quantity: str | None = None) -> bool:
        """Whether sensor ``sid`` is zeroed in its own unit (VW R0/T0/S0, 4–20 mA I0, weir
        crest, radar/ultrasonic zero elevation, encoder counts0), for ``quantity`` (a
        published quantity; None: its main output): one its zero moves."""
        s = self._find(sid)
        return s is not None and self._moved(s, quantity) is not None

    def kind(self, sid: str) -> str | None:
        """``barometer``, ``water_level (vented)`` ...: what sensor ``sid`` is (None: no
        such sensor, e.g. a device channel)."""
        s = self._find(sid)
        if s is None:
            return None
        return f"{s.kind} ({s.cfg['method']})" if s.kind == "water_level" else s.kind

    @staticmethod
    def _moved(s: _Sensor, quantity: str | None) -> str | None:
        """The output (own name) of ``quantity`` if the sensor's zero moves it."""
        from .zero import moved_outputs

        moved = moved_outputs(s.cfg)
        if quantity is None:
            return moved[0] if moved else None
        return next((o for o in moved if QUANTITY.get((s.kind, o), o) == quantity), None)

    def take_zero(self, sid: str, quantity: str | None = None,
                  reference: float | None = None) -> tuple[datetime, dict[str, Any],
                                                           dict[str, Any], list[Output],
                                                           list[Output], str]:
        """From the sensor's latest poll: (its time, the native zero now in force, the new
        one, the outputs with the old zero, the outputs with the new one, the output the
        zero was taken on). The new zero makes that output (``quantity``'s, else the main
        one) read ``reference``, or its zero. ``ValueError`` when there is no poll yet or
        it cannot give a zero."""
        from .zero import apply_zero, configured_zero, reference_zero, take_zero

        s = self._find(sid)
        if s is None or sid not in self._last:
            raise ValueError(f"no reading of sensor {sid!r} yet: nothing to zero")
        output = self._moved(s, quantity)
        if output is None:
            raise ValueError(f"the zero of {sid} does not move {quantity}")
        ts, samples = self._last[sid]
        cfg = s.zeroed[0] if s.zeroed else s.cfg
        zero = take_zero(cfg, samples) if reference is None else \
            reference_zero(cfg, samples, output, reference)
        new = apply_zero(s.cfg, zero)
        return (ts, configured_zero(cfg), zero, s.compute(cfg, samples, Events()),
                s.compute(new, samples, Events()), output)

    def zero(self, sid: str, zero: dict[str, Any], field: dict[str, Any]) -> None:
        """Convert sensor ``sid`` with the native ``zero`` from now on; its readings carry
        ``field`` as ``calibration.field``."""
        from .zero import apply_zero, zero_parameter

        s = self._find(sid)
        if s is None:
            return
        if zero_parameter(s.cfg) not in zero:  # the sensor was reconfigured since
            log.warning("field_zero_not_applied", sensor=sid, id=field.get("id"),
                        zero=zero, why="the sensor's zero is no longer of this kind")
            return
        s.zeroed = (apply_zero(s.cfg, zero), field)

    def _find(self, sid: str) -> _Sensor | None:
        return next((s for s in self._sensors if s.id == sid), None)

    @classmethod
    def build(cls, sensors_cfg: dict[str, dict], channels: set[str]) -> SensorSet:
        """Check ``sensors_cfg`` and its input channels; raise every problem at once.

        Entries not already checked by :data:`SENSORS_FIELD` (raw YAML) are checked here
        too; entries it already checked are not reported again.
        """
        ctx = Ctx()
        checked: Any = sensors_cfg
        if not all(isinstance(v, CheckedSensor) for v in sensors_cfg.values()):
            checked = SENSORS_FIELD.check(sensors_cfg, "sensors",
                                          getattr(sensors_cfg, "line", None), ctx)
        problems: list[ConfigProblem] = list(ctx.problems)
        sensors: list[_Sensor] = []
        known = sorted(channels)
        if checked is MISSING:
            checked = {}
        for sid, cfg in checked.items():
            inputs: dict[str, tuple[str, str]] = {}
            for role, ref in cfg.get("inputs", {}).items():
                if ref not in channels:
                    close = difflib.get_close_matches(ref, known, 1, 0.6)
                    problems.append(ConfigProblem(
                        join(join(join("sensors", sid), "inputs"), role),
                        f"no device produces channel {ref!r}", None,
                        f"did you mean {close[0]!r}?" if close else
                        "channels are named 'device/channel'"))
                    continue
                dev, _, ch = ref.partition("/")
                inputs[role] = (dev, ch)
            primary = next((r for r in PRIMARY_ROLES if r in inputs), None)
            if primary is None:
                continue  # already reported: a missing or unknown primary input
            sensors.append(_Sensor(sid, cfg["kind"], cfg, inputs, primary, COMPUTE[cfg["kind"]]))
        if problems:
            raise ConfigError(problems, "sensors")
        return cls(sensors)

    def process(self, device: str, values: list[ChannelValue], ts: datetime) -> list[Reading]:
        """Readings of every sensor whose primary input comes from ``device``; never raises
        on bad data (it becomes quality missing/bad and a counter)."""
        current = {v.channel: v for v in values}
        for v in values:
            hist = self._history.get((device, v.channel))
            if hist is not None:
                hist.add(_Kept(ts, _number(v.value), v.quality, v.flags))
        out: list[Reading] = []
        for sensor in self._by_device.get(device, ()):
            try:
                out.extend(self._run(sensor, current, ts))
            except Exception as err:  # a sensor bug must not stop the others
                self.counters["sensor_failed"] = self.counters.get("sensor_failed", 0) + 1
                if sensor.id not in self._failed:
                    self._failed.add(sensor.id)
                    log.error("sensor_failed", sensor=sensor.id, error=repr(err))
        return out

    def _run(self, sensor: _Sensor, current: dict[str, ChannelValue],
             ts: datetime) -> list[Reading]:
        samples: dict[str, Sample] = {}
        raw: dict[str, Any] = {}
        for role, (dev, ch) in sensor.inputs.items():
            if dev == sensor.device:
                v = current.get(ch)
                samples[role] = (Sample(role, None, Quality.MISSING, (f"{role}_absent",), ts)
                                 if v is None else
                                 Sample(role, _number(v.value), v.quality, v.flags, ts))
            else:
                samples[role] = self._history[(dev, ch)].sample(
                    role, ts, sensor.cfg["input_max_age"], interpolate=role == "barometer")
            raw[role] = samples[role].value
        events = Events()
        for sample in samples.values():
            if f"{sample.role}_stale" in sample.flags:
                events.add("input_stale")
        self._last[sensor.id] = (ts, samples)
        zeroed = sensor.zeroed
        cfg = sensor.cfg if zeroed is None else zeroed[0]
        calibration = dict(sensor.cfg["calibration"])
        if zeroed is not None:
            calibration["field"] = zeroed[1]
        outputs = sensor.compute(cfg, samples, events)
        readings = []
        for o in outputs:
            o = self._limit(sensor, o, events)
            readings.append(Reading(
                device=sensor.device, channel=f"{sensor.id}.{o.quantity}",
                quantity=QUANTITY.get((sensor.kind, o.quantity), o.quantity),
                value=o.value, unit=o.unit, quality=o.quality, ts=ts, lane=Lane.RAW,
                sensor=sensor.id, calibration=dict(calibration), flags=o.flags, raw=raw))
        for name in events.names:
            self.counters[name] = self.counters.get(name, 0) + 1
        return readings

    @staticmethod
    def _limit(sensor: _Sensor, o: Output, events: Events) -> Output:
        lim = sensor.cfg["limits"].get(o.quantity)
        if lim is None or o.value is None:
            return o
        lo, hi = lim.get("min"), lim.get("max")
        if (lo is not None and o.value < lo) or (hi is not None and o.value > hi):
            events.add("out_of_range")
            return o.flagged(Quality.BAD, "out_of_range")
        return o


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
