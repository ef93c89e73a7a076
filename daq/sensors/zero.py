"""A sensor's own zero, in its native unit: what ``daq calibrate zero`` changes.

The kinds with a zero parameter, and what a re-zero without a reference makes them read:

- ``vw_piezometer``: the zero *reading* R0 (``zero_reading``) in the sheet's
  ``reading_unit`` (digits f²/1000, or LC-2 f²·10⁻⁶), with the thermistor's T0
  (``temperature_correction.zero_temperature``, °C) when the sheet has a temperature
  correction and the barometer's S0 (``barometric_correction.zero``) for an open standpipe;
  the pressure reads 0 (a polynomial's C then follows from the new R0);
- ``water_level`` with ``method: current``: the current at ``low``, I0 (``current.zero_ma``,
  mA); the scaled value reads ``low``;
- ``weir``: the gauge reading at the crest (``crest_zero``, in ``unit``); the head reads 0;
- ``water_level`` with ``method: radar`` or ``ultrasonic``: the elevation of the distance
  zero (``zero_elevation``, m); the level reads 0;
- ``water_level`` with ``method: encoder``: the count at the reference level
  (``encoder.counts0``); the level reads ``encoder.reference`` (+ ``offset``).

``thermistor``, ``rain``, ``barometer`` and a ``vented``/``unvented`` level have no zero
parameter (an elevation or an ``offset`` is not a zero of the sensor): ``daq calibrate``
re-zeroes them as a linear offset.

With a reference V (``--reference``: "the current reading should read V", on the main
output or the output ``--quantity`` names) the zero parameter is solved so that the
conversion of the latest poll gives V: an output affine in its zero (every one but a VW
polynomial's and a weir's flow) in closed form, ``z = z₀ + (V − f(z₀))/slope`` (the slope
from a second evaluation), the others by further secant steps. The other parts of a VW
zero (T0, S0) are taken from the poll, as in a zero.

The new zero goes in the sensor's configuration, so a re-zeroed value *is* the conversion
with the new zero: every output follows it exactly, with no correction on top.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from typing import Any

from ..convert import reading_from_input
from ..model import Quality
from .common import Events, Output, Sample
from .kinds_level import compute_level
from .kinds_vw import VW_PRIMARY, compute_vw, vw_temperature
from .kinds_weir import compute_weir

_USABLE = (Quality.GOOD, Quality.SUSPECT)
_COMPUTE: dict[str, Callable[[Mapping[str, Any], Mapping[str, Sample], Events],
                             list[Output]]] = {
    "vw_piezometer": compute_vw, "weir": compute_weir, "water_level": compute_level}
_LEVEL_ZERO = {"current": "zero_ma", "radar": "zero_elevation",
               "ultrasonic": "zero_elevation", "encoder": "counts0"}
# the outputs a zero moves (a VW temperature does not move with R0)
_MOVED = {"vw_piezometer": ("pressure", "head", "elevation"), "weir": ("head", "flow"),
          "water_level": ("level",)}
I0_RANGE = (3.8, 12.0)  # mA, the schema's range of current.zero_ma


def zero_parameter(cfg: Mapping[str, Any]) -> str | None:
    """The key of the zero a re-zero solves (None: the kind has none)."""
    kind = cfg.get("kind")
    if kind == "vw_piezometer":
        return "zero_reading"
    if kind == "weir":
        return "crest_zero"
    if kind == "water_level":
        return _LEVEL_ZERO.get(str(cfg.get("method")))
    return None


def has_native_zero(cfg: Mapping[str, Any]) -> bool:
    return zero_parameter(cfg) is not None


def moved_outputs(cfg: Mapping[str, Any]) -> tuple[str, ...]:
    """The sensor's outputs (own names: pressure, head, level ...) its zero moves."""
    return _MOVED.get(str(cfg.get("kind")), ()) if has_native_zero(cfg) else ()


