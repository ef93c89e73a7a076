"""Input checks shared by the conversion functions (every failure is a ``ValueError``)."""

from __future__ import annotations

import math


def finite(value: float, name: str) -> float:
    """``value`` as a float, or ``ValueError`` if it is not a finite number."""
    try:
        out = float(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a number, got {value!r}") from err
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, got {out}")
    return out


def positive(value: float, name: str) -> float:
    """``value`` as a finite float greater than zero, or ``ValueError``."""
    out = finite(value, name)
    if out <= 0.0:
        raise ValueError(f"{name} must be greater than zero, got {out}")
    return out


def choice(value: str, name: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value
