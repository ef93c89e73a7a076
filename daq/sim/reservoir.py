"""The simulated reservoir: every quantity is a pure function of (seed, time).

Time ``t`` is UTC epoch seconds. Instruments sample at 1 Hz: every value served at ``t``
is the model at ``floor(t)`` (the *sample time*), so a reading and :meth:`Reservoir.truth`
of the same second agree exactly. Conventions (all written in ``daq/sim/README.md``):

* water level (m): ``81.99 + 0.15·sin(2πt/30 d + φ₁) + 0.02·sin(2πt/1 d + φ₂)`` plus
  Gaussian noise σ = 1 mm drawn per second; the phases φ come from the seed.
* piezometer ``Pnn`` (n = 1…17): piezometric elevation
  ``E = 58.0 + ratio·(L(t − lag) − 58.0)`` with ``L`` the noise-free level, ``ratio =
  0.85 − 0.04·(n − 1)`` and ``lag = n`` hours; head above the tip ``h = E − tip``,
  ``tip = 38.0 + 0.75·(n − 1)`` m; pressure ``P = ρ·g·h`` with ρ = 1000 kg/m³,
  g = 9.80665 m/s² (kPa). The frequency served inverts the piezometer's calibration
  (:class:`Calibration`; odd n linear, even n polynomial, no temperature or barometric
  term), digits ``R = f²/1000``.
* thermistor: ``T = 12.0 + 0.1·(n − 1) + 0.2·sin(2πt/30 d)`` °C, served as the resistance
  of a Geokon 3 kΩ thermistor (Steinhart–Hart A 1.4051e-3, B 2.369e-4, C 1.019e-7,
  offset 273.15).
* weir ``Wj`` (j = 1…3) head (mm): ``base_j + k_j·1000·(L(t − 2 h) − 81.99)``, bases
  80 / 120 / 60 mm, k 0.05 / 0.08 / 0.03.
* rain: rate ``6·max(0, sin(2πt/6 h + φ₃))`` mm/h; cumulative rain from t = 0 in closed
  form; tips = ⌊rain/0.2 mm⌋.
* barometer: ``1005 + 4·sin(2πt/3 d) + 0.8·sin(2πt/12 h)`` hPa; air temperature
  ``15 + 6·sin(2π(t − 9 h)/1 d)`` °C.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DAY = 86400.0
HOUR = 3600.0
LEVEL_MEAN = 81.99  # m
TAILWATER = 58.0    # m: the downstream boundary the piezometric surface falls to
RHO, G = 1000.0, 9.80665
NOISE_SIGMA = 0.001  # m, level noise per 1 Hz sample
MM_PER_TIP = 0.2
RADAR_ZERO = 95.0    # m, elevation of the radar's zero
THERMISTOR = (1.4051e-3, 2.369e-4, 1.019e-7, 273.15)  # Geokon 3 kΩ: A, B, C, offset
PIEZOMETERS = tuple(f"P{n:02d}" for n in range(1, 18))
WEIRS = {"W1": (80.0, 0.05), "W2": (120.0, 0.08), "W3": (60.0, 0.03)}  # base mm, k
SPIKES = {"level": 0.5, "piezometer": 25.0, "weir": 50.0}  # m, Hz, mm added by a spike

_MASK = (1 << 64) - 1


def _mix(*keys: int) -> int:
    """splitmix64 over the keys: a fast, stateless hash for per-second randomness."""
    z = 0x9E3779B97F4A7C15
    for k in keys:
        z = (z ^ (k & _MASK)) * 0xBF58476D1CE4E5B9 & _MASK
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB & _MASK
        z ^= z >> 31
    return z


def uniform(*keys: int) -> float:
    """A uniform number in (0, 1) that depends only on the keys."""
    return ((_mix(*keys) >> 11) + 0.5) / float(1 << 53)


def _key(text: str) -> int:
    return int.from_bytes(text.encode()[:8].ljust(8, b"\0"), "big")


@dataclass(frozen=True)
class Calibration:
    """Pressure from digits R = f²/1000: ``P = A·R² + B·R + C`` (kPa), ``C = −(A·R0² + B·R0)``.

    ``A = 0`` is the linear case ``P = B·(R − R0)`` (Geokon's G = B, negative)."""

    a: float
    b: float
    r0: float

    @property
    def c(self) -> float:
        return -(self.a * self.r0 ** 2 + self.b * self.r0)

    def pressure(self, digits: float) -> float:
        return self.a * digits ** 2 + self.b * digits + self.c

    def digits(self, pressure: float) -> float:
        """Invert :meth:`pressure` (the root nearest the linear answer)."""
        linear = self.r0 + pressure / self.b
        if self.a == 0.0:
            return linear
        disc = math.sqrt(self.b ** 2 - 4 * self.a * (self.c - pressure))
        roots = ((-self.b + disc) / (2 * self.a), (-self.b - disc) / (2 * self.a))
        return min(roots, key=lambda r: abs(r - linear))


@dataclass(frozen=True)
class Piezometer:
    id: str
    n: int
    tip: float      # m, tip elevation
    ratio: float    # share of the reservoir head reaching the tip
    lag: float      # s
    cal: Calibration


def piezometer(n: int) -> Piezometer:
    """The documented parameters of piezometer ``Pnn`` (n = 1…17)."""
    r0 = 9000.0 + 25.0 * n
    g = -(0.17 + 0.001 * n)  # kPa/digit
    cal = Calibration(0.0, g, r0) if n % 2 else Calibration(-2.0e-7 * (1 + 0.05 * n), g, r0)
    return Piezometer(f"P{n:02d}", n, 38.0 + 0.75 * (n - 1), 0.85 - 0.04 * (n - 1),
                      n * HOUR, cal)


def thermistor_ohm(temp_c: float) -> float:
    """Resistance (Ω) of the Geokon 3 kΩ thermistor at ``temp_c``: Steinhart–Hart solved
    for ln R (a depressed cubic with one real root)."""
    a, b, c, off = THERMISTOR
    p, q = b / c, (a - 1.0 / (temp_c + off)) / c
    s = math.sqrt(q * q / 4 + p ** 3 / 27)
    y = math.copysign(abs(-q / 2 + s) ** (1 / 3), -q / 2 + s) + \
        math.copysign(abs(-q / 2 - s) ** (1 / 3), -q / 2 - s)
    return math.exp(y)


def rain_mm(t: float, phase: float) -> float:
    """Cumulative rain (mm) from t = 0: ∫ 6·max(0, sin(2πt/6h + φ)) dt / 3600."""
    period, peak = 6 * HOUR, 6.0 / HOUR  # s, mm/s
    u = t / period + phase / (2 * math.pi)
    u0 = phase / (2 * math.pi)

    def cum(x: float) -> float:
        frac = x - math.floor(x)
        part = (1 - math.cos(2 * math.pi * frac)) / (2 * math.pi) if frac < 0.5 else 1 / math.pi
        return math.floor(x) / math.pi + part
    return peak * period * (cum(u) - cum(u0))


@dataclass(frozen=True)
class PiezoTruth:
    elevation: float      # m, piezometric elevation
    head: float           # m of water above the tip
    pressure_kpa: float
    digits: float         # R = f²/1000
    freq_hz: float
    temperature_c: float
    resistance_ohm: float


@dataclass(frozen=True)
class Truth:
    """Every simulated quantity at one sample time (``t``, whole epoch seconds)."""

    t: float
    level: float                  # m, with noise (what the radar sees)
    distance: float               # m, radar zero − level
    piezometers: dict[str, PiezoTruth]
    weirs: dict[str, float]       # mm of head
    rain_mm: float                # cumulative since t = 0
    tips: int                     # ⌊rain_mm / 0.2⌋, not wrapped
    pressure_hpa: float
    air_temperature: float        # °C


class Reservoir:
    """The model for one ``seed``; :meth:`truth` is a pure function of time."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.phases = tuple(2 * math.pi * uniform(seed, 7, i) for i in range(3))
        self.piezometers = {p.id: p for p in map(piezometer, range(1, 18))}

    def level_smooth(self, t: float) -> float:
        """Noise-free water level (m) at any time ``t``."""
        return (LEVEL_MEAN + 0.15 * math.sin(2 * math.pi * t / (30 * DAY) + self.phases[0])
                + 0.02 * math.sin(2 * math.pi * t / DAY + self.phases[1]))

    def noise(self, ts: int) -> float:
        """Level noise (m) of the 1 Hz sample at whole second ``ts`` (Box–Muller)."""
        u1, u2 = uniform(self.seed, 1, ts), uniform(self.seed, 2, ts)
        return NOISE_SIGMA * math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)

    def spike(self, key: str, t: float, probability: float) -> bool:
        """Whether the sample of ``key`` (``level``, ``P07``, ``W2`` …) at ``t`` is spiked."""
        return probability > 0 and uniform(self.seed, 3, _key(key), math.floor(t)) < probability

    def piezo(self, pid: str, ts: float) -> PiezoTruth:
        p = self.piezometers[pid]
        elev = TAILWATER + p.ratio * (self.level_smooth(ts - p.lag) - TAILWATER)
        head = elev - p.tip
        kpa = RHO * G * head / 1000.0
        digits = p.cal.digits(kpa)
        temp = 12.0 + 0.1 * (p.n - 1) + 0.2 * math.sin(2 * math.pi * ts / (30 * DAY))
        return PiezoTruth(elev, head, kpa, digits, math.sqrt(1000.0 * digits), temp,
                          thermistor_ohm(temp))

    def truth(self, t: float) -> Truth:
        ts = float(math.floor(t))
        level = self.level_smooth(ts) + self.noise(int(ts))
        lagged = self.level_smooth(ts - 2 * HOUR) - LEVEL_MEAN
        rain = rain_mm(ts, self.phases[2])
        return Truth(
            t=ts, level=level, distance=RADAR_ZERO - level,
            piezometers={pid: self.piezo(pid, ts) for pid in PIEZOMETERS},
            weirs={w: base + k * 1000.0 * lagged for w, (base, k) in WEIRS.items()},
            rain_mm=rain, tips=math.floor(rain / MM_PER_TIP + 1e-9),
            pressure_hpa=1005.0 + 4.0 * math.sin(2 * math.pi * ts / (3 * DAY))
            + 0.8 * math.sin(2 * math.pi * ts / (12 * HOUR)),
            air_temperature=15.0 + 6.0 * math.sin(2 * math.pi * (ts - 9 * HOUR) / DAY))
