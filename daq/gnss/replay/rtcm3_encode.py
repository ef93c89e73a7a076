"""Encode the GNSS model into RTCM 3 frames (RTCM 10403.3): MSM4/MSM7, 1019/1042/1045/1046,
1005. The inverse of :mod:`daq.gnss.streams.rtcm3` and :mod:`daq.gnss.streams.rtcm3_eph`; sans-I/O.

Usage::

    enc = Rtcm3Encoder(station_id=0)
    data = enc.station((x, y, z))                      # 1005, ECEF metres
    data += b"".join(enc.ephemeris(e) for e in ephs)   # obs.KeplerEphemeris (G, C, E)
    data += b"".join(enc.epoch(obs_epoch))             # MSM7 1077/1097/1127 (msm=4: 10x4)

Conventions (those of the decoder): pseudorange m, phase cycles (× wavelength = phase
range), Doppler Hz (range rate = −D·λ), CNR dB-Hz (RINEX ``S``). Each satellite's rough
range (DF397/DF398, 2⁻¹⁰ ms) is the middle of its pseudoranges; fine pseudorange DF405
(2⁻²⁹ ms ≈ 0.56 mm), fine phase range DF406 (2⁻³¹ ms ≈ 0.14 mm), fine rate DF404
(0.1 mm/s). A phase range more than ±2⁻⁸ ms (±1171 m) from the rough range is shifted by
whole cycles, as RTKLIB's encoder does, at a slip (or forcing one, counted ``phase_shift``).
Lock time (DF407/DF402) counts from the signal's first epoch or its last RINEX LLI bit 0;
a first epoch without LLI is reported with the shortest non-zero lock time (1 ms MSM7,
32 ms MSM4) so the decoder sees no slip the file did not have. LLI bit 1 → half-cycle
ambiguity DF420. The multiple-message bit is set on every message of an epoch but the
last. Epoch time is whole milliseconds of week; BeiDou's is BDT = GPST − 14 s.
Values a field cannot hold are sent as "invalid" and counted in :attr:`Rtcm3Encoder.skipped`.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Sequence

from daq.gnss import obs
from daq.gnss.streams.framing import crc24q
from daq.gnss.streams.rtcm3 import LOCK_EX_MS, LOCK_MS, RANGE_MS
from daq.gnss.streams.rtcm3_eph import BDS_1042, GAL_1045, GAL_1046, GPS_1019, Field
from daq.gnss.streams.signals import msm_signal, wavelength

MSM_NUMBER = {"G": 1070, "E": 1090, "C": 1120}       # + 4 or 7
EPH_SYSTEMS = "GCE"
_SIG_ID = {sys: {msm_signal(sys, i): i for i in range(1, 33) if msm_signal(sys, i)}
           for sys in "GRECJ"}
_URA_UPPER = [2.4, 3.4, 4.85, 6.85, 9.65, 13.65, 24.0, 48.0, 96.0, 192.0, 384.0, 768.0,
              1536.0, 3072.0, 6144.0]
P2_10, P2_24, P2_29, P2_31 = 2.0**-10, 2.0**-24, 2.0**-29, 2.0**-31
WEEK_S = 604800


class EncodeError(ValueError):
    """A value does not fit its RTCM field; ``field`` names it."""

    def __init__(self, field: str, value: object) -> None:
        super().__init__(f"{field}: {value!r} does not fit")
        self.field = field


class _BitWriter:
    """Big-endian bit sequence (bit 0 = MSB of the first byte), padded to whole bytes."""

    __slots__ = ("nbits", "value")

    def __init__(self) -> None:
        self.value = 0
        self.nbits = 0

    def u(self, v: int, n: int, name: str = "") -> None:
        if not 0 <= v < 1 << n:
            raise EncodeError(name or f"u{n}", v)
        self.value = (self.value << n) | v
        self.nbits += n

    def s(self, v: int, n: int, name: str = "") -> None:
        if not -(1 << (n - 1)) <= v < 1 << (n - 1):
            raise EncodeError(name or f"s{n}", v)
        self.u(v & ((1 << n) - 1), n)

    def payload(self) -> bytes:
        nbytes = (self.nbits + 7) // 8
        return (self.value << (nbytes * 8 - self.nbits)).to_bytes(nbytes, "big")


def frame(payload: bytes) -> bytes:
    """Wrap a message: 0xD3, 6 zero bits + 10-bit length, payload, CRC-24Q."""
    if len(payload) > 1023:
        raise EncodeError("length", len(payload))
    head = bytes((0xD3, len(payload) >> 8, len(payload) & 0xFF)) + payload
    return head + crc24q(head).to_bytes(3, "big")


def station_1005(xyz: Sequence[float], station_id: int = 0, itrf_year: int = 0) -> bytes:
    """1005 antenna reference point, ECEF metres (0.1 mm), GPS + Galileo + BeiDou flagged."""
    w = _BitWriter()
    w.u(1005, 12)
    w.u(station_id, 12, "station_id")
    w.u(itrf_year, 6, "itrf_year")
    w.u(0b1010, 4)          # GPS yes, GLONASS no, Galileo yes, reference-station indicator 0
    w.s(round(xyz[0] * 1e4), 38, "x")
    w.u(0, 2)               # single receiver oscillator, reserved
    w.s(round(xyz[1] * 1e4), 38, "y")
    w.u(0, 2)               # quarter-cycle indicator
    w.s(round(xyz[2] * 1e4), 38, "z")
    return frame(w.payload())


# --- ephemerides --------------------------------------------------------------------

def ura_index(metres: float) -> int:
    """GPS/BeiDou URA metres → index 0–15 (the smallest whose ICD upper bound holds it)."""
    return next((i for i, top in enumerate(_URA_UPPER) if metres <= top + 1e-9), 15)


def sisa_index(metres: float) -> int:
    """Galileo SISA metres → index (inverse of ``to_model.sisa_metres``); < 0 → 255."""
    if metres < 0:
        return 255
    for lo, step, n0, n1 in ((0.0, 0.01, 0, 50), (0.5, 0.02, 50, 75), (1.0, 0.04, 75, 100),
                             (2.0, 0.16, 100, 126)):
        n = n0 + round((metres - lo) / step)
        if n < n1:
            return max(n, n0)
    return 255


def _kepler_fields(e: obs.KeplerEphemeris) -> dict[str, float]:
    return {"prn": int(e.sat[1:]), "IDOT": e.idot, "Toc": e.toc.sow,
            "SVclockDriftRate": e.af2, "SVclockDrift": e.af1, "SVclockBias": e.af0,
            "Crs": e.crs, "DeltaN": e.deltan, "M0": e.m0, "Cuc": e.cuc, "Eccentricity": e.e,
            "Cus": e.cus, "sqrtA": e.sqrta, "Toe": e.toe, "Cic": e.cic, "Omega0": e.omega0,
            "Cis": e.cis, "Io": e.i0, "Crc": e.crc, "omega": e.omega, "OmegaDot": e.omegadot}


def ephemeris_message(e: obs.KeplerEphemeris) -> tuple[int, list[Field], dict[str, float]]:
    """The message number, field table and field values (SI) for one ephemeris."""
    f = _kepler_fields(e)
    svh = int(e.svh)
    if e.system == "G":
        f.update(GPSWeek=e.week % 1024, SVacc=ura_index(e.sva), CodesL2=int(e.codes),
                 IODE=e.iode, IODC=e.iodc, TGD=e.tgd, health=svh, L2Pflag=e.l2p_flag,
                 FitIntvl=0 if e.fit in (0.0, 4.0) else 1)
        return 1019, GPS_1019, f
    if e.system == "C":
        f.update(BDTWeek=e.week, SVacc=ura_index(e.sva), AODE=e.iode, AODC=e.iodc,
                 TGD1=e.tgd, TGD2=e.tgd2, SatH1=svh & 1)
        return 1042, BDS_1042, f
    if e.system == "E":
        f.update(GALWeek=(e.week - 1024) % 4096, IODnav=e.iode, SISA=sisa_index(e.sva),
                 BGDe5a=e.tgd, BGDe5b=e.tgd2, E1BDVS=svh & 1, E1BHS=svh >> 1 & 3,
                 E5aDVS=svh >> 3 & 1, E5aHS=svh >> 4 & 3, E5bDVS=svh >> 6 & 1,
                 E5bHS=svh >> 7 & 3)
        fnav = int(e.codes) & 2 and not int(e.codes) & 5   # data source F/NAV only
        return (1045, GAL_1045, f) if fnav else (1046, GAL_1046, f)
    raise EncodeError("system", e.sat)


def encode_ephemeris(e: obs.KeplerEphemeris) -> bytes:
    """1019 (GPS), 1042 (BeiDou), 1046 (Galileo I/NAV) or 1045 (F/NAV-only records)."""
    msg, table, f = ephemeris_message(e)
    w = _BitWriter()
    w.u(msg, 12)
    for name, n, kind, scale in table:
        value = f[name] if name else 0.0
        raw = round(value / scale) if scale != 1 else int(value)
        (w.s if kind == "s" else w.u)(raw, n, name)
    return frame(w.payload())


# --- MSM observations -----------------------------------------------------------------

def _lock_indicator(lock_ms: int, msm: int) -> int:
    if msm == 7:
        return min(bisect_right(LOCK_EX_MS, lock_ms) - 1, 704)
    return max(bisect_right(LOCK_MS, lock_ms) - 1, 0)


def _fine(value: float | None, base: float, unit: float, bits: int) -> int:
    """Fine field (value − base) in ``unit``; the invalid code when absent or too large."""
    invalid = -(1 << (bits - 1))
    if value is None or not math.isfinite(value):
        return invalid
    raw = round((value - base) / unit)
    return raw if invalid < raw < -invalid else invalid


class Rtcm3Encoder:
    """Stateful encoder for one reference station (lock times, phase offsets per signal)."""

    def __init__(self, station_id: int = 0) -> None:
        self.station_id = station_id
        self.skipped: Counter[str] = Counter()   # what could not be encoded, and why
        self._lock_start: dict[tuple[str, str], float] = {}
        self._offset: dict[tuple[str, str], int] = {}  # whole cycles taken off the phase

    def station(self, xyz: Sequence[float]) -> bytes:
        return station_1005(xyz, self.station_id)

    def ephemeris(self, e: obs.KeplerEphemeris) -> bytes:
        return encode_ephemeris(e)

    def epoch(self, epoch: obs.ObsEpoch, systems: str = "GEC", msm: int = 7) -> list[bytes]:
        """The MSM frames of one epoch, systems in ``systems`` order (G, E, C supported)."""
        if msm not in (4, 7):
            raise ValueError("msm must be 4 or 7")
        t = epoch.time.gps_seconds
        blocks = []
        for sys in systems:
            if sys not in MSM_NUMBER:
                self.skipped[f"system_{sys}"] += 1
                continue
            blocks += self._system_blocks(epoch, sys, msm, t)
        out = []
        for i, (sys, sats, sigs, cells) in enumerate(blocks):
            out.append(frame(self._msm_payload(epoch.time, sys, msm, sats, sigs, cells,
                                               more=i < len(blocks) - 1)))
        return out

    def _system_blocks(self, epoch: obs.ObsEpoch, sys: str, msm: int, t: float) -> list[
            tuple[str, list[tuple[int, int, int]], list[int], dict[tuple[int, int], list[int]]]]:
        col = {c: j for j, c in enumerate(epoch.codes)}
        sigs: dict[int, str] = {}
        for code in epoch.codes:
            sig_id = _SIG_ID.get(sys, {}).get(code[1:])
            if sig_id is None:
                continue
            sigs[sig_id] = code[1:]
        sat_rows = sorted((int(s[1:]), i) for i, s in enumerate(epoch.sats)
                          if s[0] == sys and 0 < int(s[1:]) <= 64)
        sats: list[tuple[int, int, int]] = []            # prn, rough range, rough rate
        cells: dict[tuple[int, int], list[int]] = {}     # (prn, sig) → fine fields
        hi = msm == 7
        for prn, row in sat_rows:
            sat = epoch.sats[row]
            vals: dict[int, tuple[float, float, float, float, int, float]] = {}
            for sig_id, code in sorted(sigs.items()):
                lam = wavelength(sys, code) or math.nan
                get = {k: (float(epoch.values[row, col[k + code]]) if k + code in col
                           else math.nan) for k in "CLDS"}
                lli = int(epoch.lli[row, col["L" + code]]) if "L" + code in col else 0
                if not any(math.isfinite(get[k]) for k in "CLD"):
                    continue
                vals[sig_id] = (get["C"], get["L"] * lam, -get["D"] * lam, get["S"], lli, lam)
            prs = [v[0] for v in vals.values() if math.isfinite(v[0])]
            cps = [v[1] for v in vals.values() if math.isfinite(v[1])]
            ref = prs or cps
            if not ref:
                continue
            rough = round((min(ref) + max(ref)) / 2 / RANGE_MS / P2_10)
            if not 0 <= rough < 255 << 10:
                self.skipped["rough_range"] += 1
                continue
            base = rough * P2_10 * RANGE_MS
            rates = [v[2] for v in vals.values() if math.isfinite(v[2])]
            rrate = round(sum(rates) / len(rates)) if rates else -8192
            rrate = rrate if -8192 < rrate < 8192 else -8192
            sats.append((prn, rough, rrate))
            for sig_id, (pr, cpm, rate, cnr, lli, lam) in vals.items():
                key = (sat, sigs[sig_id])
                cp_f, reset = self._phase(key, cpm, base, lam, lli, hi)
                if reset or key not in self._lock_start:
                    self._lock_start[key] = t if reset else t - (0.001 if hi else 0.032)
                lock = _lock_indicator(round((t - self._lock_start[key]) * 1000), msm)
                pr_f = _fine(pr, base, (P2_29 if hi else P2_24) * RANGE_MS, 20 if hi else 15)
                if math.isfinite(pr) and pr_f == -(1 << (19 if hi else 14)):
                    self.skipped["fine_pseudorange"] += 1
                rate_f = _fine(rate, rrate, 1e-4, 15) if rrate != -8192 else -16384
                c = 0
                if math.isfinite(cnr) and cnr > 0:
                    c = min(round(cnr * 16) if hi else round(cnr), 1023 if hi else 63)
                cells[(prn, sig_id)] = [pr_f, cp_f, lock, lli >> 1 & 1, c, rate_f]
        used = sorted({g for (_p, g) in cells})
        if not sats or not used:
            return []
        per = max(1, 64 // len(used))
        return [(sys, sats[i:i + per], used, cells) for i in range(0, len(sats), per)]

    def _phase(self, key: tuple[str, str], cpm: float, base: float, lam: float, lli: int,
               hi: bool) -> tuple[int, bool]:
        """Fine phase range (and whether lock restarts), shifting by whole cycles if needed."""
        bits, unit = (24, P2_31 * RANGE_MS) if hi else (22, P2_29 * RANGE_MS)
        slip = bool(lli & 1)
        if not math.isfinite(cpm):
            return -(1 << (bits - 1)), slip
        limit = (1 << (bits - 1)) - 1
        first = key not in self._offset
        if first or slip:
            self._offset[key] = 0
        fine = round((cpm - self._offset[key] * lam - base) / unit)
        if abs(fine) >= limit:
            if not (first or slip):
                self.skipped["phase_shift"] += 1
                slip = True
            self._offset[key] = round((cpm - base) / lam)
            fine = round((cpm - self._offset[key] * lam - base) / unit)
        return fine, slip

    def _msm_payload(self, time: obs.GNSSTime, sys: str, msm: int,
                     sats: list[tuple[int, int, int]], sigs: list[int],
                     cells: dict[tuple[int, int], list[int]], more: bool) -> bytes:
        w = _BitWriter()
        w.u(MSM_NUMBER[sys] + msm, 12)
        w.u(self.station_id, 12, "station_id")
        sow = time.to_scale("BDT").sow if sys == "C" else time.sow
        w.u(round(sow * 1000) % (WEEK_S * 1000), 30, "epoch")
        w.u(int(more), 1)
        w.u(0, 3 + 7 + 2 + 2 + 1 + 3)   # IODS, reserved, clock steering, ext clock, smoothing
        prns = [s[0] for s in sats]
        w.u(sum(1 << (64 - p) for p in prns), 64)
        w.u(sum(1 << (32 - g) for g in sigs), 32)
        present = [(p, g) for p in prns for g in sigs if (p, g) in cells]
        for p in prns:
            for g in sigs:
                w.u(int((p, g) in cells), 1)
        ext = msm == 7
        for _p, rough, _r in sats:
            w.u(rough >> 10, 8)
        if ext:
            for _ in sats:
                w.u(0, 4)                # extended satellite info (GLONASS only)
        for _p, rough, _r in sats:
            w.u(rough & 1023, 10)
        if ext:
            for _p, _g, rate in sats:
                w.s(rate, 14)
        widths = (20, 24, 10) if ext else (15, 22, 4)
        for k, n in enumerate(widths):
            for cell in present:
                (w.u if k == 2 else w.s)(cells[cell][k], n)
        for cell in present:
            w.u(cells[cell][3], 1)
        for cell in present:
            w.u(cells[cell][4], 10 if ext else 6)
        if ext:
            for cell in present:
                w.s(cells[cell][5], 15)
        return w.payload()
