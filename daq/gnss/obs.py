"""The GNSS data model shared by the decoders, the RINEX reader/writer, the session store
and the baseline solver (see ``MODEL.md``, section "Data model").

Conventions:
- Time is :class:`GNSSTime`: a week number and seconds of week in a named time scale.
  Observation epochs are always GPST. ``GST`` uses the GPS week numbering (as RINEX does);
  ``BDT`` counts weeks from 2006-01-01 (BDT week = GPS week − 1356) and BDT = GPST − 14 s.
- Satellites are RINEX 3 ids: system letter + two-digit PRN/slot ("G05", "C19", "R07").
- Observation codes are RINEX 3 ("C1C", "L2X", "D7I", "S2I"): type, band, attribute.
  Units: C metres, L cycles, D Hz, S dB-Hz. Missing values are NaN.
- Ephemeris fields keep the RINEX navigation names and units (s, m, rad, rad/s);
  ``toc`` and ``toe`` stay in the satellite system's own time scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

CLIGHT = 299_792_458.0  # m/s
SECONDS_PER_WEEK = 604_800
GPS_EPOCH = datetime(1980, 1, 6)
BDT_WEEK0 = 1356  # GPS week of 2006-01-01, BDT's week zero
BDT_MINUS_GPST = -14.0  # s

# GPS − UTC in seconds, from the given UTC date on (IERS Bulletin C).
_LEAPS: tuple[tuple[datetime, int], ...] = (
    (datetime(2017, 1, 1), 18), (datetime(2015, 7, 1), 17), (datetime(2012, 7, 1), 16),
    (datetime(2009, 1, 1), 15), (datetime(2006, 1, 1), 14), (datetime(1999, 1, 1), 13),
    (datetime(1997, 7, 1), 12), (datetime(1996, 1, 1), 11), (datetime(1994, 7, 1), 10),
    (datetime(1993, 7, 1), 9), (datetime(1992, 7, 1), 8), (datetime(1991, 1, 1), 7),
    (datetime(1990, 1, 1), 6), (datetime(1988, 1, 1), 5), (datetime(1985, 7, 1), 4),
    (datetime(1983, 7, 1), 3), (datetime(1982, 7, 1), 2), (datetime(1981, 7, 1), 1),
    (datetime(1980, 1, 6), 0),
)

TIME_SCALES = ("GPST", "GST", "BDT")
SYSTEMS = "GRECJSI"  # GPS, GLONASS, Galileo, BeiDou, QZSS, SBAS, NavIC/IRNSS


def leap_seconds(utc: datetime) -> int:
    """GPS − UTC (s) at a UTC instant (naive datetime taken as UTC)."""
    utc = utc.replace(tzinfo=None)
    for start, leap in _LEAPS:
        if utc >= start:
            return leap
    return 0


def _gps_leap_at(gpst: datetime) -> int:
    """GPS − UTC (s) at an instant given as a GPST calendar time."""
    for start, leap in _LEAPS:
        if gpst - timedelta(seconds=leap) >= start:
            return leap
    return 0


@dataclass(frozen=True, slots=True, order=True)
class GNSSTime:
    """An instant as ``week`` + ``sow`` (seconds of week, 0 ≤ sow < 604800) in ``scale``.

    Comparisons and subtraction are only meaningful within one scale: convert with
    :meth:`to_scale` first (``a.to_scale("GPST") - b.to_scale("GPST")``).
    """

    week: int
    sow: float
    scale: str = "GPST"

    @classmethod
    def from_seconds(cls, seconds: float, scale: str = "GPST") -> GNSSTime:
        """From seconds since the scale's week zero (GPS: 1980-01-06; BDT: 2006-01-01)."""
        week, sow = divmod(seconds, SECONDS_PER_WEEK)
        return cls(int(week), float(sow), scale)

    @property
    def seconds(self) -> float:
        """Seconds since the scale's own week zero (float64: ~0.2 µs resolution today)."""
        return self.week * SECONDS_PER_WEEK + self.sow

    @property
    def gps_seconds(self) -> float:
        """This instant as seconds of GPST since 1980-01-06 (handy as a numpy time axis)."""
        return self.to_scale("GPST").seconds

    def to_scale(self, scale: str) -> GNSSTime:
        """The same instant in another scale (GPST, GST, BDT)."""
        if scale == self.scale:
            return self
        if scale not in TIME_SCALES or self.scale not in TIME_SCALES:
            raise ValueError(f"unknown time scale {scale!r}")
        gps = self.seconds
        if self.scale == "BDT":
            gps = (self.week + BDT_WEEK0) * SECONDS_PER_WEEK + self.sow - BDT_MINUS_GPST
        if scale == "BDT":
            bdt = gps + BDT_MINUS_GPST - BDT_WEEK0 * SECONDS_PER_WEEK
            return GNSSTime.from_seconds(bdt, "BDT")
        return GNSSTime.from_seconds(gps, scale)

    def add(self, seconds: float) -> GNSSTime:
        """This instant shifted by ``seconds`` (same scale, week normalised)."""
        return GNSSTime.from_seconds(self.seconds + seconds, self.scale)

    @classmethod
    def from_calendar(cls, cal: datetime, scale: str = "GPST") -> GNSSTime:
        """From a calendar date-time *read in the given scale* (as RINEX epochs are)."""
        cal = cal.replace(tzinfo=None)
        base = GPS_EPOCH if scale != "BDT" else datetime(2006, 1, 1)
        delta = cal - base
        # integer days + seconds + microseconds keeps the arithmetic exact
        seconds = delta.days * 86400 + delta.seconds + delta.microseconds * 1e-6
        return cls.from_seconds(seconds, scale)

    def to_calendar(self) -> datetime:
        """The calendar date-time in this time scale (microsecond resolution)."""
        base = GPS_EPOCH if self.scale != "BDT" else datetime(2006, 1, 1)
        whole = int(self.sow)
        micro = round((self.sow - whole) * 1e6)
        return base + timedelta(weeks=self.week, seconds=whole, microseconds=micro)

    @classmethod
    def from_utc(cls, utc: datetime) -> GNSSTime:
        """From a UTC datetime (naive = UTC; aware ones converted), as GPST with leap seconds."""
        if utc.tzinfo is not None:
            utc = utc.astimezone(UTC).replace(tzinfo=None)
        return cls.from_calendar(utc + timedelta(seconds=leap_seconds(utc)), "GPST")

    def to_utc(self) -> datetime:
        """UTC as a naive datetime (leap seconds applied)."""
        gpst = self.to_scale("GPST").to_calendar()
        return gpst - timedelta(seconds=_gps_leap_at(gpst))

    def __str__(self) -> str:
        return f"{self.to_calendar().isoformat(sep=' ')} {self.scale}"


