"""Signals: RINEX observation codes, carrier frequencies and wavelengths per system.

Systems use RINEX letters: ``G`` GPS, ``R`` GLONASS, ``E`` Galileo, ``C`` BeiDou,
``J`` QZSS, ``S`` SBAS. A signal is a RINEX 3 code without its type letter (``"1C"``, ``"2W"``,
``"2I"``). Frequencies in Hz; GLONASS FDMA bands need the frequency channel k (−7…+6).
"""

from __future__ import annotations

CLIGHT = 299792458.0  # m/s

# RTCM 10403.3 MSM signal ID (1…32) → RINEX code, per system (tables 3.5-91 … 3.5-108).
_MSM = {
    "G": ["", "1C", "1P", "1W", "", "", "", "2C", "2P", "2W", "", "", "", "", "2S", "2L",
          "2X", "", "", "", "", "5I", "5Q", "5X", "", "", "", "", "", "1S", "1L", "1X"],
    "R": ["", "1C", "1P", "", "", "", "", "2C", "2P", "", "", "", "", "", "", "",
          "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", ""],
    "E": ["", "1C", "1A", "1B", "1X", "1Z", "", "6C", "6A", "6B", "6X", "6Z", "", "7I",
          "7Q", "7X", "", "8I", "8Q", "8X", "", "5I", "5Q", "5X", "", "", "", "", "", "",
          "", ""],
    "C": ["", "2I", "2Q", "2X", "", "", "", "6I", "6Q", "6X", "", "", "", "7I", "7Q", "7X",
          "", "", "", "", "", "5D", "5P", "5X", "7D", "", "", "", "", "1D", "1P", "1X"],
    "J": ["", "1C", "", "", "", "", "", "", "6S", "6L", "6X", "", "", "", "2S", "2L", "2X",
          "", "", "", "", "5I", "5Q", "5X", "", "", "", "", "", "1S", "1L", "1X"],
}


def msm_signal(sys: str, sig_id: int) -> str:
    """RINEX code of MSM signal ``sig_id`` (1-based); ``""`` when the ID is unassigned."""
    table = _MSM.get(sys)
    if table is None or not 1 <= sig_id <= 32:
        return ""
    return table[sig_id - 1]


_BAND_HZ = {
    "G": {"1": 1575.42e6, "2": 1227.60e6, "5": 1176.45e6},
    "J": {"1": 1575.42e6, "2": 1227.60e6, "5": 1176.45e6, "6": 1278.75e6},
    "E": {"1": 1575.42e6, "5": 1176.45e6, "7": 1207.14e6, "8": 1191.795e6, "6": 1278.75e6},
    "C": {"1": 1575.42e6, "2": 1561.098e6, "5": 1176.45e6, "6": 1268.52e6, "7": 1207.14e6,
          "8": 1191.795e6},
    "R": {"4": 1600.995e6, "6": 1248.06e6, "3": 1202.025e6},
    "S": {"1": 1575.42e6, "5": 1176.45e6},
}
_GLO_FDMA = {"1": (1602.0e6, 0.5625e6), "2": (1246.0e6, 0.4375e6)}


def frequency(sys: str, code: str, glo_k: int | None = None) -> float | None:
    """Carrier frequency (Hz) of ``code`` in ``sys``; None if unknown (GLONASS without k)."""
    if not code:
        return None
    band = code[0]
    if sys == "R" and band in _GLO_FDMA:
        if glo_k is None or not -7 <= glo_k <= 13:
            return None
        base, step = _GLO_FDMA[band]
        return base + glo_k * step
    return _BAND_HZ.get(sys, {}).get(band)


def wavelength(sys: str, code: str, glo_k: int | None = None) -> float | None:
    """Carrier wavelength (m), or None when the frequency is unknown."""
    f = frequency(sys, code, glo_k)
    return CLIGHT / f if f else None
