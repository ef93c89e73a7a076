"""RTCM 3 decoding, cross-checked field by field against pyrtcm on real and generated frames."""

from __future__ import annotations

import math
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from pyrtcm import RTCMReader

from daq.gnss.streams.framing import Framer, crc24q
from daq.gnss.streams.records import Ephemeris, ObsEpoch, Station
from daq.gnss.streams.rtcm3 import LOCK_EX_MS, LOCK_MS, RANGE_MS, Rtcm3Decoder
from daq.gnss.streams.rtcm3_eph import SC
from daq.gnss.streams.signals import wavelength

DATA = (Path(__file__).resolve().parents[1] / "../shared/data/gnss").resolve()
RAW = DATA / "raw"
F9P_RTCM = RAW / "f9p_2021/20210809-111055-rtcm3-base-corrections.rtcm3"
GMSD = RAW / "rtklib_samples/GMSD7_20121014.rtcm3"
TESTGLO = RAW / "rtklib_samples/testglo.rtcm3"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"GNSS data folder {DATA} absent")


def frames(path: Path, chunk: int = 4096) -> list[Any]:
    data = path.read_bytes()
    fr = Framer()
    out = []
    for i in range(0, len(data), chunk):
        out += fr.feed(data[i:i + chunk])
    return out + fr.flush()


def pyrtcm_counts(path: Path) -> Counter[int]:
    with path.open("rb") as stream:
        return Counter(int(p.identity) for _raw, p in RTCMReader(stream, quitonerror=0)
                       if p is not None)


def wrap(payload: bytes) -> bytes:
    head = bytes([0xD3, len(payload) >> 8 & 3, len(payload) & 0xFF]) + payload
    return head + crc24q(head).to_bytes(3, "big")


@pytest.mark.parametrize("path", [F9P_RTCM, GMSD, TESTGLO], ids=lambda p: p.name)
def test_message_counts_per_type_equal_pyrtcm_on_real_logs(path: Path) -> None:
    ours = Counter(f.msg for f in frames(path))
    assert ours == pyrtcm_counts(path)


def test_msm7_observations_match_pyrtcm_fields_for_every_cell() -> None:
    """Pseudorange to 1 mm, phase to 1e-3 cycle, Doppler, CNR, lock and half-cycle exact."""
    dec = Rtcm3Decoder()
    checked = Counter[str]()
    for frame in frames(F9P_RTCM) + frames(GMSD):
        if frame.msg not in (1077, 1087, 1097, 1117, 1127):
            dec.decode(frame.payload)
            continue
        ours = dec.decode(frame.payload)
        ref = RTCMReader.parse(frame.raw)
        _compare_msm(ours, ref, hi=True)
        checked[ours.sys] += len(ours.signals)
    assert set(checked) == {"G", "R", "E", "C", "J"}
    assert sum(checked.values()) > 60000


def _compare_msm(ours: ObsEpoch, ref: Any, hi: bool, fcn: dict[int, int] | None = None
                 ) -> None:
    off = 192 if ours.sys == "J" else 0   # pyrtcm numbers QZSS 193…, RINEX J01…
    sats = {int(getattr(ref, f"PRN_{i + 1:02d}")) - off: i + 1 for i in range(ref.NSat)}
    got = {(s.prn, s.code): s for s in ours.signals}
    matched = 0
    for c in range(1, ref.NCell + 1):
        prn = int(getattr(ref, f"CELLPRN_{c:02d}"))
        if ours.sys == "J":
            prn -= 192
        s = got.get((prn, getattr(ref, f"CELLSIG_{c:02d}")))
        if s is None:   # a signal ID RTCM leaves unassigned (QZSS ID 6 in 2012): skipped
            assert not getattr(ref, f"CELLSIG_{c:02d}").isalnum()
            continue
        matched += 1
        j = sats[prn]
        rough = getattr(ref, f"DF397_{j:02d}") + getattr(ref, f"DF398_{j:02d}")
        fine_pr, fine_cp = ("DF405", "DF406") if hi else ("DF400", "DF401")
        k = None
        if ours.sys == "R":
            info = getattr(ref, f"DF419_{j:02d}", 15)
            k = info - 7 if info <= 13 else (fcn or {}).get(prn)
        lam = wavelength(ours.sys, s.code, k)
        assert s.pr == pytest.approx((rough + getattr(ref, f"{fine_pr}_{c:02d}")) * RANGE_MS,
                                     abs=1e-3)
        if lam is not None and s.cp is not None:
            cp = (rough + getattr(ref, f"{fine_cp}_{c:02d}")) * RANGE_MS / lam
            assert s.cp == pytest.approx(cp, abs=1e-3)
        if hi:
            assert s.cnr == (getattr(ref, f"DF408_{c:02d}") or None)   # 0: not measured
            assert s.lock_ms == LOCK_EX_MS[getattr(ref, f"DF407_{c:02d}")]
            rate = getattr(ref, f"DF399_{j:02d}") + getattr(ref, f"DF404_{c:02d}")
            if s.doppler is not None:
                assert s.doppler == pytest.approx(-rate / lam, abs=1e-6)
        else:
            assert s.cnr == (getattr(ref, f"DF403_{c:02d}") or None)
            assert s.lock_ms == LOCK_MS[getattr(ref, f"DF402_{c:02d}")]
        assert s.half_cycle == bool(getattr(ref, f"DF420_{c:02d}"))
    assert matched == len(got) == len(ours.signals)