def glonass_time_to_utc(glot: datetime) -> datetime:
    """GLONASS system time is UTC(SU) + 3 h; returns UTC."""
    return glot - timedelta(hours=3)


# --- satellites and signals ---------------------------------------------------------

def sat_id(system: str, prn: int) -> str:
    """RINEX 3 satellite id, e.g. ``sat_id("C", 19) == "C19"``."""
    if system not in SYSTEMS or not 0 < prn < 100:
        raise ValueError(f"bad satellite {system}{prn}")
    return f"{system}{prn:02d}"


def parse_sat(text: str, default_system: str = "G") -> str:
    """Normalise "G 5", " 5", "G05", "R7" to a RINEX 3 id ("G05"); blank system = GPS."""
    text = text.strip()
    if not text:
        raise ValueError("empty satellite id")
    if text[0].isdigit():
        return sat_id(default_system, int(text))
    return sat_id(text[0], int(text[1:]))


# carrier frequency (MHz) per system and RINEX band digit; GLONASS FDMA bands use k
_FREQ_MHZ: dict[str, dict[str, float]] = {
    "G": {"1": 1575.42, "2": 1227.60, "5": 1176.45},
    "R": {"3": 1202.025, "4": 1600.995, "6": 1248.06},
    "E": {"1": 1575.42, "5": 1176.45, "7": 1207.14, "8": 1191.795, "6": 1278.75},
    "C": {"2": 1561.098, "1": 1575.42, "5": 1176.45, "7": 1207.14, "8": 1191.795,
          "6": 1268.52},
    "J": {"1": 1575.42, "2": 1227.60, "5": 1176.45, "6": 1278.75},
    "S": {"1": 1575.42, "5": 1176.45},
    "I": {"5": 1176.45, "9": 2492.028},
}


def frequency(system: str, band: str, glo_k: int | None = None) -> float:
    """Carrier frequency in Hz of ``band`` (the RINEX digit) on ``system``.

    GLONASS G1/G2 are FDMA: 1602 + 0.5625·k and 1246 + 0.4375·k MHz, so ``glo_k``
    (the frequency channel number, −7…+6) is required for bands 1 and 2.
    """
    if system == "R" and band in "12":
        if glo_k is None:
            raise ValueError(f"GLONASS band {band} needs the frequency channel k")
        return (1602.0 + 0.5625 * glo_k if band == "1" else 1246.0 + 0.4375 * glo_k) * 1e6
    try:
        return _FREQ_MHZ[system][band] * 1e6
    except KeyError:
        raise ValueError(f"no band {band} on system {system}") from None


