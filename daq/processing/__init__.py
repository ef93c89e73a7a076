"""Edge processing: Numba kernels behind validating wrappers, clock-aligned windows,
chains per channel and completeness accounting.

``from daq.processing import hampel`` loads NumPy and Numba; ``daq.processing.config``
(the config schema) loads neither, so checking a configuration stays light.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "hampel": "filters", "StreamingHampel": "filters", "rolling_median": "filters",
    "rolling_mean": "filters", "ewma": "filters", "rate_of_change": "filters",
    "stuck": "filters", "StreamingRollingMedian": "filters",
    "StreamingRollingMean": "filters", "StreamingEwma": "filters",
    "StreamingRate": "filters", "StreamingStuck": "filters",
    "window_stats": "windows", "windowed_stats": "windows", "WindowAccumulator": "windows",
    "WindowStats": "windows", "Clock": "windows",
    "missing_rate": "completeness", "mtbf_hours": "completeness",
    "Processor": "processor", "warm": "processor",
    "ProcessingError": "errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'daq.processing' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{mod}", __name__), name)
