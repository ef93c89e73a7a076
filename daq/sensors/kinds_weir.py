"""Sensor kind ``weir``: config and compute.

Head = level (``level_unit`` → ``unit``) − ``crest_zero``; flow by ``formula`` in L/s
(``unit: m``) or cfs (``unit: ft``). A head outside the formula's valid range gives a
*suspect* flow (flag ``head_out_of_range``), never a silently extrapolated good one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..convert import (
    WeirFlow,
    cipolletti,
    rectangular_francis,
    rectangular_kindsvater_carter,
    v_notch_kindsvater_shen,
    v_notch_sl_90,
    v_notch_usbr_90,
)
from ..convert._check import finite
from ..model import Quality
from ..schema import Ctx, Field, Schema, join
from .common import LENGTH_UNITS_M, Events, Output, Sample, derive, val

WEIR_FORMULA_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # formula: (required keys, optional keys)
    "usbr_v90": ((), ()),
    "kindsvater_shen": (("angle", "gravity"), ("ce", "kh")),
    "sl_90": ((), ("coefficient", "exponent")),
    "francis": (("crest_length", "contractions"), ()),
    "kindsvater_carter": (("crest_length", "ce", "kb", "kh", "gravity"), ()),
    "cipolletti": (("crest_length",), ()),
}
_WEIR_OPTIONAL = ("angle", "gravity", "ce", "kh", "kb", "crest_length", "contractions",
                  "coefficient", "exponent")
_GRAVITY_RANGE = {"m": (9.7, 9.9), "ft": (31.8, 32.5)}

RANGE = Schema({"min": Field("float", required=True), "max": Field("float", required=True)},
               name="valid_range")

WEIR_FIELDS: dict[str, Field] = {
    "formula": Field("str", required=True, choices=tuple(WEIR_FORMULA_KEYS)),
    "unit": Field("str", required=True, choices=("m", "ft"),
                  doc="length unit of head, crest_zero, crest_length, kh, kb; flow L/s or cfs"),
    "level_unit": Field("str", required=True, choices=tuple(LENGTH_UNITS_M)),
    "crest_zero": Field("float", required=True,
                        doc="level at the crest / notch vertex (unit); daq calibrate zero"),
    "angle": Field("float", min=0.0, max=180.0, doc="notch angle in degrees"),
    "ce": Field("float", min=0.0),
    "kh": Field("float"),
    "kb": Field("float"),
    "crest_length": Field("float", min=0.0),
    "contractions": Field("int", choices=(0, 1, 2), doc="Francis end contractions n"),
    "gravity": Field("float", doc="m/s² (unit m) or ft/s² (unit ft)"),
    "coefficient": Field("float", min=1.0, max=2.0,
                         doc="sl_90: C in Q = C·H^n (SL 551: 1.4; vendor tables 1.38, 1.343)"),
    "exponent": Field("float", min=2.0, max=3.0, doc="sl_90: n in Q = C·H^n (2.5; or 2.47)"),
    "valid_range": Field(RANGE, doc="override of the formula's valid head range (unit)"),
}


def check_weir(out: dict[str, Any], path: str, lines: Mapping[str, Any], ctx: Ctx) -> None:
    formula, unit = out.get("formula"), out.get("unit")
    if formula not in WEIR_FORMULA_KEYS:
        return
    required, optional = WEIR_FORMULA_KEYS[formula]
    for key in required:
        if key not in out:
            ctx.add(join(path, key), f"is required with formula: {formula}",
                    lines.get("formula"))
    for key in _WEIR_OPTIONAL:
        if key in out and key not in required + optional:
            ctx.add(join(path, key), f"is not used by formula: {formula}", lines.get(key))
    if formula == "sl_90" and unit == "ft":
        ctx.add(join(path, "unit"), "formula sl_90 (1.4·H^2.5) is in metres", lines.get("unit"))
    if formula == "kindsvater_shen" and ("ce" in out) != ("kh" in out):
        ctx.add(join(path, "ce" if "ce" not in out else "kh"),
                "give ce and kh together, or neither (then both come from the angle)",
                lines.get("formula"))
    elif formula == "kindsvater_shen" and "ce" not in out and "angle" in out \
            and not 25.0 <= out["angle"] <= 100.0:
        ctx.add(join(path, "angle"), "ce and kh from the angle need 25–100°",
                lines.get("angle"))
    if "gravity" in out and unit in _GRAVITY_RANGE:
        lo, hi = _GRAVITY_RANGE[unit]
        if not lo <= out["gravity"] <= hi:
            ctx.add(join(path, "gravity"), f"{out['gravity']} is not a gravity in "
                    f"{'m/s²' if unit == 'm' else 'ft/s²'} ({lo}–{hi})", lines.get("gravity"))


def _weir_flow(cfg: Mapping[str, Any], h: float) -> WeirFlow:
    unit, f = cfg["unit"], cfg["formula"]
    rng = cfg.get("valid_range") or {}
    lim = {"h_min": rng.get("min"), "h_max": rng.get("max")}
    if f == "usbr_v90":
        return v_notch_usbr_90(h, unit, **lim)
    if f == "kindsvater_shen":
        return v_notch_kindsvater_shen(h, cfg["angle"], gravity=cfg["gravity"],
                                       ce=cfg.get("ce"), kh=cfg.get("kh"), unit=unit, **lim)
    if f == "sl_90":
        return v_notch_sl_90(h, coefficient=cfg.get("coefficient", 1.4),
                             exponent=cfg.get("exponent", 2.5), **lim)
    if f == "francis":
        return rectangular_francis(h, cfg["crest_length"], unit=unit,
                                   contractions=cfg["contractions"], **lim)
    if f == "kindsvater_carter":
        return rectangular_kindsvater_carter(h, cfg["crest_length"], ce=cfg["ce"],
                                             kb=cfg["kb"], kh=cfg["kh"],
                                             gravity=cfg["gravity"], unit=unit, **lim)
    return cipolletti(h, cfg["crest_length"], unit=unit, **lim)


def compute_weir(cfg: Mapping[str, Any], s: Mapping[str, Sample], ev: Events) -> list[Output]:
    unit = cfg["unit"]
    scale = LENGTH_UNITS_M[cfg["level_unit"]] / LENGTH_UNITS_M[unit]
    lvl = s["level"]
    head = derive("head", unit, [lvl],
                  lambda: finite(val(lvl), "level") * scale - cfg["crest_zero"], ev)
    result: list[WeirFlow] = []

    def flow() -> float:
        result.append(_weir_flow(cfg, val(head)))
        return result[0].flow * (1000.0 if unit == "m" else 1.0)

    out = derive("flow", "L/s" if unit == "m" else "cfs", [head], flow, ev)
    if result and not result[0].in_range:
        ev.add("weir_head_out_of_range")
        out = out.flagged(Quality.SUSPECT, "head_out_of_range")
    return [head, out]
