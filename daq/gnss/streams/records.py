"""What the stream decoders produce: observation epochs, ephemerides, station records.

Conventions: pseudorange ``pr`` in metres, carrier phase ``cp`` in cycles (RINEX sign:
phase grows as the range grows), ``doppler`` in Hz (positive when approaching), ``cnr`` in
dB-Hz, ``lock_ms`` the receiver's continuous-tracking time. ``slip`` is RINEX LLI bit 0
(loss of lock since the previous epoch), ``half_cycle`` LLI bit 1 (half-cycle ambiguity
unresolved). Time is GPS time: ``week`` and ``tow`` (seconds of week); BeiDou time is
GPST − 14 s and GLONASS time UTC(SU) + 3 h, converted here.

Ephemeris fields use georinex's RINEX-navigation names (``sqrtA``, ``Toe``, ``M0`` …) in
SI units and radians, so the RINEX writer and the session recorder can store them as they
come.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class SignalObs:
    sys: str                 # G R E C J
    prn: int
    code: str                # RINEX code without type letter: "1C", "2W", "2I"
    pr: float | None         # m
    cp: float | None         # cycles
    doppler: float | None    # Hz
    cnr: float | None        # dB-Hz
    lock_ms: int | None
    slip: bool = False
    half_cycle: bool = False


@dataclass(slots=True)
class ObsEpoch:
    """Observations of one epoch from one message (MSM, legacy RTCM, UBX RXM-RAWX/RAW).

    ``tow`` is GPS seconds of week (``None`` when the message cannot say, e.g. GLONASS
    day-of-week unknown). ``more`` is True when further messages of the same epoch follow
    (RTCM multiple-message bit). ``week`` is None when the message carries no week.
    """

    source: str              # "rtcm1077", "ubx_rawx", ...
    sys: str                 # "G", "R" ... or "M" for a multi-system message (UBX)
    tow: float | None
    week: int | None = None
    station: int | None = None
    more: bool = False
    signals: list[SignalObs] = field(default_factory=list)


@dataclass(slots=True)
class Ephemeris:
    """One broadcast ephemeris record; ``fields`` keyed by georinex RINEX-nav names."""

    source: str              # "rtcm1019", "ubx_sfrbx_gps", ...
    sys: str
    prn: int
    week: int                # the system's own week number as broadcast (GPS/GAL/BDS)
    toc: float               # s of the system's week (GLONASS: s of the UTC(SU) day)
    fields: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class Station:
    """RTCM 1005/1006 antenna reference point (ECEF, m) and antenna height (m)."""

    station: int
    x: float
    y: float
    z: float
    height: float | None
    itrf_year: int


@dataclass(slots=True)
class Unsupported:
    """A valid frame of a type the decoder does not decode (counted, not an error)."""

    kind: str
    msg: object


@dataclass(slots=True)
class SystemTime:
    """A full GPST instant a message carries (RTCM 1013): dates a stream that has only TOW."""

    source: str              # "rtcm1013"
    gps_seconds: float       # GPST seconds since 1980-01-06