def _random_msm(rng: random.Random, msg: int) -> bytes:
    """A syntactically valid MSM payload with random masks and random content."""
    nsat = rng.randint(1, 12)
    nsig = rng.randint(1, min(5, 64 // nsat))
    sats = sorted(rng.sample(range(24), nsat))   # slots every table names
    valid_sigs = {107: [1, 2, 7, 14, 15, 21], 108: [1, 7], 109: [1, 4, 13, 17, 21],
                  112: [1, 7, 13]}[msg // 10]
    sigs = sorted(rng.sample([s for s in valid_sigs if s < 32], min(nsig, len(valid_sigs))))
    nsig = len(sigs)
    cells = [rng.random() < 0.8 for _ in range(nsat * nsig)]
    cells[0] = True
    ncell = sum(cells)
    kind = msg % 10
    sat_bits = 18 if kind == 4 else 36
    cell_bits = 48 if kind == 4 else 80
    bits = [(msg, 12), (rng.getrandbits(12), 12), (rng.getrandbits(30), 30),
            (rng.getrandbits(1), 1), (0, 3), (0, 7), (0, 2), (0, 2), (0, 1), (0, 3),
            (sum(1 << (63 - s) for s in sats), 64),
            (sum(1 << (32 - s) for s in sigs), 32)]
    bits += [(int(c), 1) for c in cells]
    bits += [(rng.getrandbits(8) % 200, 8) for _ in range(nsat)]
    bits += [(rng.getrandbits((sat_bits - 8) * nsat), (sat_bits - 8) * nsat)]
    bits += [(rng.getrandbits(cell_bits * ncell), cell_bits * ncell)]
    value, n = 0, 0
    for v, w in bits:
        value, n = value << w | (v & ((1 << w) - 1)), n + w
    pad = -n % 8
    return (value << pad).to_bytes((n + pad) // 8, "big")


@pytest.mark.parametrize("msg", [1074, 1084, 1094, 1124, 1077, 1087, 1097, 1127])
def test_generated_msm4_and_msm7_decode_like_pyrtcm(msg: int) -> None:
    rng = random.Random(msg)
    for _ in range(150):
        payload = _random_msm(rng, msg)
        dec = Rtcm3Decoder()
        dec.glo_fcn.update({prn: prn % 14 - 7 for prn in range(1, 65)})  # as if from 1020
        _compare_msm(dec.decode(payload), RTCMReader.parse(wrap(payload)), msg % 10 == 7,
                     dec.glo_fcn)


def test_msm_epoch_times_convert_each_system_to_gps_time_of_week() -> None:
    dec = Rtcm3Decoder(leap_seconds=18)
    tows: dict[str, set[float]] = {}
    for frame in frames(F9P_RTCM):
        rec = dec.decode(frame.payload)
        if isinstance(rec, ObsEpoch) and rec.tow is not None:
            tows.setdefault(rec.sys, set()).add(rec.tow)
    # one epoch per second; all four systems carry the same GPS epochs (BDS + 14 s, GLO UTC+3h)
    assert len(tows["G"]) == 867
    assert tows["G"] == tows["C"] == tows["E"] == tows["R"]


def test_lock_time_drop_and_zero_lock_are_flagged_as_slips() -> None:
    dec = Rtcm3Decoder()
    key = (0, "G", 5, "1C")
    assert dec.lock_slip(key, 1000) is False
    assert dec.lock_slip(key, 2000) is False
    assert dec.lock_slip(key, 500) is True      # lock time went down: lost lock meanwhile
    assert dec.lock_slip(key, 0) is True
    assert LOCK_EX_MS[:3] == [0, 1, 2] and LOCK_EX_MS[64] == 64 and LOCK_EX_MS[96] == 128
    assert LOCK_EX_MS[704] == 67108864


PYRTCM_EPH = {
    1019: ("DF009", [("DF076", "GPSWeek", 1), ("DF077", "SVacc", 1), ("DF079", "IDOT", SC),
                     ("DF071", "IODE", 1), ("DF081", "Toc", 1), ("DF082", "SVclockDriftRate", 1),
                     ("DF083", "SVclockDrift", 1), ("DF084", "SVclockBias", 1),
                     ("DF085", "IODC", 1), ("DF086", "Crs", 1), ("DF087", "DeltaN", SC),
                     ("DF088", "M0", SC), ("DF089", "Cuc", 1), ("DF090", "Eccentricity", 1),
                     ("DF091", "Cus", 1), ("DF092", "sqrtA", 1), ("DF093", "Toe", 1),
                     ("DF094", "Cic", 1), ("DF095", "Omega0", SC), ("DF096", "Cis", 1),
                     ("DF097", "Io", SC), ("DF098", "Crc", 1), ("DF099", "omega", SC),
                     ("DF100", "OmegaDot", SC), ("DF101", "TGD", 1), ("DF102", "health", 1),
                     ("DF103", "L2Pflag", 1)]),
    1042: ("DF488", [("DF489", "BDTWeek", 1), ("DF490", "SVacc", 1), ("DF491", "IDOT", SC),
                     ("DF492", "AODE", 1), ("DF493", "Toc", 1),
                     ("DF494", "SVclockDriftRate", 1), ("DF495", "SVclockDrift", 1),
                     ("DF496", "SVclockBias", 1), ("DF497", "AODC", 1), ("DF498", "Crs", 1),
                     ("DF499", "DeltaN", SC), ("DF500", "M0", SC), ("DF501", "Cuc", 1),
                     ("DF502", "Eccentricity", 1), ("DF503", "Cus", 1), ("DF504", "sqrtA", 1),
                     ("DF505", "Toe", 1), ("DF506", "Cic", 1), ("DF507", "Omega0", SC),
                     ("DF508", "Cis", 1), ("DF509", "Io", SC), ("DF510", "Crc", 1),
                     ("DF511", "omega", SC), ("DF512", "OmegaDot", SC), ("DF513", "TGD1", 1e-9),
                     ("DF514", "TGD2", 1e-9), ("DF515", "SatH1", 1)]),
}
_GAL = [("DF289", "GALWeek", 1), ("DF290", "IODnav", 1), ("DF292", "IDOT", SC),
        ("DF293", "Toc", 1), ("DF294", "SVclockDriftRate", 1), ("DF295", "SVclockDrift", 1),
        ("DF296", "SVclockBias", 1), ("DF297", "Crs", 1), ("DF298", "DeltaN", SC),
        ("DF299", "M0", SC), ("DF300", "Cuc", 1), ("DF301", "Eccentricity", 1),
        ("DF302", "Cus", 1), ("DF303", "sqrtA", 1), ("DF304", "Toe", 1), ("DF305", "Cic", 1),
        ("DF306", "Omega0", SC), ("DF307", "Cis", 1), ("DF308", "Io", SC), ("DF309", "Crc", 1),
        ("DF310", "omega", SC), ("DF311", "OmegaDot", SC), ("DF312", "BGDe5a", 1)]
PYRTCM_EPH[1045] = ("DF252", [*_GAL, ("DF291", "SISA", 1), ("DF314", "E5aHS", 1),
                              ("DF315", "E5aDVS", 1)])
PYRTCM_EPH[1046] = ("DF252", [*_GAL, ("DF286", "SISA", 1), ("DF313", "BGDe5b", 1),
                              ("DF316", "E5bHS", 1), ("DF317", "E5bDVS", 1),
                              ("DF287", "E1BHS", 1), ("DF288", "E1BDVS", 1)])
EPH_BITS = {1019: 488, 1042: 511, 1045: 496, 1046: 504}


def _check_eph(ours: Ephemeris, ref: Any, msg: int) -> None:
    prn_field, table = PYRTCM_EPH[msg]
    assert ours.prn == getattr(ref, prn_field)
    for df, name, scale in table:
        assert math.isclose(ours.fields[name], getattr(ref, df) * scale,
                            rel_tol=1e-12, abs_tol=1e-300), (msg, name)


@pytest.mark.parametrize("msg", sorted(EPH_BITS))
def test_generated_ephemerides_equal_pyrtcm_after_scaling(msg: int) -> None:
    """Every field of 1019/1042/1045/1046, random contents, ours == pyrtcm × scale."""
    rng = random.Random(msg)
    n = (EPH_BITS[msg] + 7) // 8
    for _ in range(300):
        payload = (msg << (n * 8 - 12) | rng.getrandbits(n * 8 - 12)).to_bytes(n, "big")
        ours = Rtcm3Decoder().decode(payload)
        _check_eph(ours, RTCMReader.parse(wrap(payload)), msg)


def test_real_gps_and_glonass_ephemerides_equal_pyrtcm() -> None:
    dec = Rtcm3Decoder()
    seen = Counter[int]()
    for frame in frames(GMSD) + frames(TESTGLO):
        if frame.msg == 1019:
            _check_eph(dec.decode(frame.payload), RTCMReader.parse(frame.raw), 1019)
        elif frame.msg == 1020:
            ours, ref = dec.decode(frame.payload), RTCMReader.parse(frame.raw)
            f = ours.fields
            assert ours.prn == ref.DF038 and f["FreqNum"] == ref.DF040 - 7
            assert dec.glo_fcn[ours.prn] == ref.DF040 - 7
            for axis, (v, p, a) in zip("XYZ", [("DF111", "DF112", "DF113"),
                                               ("DF114", "DF115", "DF116"),
                                               ("DF117", "DF118", "DF119")], strict=True):
                assert f[axis] == pytest.approx(getattr(ref, p) * 1e3, rel=1e-12)
                assert f[f"d{axis}"] == pytest.approx(getattr(ref, v) * 1e3, rel=1e-12)
                assert f[f"d{axis}2"] == pytest.approx(getattr(ref, a) * 1e3, rel=1e-12)
            assert f["tb"] == ref.DF110 * 900.0
            tk = ref.DF107
            assert f["MessageFrameTime"] == (tk >> 7) * 3600 + (tk >> 1 & 63) * 60 + (tk & 1) * 30
            assert f["SVclockBias"] == pytest.approx(-ref.DF124 * 2.0**-30, rel=1e-12)
        else:
            continue
        seen[frame.msg] += 1
    assert seen == Counter({1019: 34, 1020: 35})


def test_station_arp_and_antenna_height_equal_pyrtcm() -> None:
    dec = Rtcm3Decoder()
    n = 0
    for frame in frames(F9P_RTCM) + frames(TESTGLO):
        if frame.msg in (1005, 1006):
            st, ref = dec.decode(frame.payload), RTCMReader.parse(frame.raw)
            assert isinstance(st, Station)
            assert (st.x, st.y, st.z) == pytest.approx((ref.DF025, ref.DF026, ref.DF027),
                                                       abs=1e-5)
            if frame.msg == 1006:
                assert st.height == pytest.approx(ref.DF028, abs=1e-6)
            n += 1
    assert n == 87 + 19
    assert (st.x, st.y, st.z) == pytest.approx((-3869297.5138, 3436571.3345, 3717369.3757))


def test_legacy_1004_and_1012_match_pyrtcm_ranges_and_phases() -> None:
    dec = Rtcm3Decoder()
    checked = 0
    for frame in frames(TESTGLO):
        rec = dec.decode(frame.payload)
        if frame.msg not in (1004, 1012):
            continue
        ref = RTCMReader.parse(frame.raw)
        glo = frame.msg == 1012
        nsat = ref.DF035 if glo else ref.DF006
        assert len(rec.signals) == 2 * nsat
        for i in range(1, nsat + 1):
            def f(name: str, ref: Any = ref, i: int = i) -> Any:
                return getattr(ref, f"{name}_{i:02d}")
            if glo:
                unit, prn, k = 599584.916, f("DF038"), f("DF040") - 7
                p1 = f("DF041") + f("DF044") * unit
                ppr1, pr21, ppr2 = f("DF042"), f("DF047"), f("DF048")
            else:
                unit, prn, k = 299792.458, f("DF009"), None
                p1 = f("DF011") + f("DF014") * unit
                ppr1, pr21, ppr2 = f("DF012"), f("DF017"), f("DF018")
            sys = rec.sys
            if sys == "G" and prn >= 40:            # SBAS in 1004: S20…S38
                sys, prn = "S", prn - 20
            l1, l2 = [s for s in rec.signals if (s.sys, s.prn) == (sys, prn)]
            assert l1.pr == pytest.approx(p1, abs=1e-3)
            assert l2.pr == pytest.approx(p1 + pr21, abs=1e-3)
            assert l1.cp == pytest.approx((p1 + ppr1) / wavelength(sys, "1C", k), abs=1e-3)
            if l2.cp is not None:
                assert l2.cp == pytest.approx((p1 + ppr2) / wavelength(sys, "2C", k),
                                              abs=1e-3)
            checked += 1
    assert checked > 1500
