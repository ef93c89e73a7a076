"""The simulated units on the line and their register maps (documented in README.md).

Each unit turns the model's :class:`~daq.sim.reservoir.Truth` at the sample time into
register tables (``holding`` and ``input``, both starting at address 0). All multi-register
numbers are big word order (ABCD). Spikes, when asked for, are added here, never to the
truth: level +0.5 m (the radar distance −0.5 m), a piezometer's frequency +25 Hz, a weir
head +50 mm.
"""

from __future__ import annotations

from collections.abc import Callable

from daq.modbus import encode

from .reservoir import SPIKES, Truth

Tables = dict[str, list[int]]
Spiked = Callable[[str], bool]  # key ("level", "P07", "W2") -> is this sample spiked?

UNITS = {1: "radar level gauge", 2: "VW logger P01-P09 (Hz)",
         3: "VW logger P10-P17 (digits)", 4: "weir heads (4-20 mA and mm)",
         5: "rain gauge counter", 6: "barometer"}
VW_GROUPS = {2: ("frequency", tuple(f"P{n:02d}" for n in range(1, 10))),
             3: ("digits", tuple(f"P{n:02d}" for n in range(10, 18)))}
WEIR_SPAN_MM = 500.0  # 4 mA = 0 mm, 20 mA = 500 mm


def f32(*values: float) -> list[int]:
    return [w for v in values for w in encode(v, "float32")]


def amplitude_mv(n: int) -> float:
    return 1.2 - 0.02 * n


def snr(n: int) -> float:
    return 45.0 - 0.5 * n


def radar(truth: Truth, spiked: Spiked) -> Tables:
    distance = truth.distance - (SPIKES["level"] if spiked("level") else 0.0)
    return {"holding": [], "input": f32(distance)}


def vw_logger(unit: int) -> Callable[[Truth, Spiked], Tables]:
    form, ids = VW_GROUPS[unit]

    def tables(truth: Truth, spiked: Spiked) -> Tables:
        words: list[int] = []
        for pid in ids:
            p = truth.piezometers[pid]
            f = p.freq_hz + (SPIKES["piezometer"] if spiked(pid) else 0.0)
            wire = f if form == "frequency" else f * f / 1000.0
            n = int(pid[1:])
            words += f32(wire, p.resistance_ohm, amplitude_mv(n), snr(n))
        return {"holding": words, "input": []}
    return tables


def weir_ua(head_mm: float) -> int:
    """Loop current in µA for a head (4 mA at 0 mm, 20 mA at 500 mm), clipped to 0…65535."""
    return max(0, min(65535, round(4000.0 + 16000.0 * head_mm / WEIR_SPAN_MM)))


def weirs(truth: Truth, spiked: Spiked) -> Tables:
    heads = [h + (SPIKES["weir"] if spiked(w) else 0.0) for w, h in truth.weirs.items()]
    return {"holding": f32(*heads), "input": [weir_ua(h) for h in heads]}


def rain(truth: Truth, spiked: Spiked) -> Tables:
    return {"holding": [], "input": [truth.tips % 65536,
                                     *encode(truth.tips % (1 << 32), "uint32")]}


def barometer(truth: Truth, spiked: Spiked) -> Tables:
    return {"holding": [], "input": f32(truth.pressure_hpa, truth.air_temperature)}


DEVICES: dict[int, Callable[[Truth, Spiked], Tables]] = {
    1: radar, 2: vw_logger(2), 3: vw_logger(3), 4: weirs, 5: rain, 6: barometer}