def wavelength(system: str, code: str, glo_k: int | None = None) -> float:
    """Carrier wavelength (m) for an observation code ("L1C", "C2I", …) on ``system``."""
    return CLIGHT / frequency(system, code[1], glo_k)


# --- observations -------------------------------------------------------------------

EPOCH_OK, EPOCH_POWER_FAILURE, EPOCH_MOVING, EPOCH_NEW_SITE = 0, 1, 2, 3
EPOCH_HEADER, EPOCH_EXTERNAL, EPOCH_CYCLE_SLIPS = 4, 5, 6


@dataclass(slots=True, eq=False)
class ObsEpoch:
    """One observation epoch, dense per epoch: rows are satellites, columns are codes.

    ``values[i, j]`` is code ``codes[j]`` of satellite ``sats[i]`` (NaN = not observed);
    ``lli`` and ``ssi`` (uint8, 0 = blank) are the RINEX loss-of-lock and signal-strength
    indicators for the same cell. ``flag`` is the RINEX epoch flag (0 ok, 1 power failure
    before this epoch, 2–5 events: no observations, ``event_lines`` holds their text,
    6 cycle slip records). ``clock_offset`` is the receiver clock offset (s) if given.
    """

    time: GNSSTime
    sats: tuple[str, ...]
    codes: tuple[str, ...]
    values: np.ndarray  # float64 (nsat, ncode)
    lli: np.ndarray  # uint8 (nsat, ncode)
    ssi: np.ndarray  # uint8 (nsat, ncode)
    flag: int = EPOCH_OK
    clock_offset: float | None = None
    event_lines: tuple[str, ...] = ()

    @classmethod
    def empty(cls, time: GNSSTime, sats: tuple[str, ...], codes: tuple[str, ...],
              flag: int = EPOCH_OK) -> ObsEpoch:
        """An epoch with every value NaN, ready to be filled in place."""
        shape = (len(sats), len(codes))
        return cls(time, sats, codes, np.full(shape, np.nan),
                   np.zeros(shape, np.uint8), np.zeros(shape, np.uint8), flag)

    def get(self, sat: str, code: str) -> float:
        """One value (NaN when absent)."""
        try:
            return float(self.values[self.sats.index(sat), self.codes.index(code)])
        except ValueError:
            return float("nan")

    def column(self, code: str) -> np.ndarray:
        """Values of one code for every satellite of the epoch (NaN where absent)."""
        if code not in self.codes:
            return np.full(len(self.sats), np.nan)
        return self.values[:, self.codes.index(code)]

    def select(self, codes: tuple[str, ...]) -> ObsEpoch:
        """A copy keeping only ``codes`` (absent ones become NaN columns)."""
        out = ObsEpoch.empty(self.time, self.sats, codes, self.flag)
        for j, c in enumerate(codes):
            if c in self.codes:
                k = self.codes.index(c)
                out.values[:, j] = self.values[:, k]
                out.lli[:, j] = self.lli[:, k]
                out.ssi[:, j] = self.ssi[:, k]
        out.clock_offset, out.event_lines = self.clock_offset, self.event_lines
        return out


@dataclass(slots=True)
class ObsHeader:
    """What an observation file says about itself (RINEX 3 names; all optional but types).

    ``obs_types`` maps system letter → its codes in file order; ``glonass_slots`` maps
    "R07" → frequency channel k; positions in metres (ECEF), antenna delta H/E/N in metres.
    """

    obs_types: dict[str, tuple[str, ...]] = field(default_factory=dict)
    version: float = 3.04
    marker_name: str = ""
    marker_number: str = ""
    receiver: tuple[str, str, str] = ("", "", "")  # number, type, version
    antenna: tuple[str, str] = ("", "")  # number, type
    approx_xyz: tuple[float, float, float] = (0.0, 0.0, 0.0)
    antenna_delta_hen: tuple[float, float, float] = (0.0, 0.0, 0.0)
    interval: float | None = None  # s
    time_of_first: GNSSTime | None = None
    time_system: str = "GPS"
    leap_seconds: int | None = None
    glonass_slots: dict[str, int] = field(default_factory=dict)
    glonass_cod_phs_bis: str = ""  # the raw header value, kept for export
    phase_shifts: tuple[str, ...] = ()  # raw "SYS / PHASE SHIFT" values, kept for export
    comments: tuple[str, ...] = ()


