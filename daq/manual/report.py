"""The manual-vs-automatic comparison (比测, PROCESSING.md §3), a pure function of pairs.

``difference = manual − automatic``; bias is their mean (systematic error), ``2σ`` twice
their sample standard deviation (random part), ``U95 = sqrt(bias² + (2σ)²)`` the 95 %
combined uncertainty. Repeat readings are manual readings of one sensor closer together
than the pairing window; their spread is compared with ``repeat_max``.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

from .manual_config import ManualSensor


def compare(sensor: ManualSensor, readings: list[dict[str, Any]],
            pair_window: float) -> dict[str, Any]:
    diffs = [r["difference"] for r in readings if r["difference"] is not None]
    n = len(diffs)
    bias = sum(diffs) / n if n else None
    sd = (math.sqrt(sum((d - (bias or 0.0)) ** 2 for d in diffs) / (n - 1))
          if n >= 2 else None)
    two_sigma = 2 * sd if sd is not None else None
    u95 = (math.sqrt(bias ** 2 + two_sigma ** 2)
           if bias is not None and two_sigma is not None else None)
    within = sum(1 for d in diffs if abs(d) <= sensor.tolerance) / n if n else None
    repeats = [abs(b["value"] - a["value"]) for a, b in itertools.pairwise(readings)
               if b["ts"] - a["ts"] <= pair_window]
    reasons = []
    if n < sensor.min_pairs:
        reasons.append(f"{n} pairs, {sensor.min_pairs} needed")
    if sensor.u95_max is not None and (u95 is None or u95 >= sensor.u95_max):
        reasons.append(f"U95 {_f(u95)} not below {sensor.u95_max:g} {sensor.unit}")
    if sensor.within_min and (within is None or within < sensor.within_min):
        reasons.append(f"{_f(within)} within tolerance, {sensor.within_min:g} needed")
    if sensor.repeat_max is not None and repeats and max(repeats) > sensor.repeat_max:
        reasons.append(f"repeat readings differ by {max(repeats):.4g} > "
                       f"{sensor.repeat_max:g} {sensor.unit}")
    return {
        "sensor": sensor.key, "quantity": sensor.quantity, "unit": sensor.unit,
        "manual_readings": len(readings), "pairs": n, "unpaired": len(readings) - n,
        "mean_difference": bias, "sd": sd, "two_sigma": two_sigma, "u95": u95,
        "tolerance": sensor.tolerance, "within_tolerance": within,
        "suspect": sum(1 for r in readings if r["suspect"]),
        # the automatic readings a manual one disagreed with: suspect (and so annotated)
        "suspect_pairs": [{"channel": r.get("auto_channel"), "seq": r.get("auto_seq"),
                           "ts": r.get("auto_ts"), "value": r.get("auto_value"),
                           "quality": "suspect", "manual_ts": r["ts"],
                           "manual_value": r["value"], "difference": r["difference"]}
                          for r in readings if r["suspect"]],
        "repeats": len(repeats), "repeat_max_seen": max(repeats) if repeats else None,
        "verdict": "pass" if not reasons else "fail", "reasons": reasons,
    }


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"