def configured_zero(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The native zero a sensor's configuration holds (what a first re-zero replaces)."""
    param = zero_parameter(cfg)
    if param == "crest_zero":
        return {"crest_zero": cfg["crest_zero"], "unit": cfg["unit"]}
    if param == "zero_elevation":
        return {"zero_elevation": cfg["zero_elevation"]}
    if param == "counts0":
        return {"counts0": cfg["encoder"]["counts0"]}
    if param == "zero_ma":
        return {"zero_ma": cfg["current"].get("zero_ma", 4.0)}
    out: dict[str, Any] = {"zero_reading": cfg.get("zero_reading"),
                           "reading_unit": cfg["reading_unit"]}
    if cfg.get("method") == "polynomial" and cfg.get("c") is not None:
        out["c"] = cfg["c"]
    if cfg.get("temperature_correction"):
        out["zero_temperature"] = cfg["temperature_correction"]["zero_temperature"]
    if cfg.get("barometric_correction"):
        bc = cfg["barometric_correction"]
        out.update(barometer_zero=bc["zero"], barometer_unit=bc["unit"])
    return out


def take_zero(cfg: Mapping[str, Any], samples: Mapping[str, Sample], *,
              for_reference: bool = False) -> dict[str, Any]:
    """The native zero of one poll's samples; ``ValueError`` when they cannot give one.

    ``for_reference``: only the parts a reference leaves alone need to be right (T0, S0
    of a VW; the loop need not be at its low end)."""
    param = zero_parameter(cfg)
    if param == "zero_ma":
        i = _usable(samples, "current")
        if not for_reference and not I0_RANGE[0] <= i <= I0_RANGE[1]:
            raise ValueError(f"the loop carries {i:g} mA: not a zero (3.8 to 12 mA)")
        return {"zero_ma": i}
    if param == "counts0":
        return {"counts0": _usable(samples, "counts")}
    if param == "crest_zero":
        from .common import LENGTH_UNITS_M

        scale = LENGTH_UNITS_M[cfg["level_unit"]] / LENGTH_UNITS_M[cfg["unit"]]
        return {"crest_zero": _usable(samples, "level") * scale, "unit": cfg["unit"]}
    if param == "zero_elevation":  # the level reads 0 now
        base = {"zero_elevation": float(cfg["zero_elevation"])}
        return base if for_reference else solve_zero(cfg, samples, base, "level", 0.0)
    role = next(r for r in VW_PRIMARY if r in samples)
    out: dict[str, Any] = {
        "zero_reading": reading_from_input(_usable(samples, role), role, cfg["reading_unit"]),
        "reading_unit": cfg["reading_unit"]}
    if cfg.get("temperature_correction"):
        t = vw_temperature(cfg, samples, Events())
        if t is None or t.value is None or t.quality not in _USABLE:
            raise ValueError("no usable temperature now: T0 cannot be taken")
        out["zero_temperature"] = t.value
    if cfg.get("barometric_correction"):
        out.update(barometer_zero=_usable(samples, "barometer"),
                   barometer_unit=cfg["barometric_correction"]["unit"])
    return out


def reference_zero(cfg: Mapping[str, Any], samples: Mapping[str, Sample], output: str,
                   reference: float) -> dict[str, Any]:
    """The native zero that makes ``output`` of this poll read ``reference``: the parts a
    zero takes from the poll (T0, S0), and the zero parameter solved, starting from the
    one now in force (``cfg``)."""
    base = take_zero(cfg, samples, for_reference=True)
    param = zero_parameter(cfg)
    assert param is not None
    now = cfg["encoder"]["counts0"] if param == "counts0" else \
        cfg["current"].get("zero_ma", 4.0) if param == "zero_ma" else cfg.get(param)
    if now is None:  # a polynomial sheet with C and no R0: start from the reading
        now = base[param]
    zero = solve_zero(cfg, samples, {**base, param: float(now)}, output, reference)
    if param == "zero_ma" and not I0_RANGE[0] <= zero["zero_ma"] <= I0_RANGE[1]:
        raise ValueError(f"reading {reference:g} needs I0 {zero['zero_ma']:.6g} mA, outside "
                         "3.8 to 12 mA: check the reference (or use two-point)")
    if param == "zero_reading" and zero["zero_reading"] <= 0:
        raise ValueError(f"reading {reference:g} needs R0 {zero['zero_reading']:.8g}: a zero "
                         "reading is positive; check the reference")
    return zero


def solve_zero(cfg: Mapping[str, Any], samples: Mapping[str, Sample], zero: dict[str, Any],
               output: str, target: float) -> dict[str, Any]:
    """``zero`` with its zero parameter moved so that ``output`` reads ``target``.

    Affine in the parameter: one step, ``z₀ + (V − f(z₀))·h/(f(z₀ + h) − f(z₀))``; else
    secant steps until the conversion gives ``target`` to rounding."""
    param = zero_parameter(cfg)
    assert param is not None
    compute = _COMPUTE[cfg["kind"]]

    def f(z: float) -> float:
        outs = compute(apply_zero(cfg, {**zero, param: z}), samples, Events())
        o = next((o for o in outs if o.quantity == output), None)
        if o is None or o.value is None:
            raise ValueError(f"no {output} now with {param} {z:.10g} (quality "
                             f"{o.quality.value if o else 'absent'}): cannot solve the zero")
        return o.value

    z0 = float(zero[param])
    z1 = z0 + 1e-3 * max(1.0, abs(z0))
    f0, f1 = f(z0), f(z1)
    tol = 1e-9 * max(1.0, abs(target))
    best = (abs(f0 - target), z0)
    for _ in range(40):
        if f1 == f0:
            if best[0] <= tol:
                break
            raise ValueError(f"{output} does not change with {param} now: cannot solve the "
                             "zero for a reference")
        z2 = z1 + (target - f1) * (z1 - z0) / (f1 - f0)
        if not math.isfinite(z2):
            break
        z0, f0, z1 = z1, f1, z2
        f1 = f(z1)
        improved = abs(f1 - target) < best[0]
        best = min(best, (abs(f1 - target), z1))
        if f1 == target or (best[0] <= tol and not improved):
            break
    if best[0] > tol:
        raise ValueError(f"{output} cannot be made to read {target:g} by {param} "
                         f"(closest {best[0]:.3g} away)")
    return {**zero, param: best[1]}


def apply_zero(cfg: Mapping[str, Any], zero: Mapping[str, Any]) -> Any:
    """A copy of ``cfg`` converting with the native zero ``zero``."""
    out: Any = copy.copy(cfg)  # keeps the CheckedSensor type
    if "zero_ma" in zero:
        out["current"] = {**cfg["current"], "zero_ma": zero["zero_ma"]}
        return out
    if "counts0" in zero:
        out["encoder"] = {**cfg["encoder"], "counts0": zero["counts0"]}
        return out
    for key in ("crest_zero", "zero_elevation"):
        if key in zero:
            out[key] = zero[key]
            return out
    if zero.get("zero_reading") is not None:
        out["zero_reading"] = zero["zero_reading"]
        if cfg.get("method") == "polynomial":  # C = −(A·R0² + B·R0) from the new R0
            out.pop("c", None)
    if zero.get("c") is not None:
        out["c"] = zero["c"]
    if "zero_temperature" in zero and cfg.get("temperature_correction"):
        out["temperature_correction"] = {**cfg["temperature_correction"],
                                         "zero_temperature": zero["zero_temperature"]}
    if "barometer_zero" in zero and cfg.get("barometric_correction"):
        out["barometric_correction"] = {**cfg["barometric_correction"],
                                        "zero": zero["barometer_zero"]}
    return out


def describe(zero: Mapping[str, Any]) -> str:
    """``R0 7840 digits, T0 24.99 °C`` / ``I0 4.4 mA`` / ``crest 0.1032 m``: for
    ``daq calibrate history``."""
    if "zero_ma" in zero:
        return f"I0 {zero['zero_ma']:.6g} mA"
    if "counts0" in zero:
        return f"counts0 {zero['counts0']:.10g}"
    if "crest_zero" in zero:
        return f"crest {zero['crest_zero']:.8g} {zero['unit']}"
    if "zero_elevation" in zero:
        return f"zero elevation {zero['zero_elevation']:.8g} m"
    parts = []
    if zero.get("zero_reading") is not None:
        parts.append(f"R0 {zero['zero_reading']:.8g} {zero['reading_unit']}")
    if zero.get("c") is not None:
        parts.append(f"C {zero['c']:.8g}")
    if zero.get("zero_temperature") is not None:
        parts.append(f"T0 {zero['zero_temperature']:.6g} °C")
    if zero.get("barometer_zero") is not None:
        parts.append(f"S0 {zero['barometer_zero']:.6g} {zero['barometer_unit']}")
    return ", ".join(parts)


def _usable(samples: Mapping[str, Sample], role: str) -> float:
    s = samples.get(role)
    if s is None or s.value is None or s.quality not in _USABLE:
        raise ValueError(f"no usable {role} now (quality "
                         f"{s.quality.value if s is not None else 'absent'})")
    return float(s.value)