@dataclass(slots=True)
class ObsData:
    """An observation file or session: header plus epochs in time order."""

    header: ObsHeader
    epochs: list[ObsEpoch] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # what an import skipped, and why

    def times(self) -> np.ndarray:
        """GPST seconds since 1980-01-06 of every epoch (float64 array)."""
        return np.array([e.time.gps_seconds for e in self.epochs], dtype=np.float64)


# --- broadcast ephemerides ----------------------------------------------------------

@dataclass(frozen=True, slots=True)
class KeplerEphemeris:
    """GPS LNAV, Galileo (I/NAV or F/NAV), BeiDou D1/D2, QZSS, NavIC broadcast orbit.

    Field names and units as in RINEX 3 navigation files (s, m, rad, rad/s, m^½ for
    ``sqrta``). ``toc`` is a :class:`GNSSTime` and ``toe``/``ttr`` seconds of week, all in
    the system's own scale (``time_scale``: GPST for G/J/I, GST for E, BDT for C); ``week``
    as in the file (GPS week for G/E/J, BDT week for C).
    Per-system meaning of shared slots:
    ``iode`` GPS IODE / Galileo IODnav / BeiDou AODE; ``iodc`` GPS IODC / BeiDou AODC;
    ``tgd`` GPS TGD / Galileo BGD E5a-E1 / BeiDou TGD1 (B1I); ``tgd2`` Galileo BGD E5b-E1 /
    BeiDou TGD2 (B2I); ``codes`` GPS L2 codes / Galileo data sources; ``fit`` GPS fit
    interval (h); ``sva`` accuracy (m; Galileo SISA).
    """

    sat: str
    toc: GNSSTime
    af0: float
    af1: float
    af2: float
    iode: float
    crs: float
    deltan: float
    m0: float
    cuc: float
    e: float
    cus: float
    sqrta: float
    toe: float
    cic: float
    omega0: float
    cis: float
    i0: float
    crc: float
    omega: float
    omegadot: float
    idot: float
    codes: float
    week: int
    l2p_flag: float
    sva: float
    svh: float
    tgd: float
    tgd2: float
    iodc: float
    ttr: float
    fit: float = 0.0

    @property
    def system(self) -> str:
        return self.sat[0]

    @property
    def time_scale(self) -> str:
        return {"E": "GST", "C": "BDT"}.get(self.sat[0], "GPST")

    @property
    def toe_time(self) -> GNSSTime:
        """toe as a full :class:`GNSSTime` in the system's scale."""
        return GNSSTime(self.week, self.toe, self.time_scale)


@dataclass(frozen=True, slots=True)
class GlonassEphemeris:
    """GLONASS (and SBAS-like) state-vector ephemeris, as in RINEX 3 navigation files.

    ``toc`` is UTC (RINEX writes GLONASS epochs in UTC) as a naive datetime.
    ``minus_taun`` is the RINEX value −τn (s; the clock correction is −τn + γn·(t − toc)),
    ``gamman`` +γn, ``tk`` message frame time (s of UTC week), position km, velocity
    km/s, acceleration km/s² (PZ-90), ``health`` (0 = ok), ``k`` frequency channel,
    ``age`` age of operation information (days).
    """

    sat: str
    toc: datetime
    minus_taun: float
    gamman: float
    tk: float
    x: float
    vx: float
    ax: float
    health: float
    y: float
    vy: float
    ay: float
    k: int
    z: float
    vz: float
    az: float
    age: float
    extra: tuple[float, ...] = ()  # RINEX 3.05 fourth orbit line, kept verbatim

    @property
    def taun(self) -> float:
        return -self.minus_taun


Ephemeris = KeplerEphemeris | GlonassEphemeris


@dataclass(slots=True)
class NavData:
    """A navigation file or session: header corrections plus ephemerides in file order.

    ``ionospheric`` maps "GPSA"/"GPSB"/"GAL"/"BDSA"… to their coefficients;
    ``time_corrections`` keeps "TIME SYSTEM CORR" values verbatim for export.
    """

    ephemerides: list[Ephemeris] = field(default_factory=list)
    version: float = 3.04
    ionospheric: dict[str, tuple[float, ...]] = field(default_factory=dict)
    time_corrections: tuple[str, ...] = ()
    leap_seconds: int | None = None
    skipped: int = 0  # records not understood (counted, not fatal)
    problems: list[str] = field(default_factory=list)  # why they were skipped
