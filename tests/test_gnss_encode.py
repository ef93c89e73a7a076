"""RTCM 3 encoder: our model → frames → our decoder and pyrtcm give back the same values
within the format's resolution; a whole RINEX session survives the trip to RTCM and back
with the same static baseline."""

from __future__ import annotations

import math
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pyrtcm import RTCMReader

from daq.gnss.obs import (
    CLIGHT,
    GNSSTime,
    KeplerEphemeris,
    NavData,
    ObsData,
    ObsEpoch,
    ObsHeader,
)
from daq.gnss.replay.player import rinex_to_rtcm
from daq.gnss.replay.rtcm3_encode import (
    EncodeError,
    Rtcm3Encoder,
    encode_ephemeris,
    ephemeris_message,
    station_1005,
)
from daq.gnss.rinex import read_nav, read_obs, write_nav, write_obs
from daq.gnss.streams.records import Ephemeris, Station
from daq.gnss.streams.records import ObsEpoch as RecEpoch
from daq.gnss.streams.rtcm3 import RANGE_MS
from daq.gnss.streams.rtcm3_eph import SC
from daq.gnss.streams.stream import GnssStream
from daq.gnss.streams.to_model import EpochAssembler, kepler_ephemeris

GNSS = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "gnss").resolve()
F9P = GNSS / "ppk_f9p_4h"
ROVER = F9P / "rover_2022-02-25_13-26-06_GNSS-1.obs"
BASE = F9P / "base_2022-02-25_00-00-00_GNSS-1.obs"
NAV = F9P / "base_2022-02-25_00-00-00_GNSS-1.nav"
MAT_ROVER = GNSS / "matrtklib_static_5min" / "rover.obs"
F9P_BASE = (2078720.6329, -5683487.5402, 2007608.6397)
pytestmark = pytest.mark.skipif(not F9P.exists(), reason="shared GNSS data not present")

# half a least significant bit of each MSM7 field, in the model's units
PR_TOL_M = 2.0**-29 * RANGE_MS / 2          # 0.28 mm
CP_TOL_M = 2.0**-31 * RANGE_MS / 2          # 0.07 mm of phase range
RATE_TOL_MS = 1e-4 / 2                      # m/s
CNR_TOL = 1 / 32                            # dB-Hz


def decode_all(data: bytes, week: int) -> tuple[list[ObsEpoch], list[Any], GnssStream]:
    """Our decoder chain: frames → records → whole epochs (GPST ``week``) + ephemerides."""
    stream = GnssStream()
    asm = EpochAssembler(week)
    epochs: list[ObsEpoch] = []
    others: list[Any] = []
    for _frame, rec in stream.feed(data) + stream.flush():
        if isinstance(rec, RecEpoch):
            epochs += asm.add(rec)
        else:
            others.append(rec)
    return epochs + asm.flush(), others, stream


def encode_session(data: ObsData, msm: int = 7, systems: str = "GEC") -> bytes:
    enc = Rtcm3Encoder()
    out = b"".join(b"".join(enc.epoch(e, systems, msm)) for e in data.epochs)
    assert not enc.skipped
    return out


def compare_epochs(orig: list[ObsEpoch], back: list[ObsEpoch], systems: str,
                   tol: dict[str, float]) -> Counter[str]:
    """Every G/E/C value of ``orig`` is in ``back`` within ``tol`` (and nothing else is)."""
    assert [e.time for e in back] == [e.time for e in orig]
    checked: Counter[str] = Counter()
    for a, b in zip(orig, back, strict=True):
        for i, sat in enumerate(a.sats):
            if sat[0] not in systems:
                continue
            for j, code in enumerate(a.codes):
                v = a.values[i, j]
                if code[0] not in "CLDS" or not math.isfinite(v):
                    continue
                w = b.get(sat, code)
                lam = CLIGHT / 1.57542e9 if code[0] in "LD" else 1.0
                assert abs(w - v) <= tol[code[0]] / lam + 1e-9, (a.time, sat, code, v, w)
                if code[0] == "L":
                    assert b.lli[b.sats.index(sat), b.codes.index(code)] == a.lli[i, j]
                checked[code[0]] += 1
        assert np.isfinite(b.values).sum() == sum(checked_cells(a, systems))
    return checked


def checked_cells(e: ObsEpoch, systems: str) -> list[int]:
    rows = [i for i, s in enumerate(e.sats) if s[0] in systems]
    cols = [j for j, c in enumerate(e.codes) if c[0] in "CLDS"]
    return [int(np.isfinite(e.values[np.ix_(rows, cols)]).sum())]


@pytest.fixture(scope="module")
def rover() -> ObsData:
    return read_obs(ROVER)


@pytest.fixture(scope="module")
def nav() -> NavData:
    return read_nav(NAV)


def test_msm7_session_decodes_to_the_same_pseudorange_phase_and_lli(rover: ObsData) -> None:
    """4 h of F9P epochs as 1077/1097/1127: pseudorange ≤ 1 mm (½ LSB 0.28 mm), phase ≤
    0.001 cycle, loss-of-lock and half-cycle flags identical, no value lost or added."""
    back, others, stream = decode_all(encode_session(rover), rover.epochs[0].time.week)
    assert not others and not stream.decode_errors and not stream.framer.rejected
    checked = compare_epochs(rover.epochs, back, "GEC",
                             {"C": PR_TOL_M, "L": 0.0009 * CLIGHT / 1.57542e9})
    assert checked["C"] > 40000 and checked["L"] > 40000
    assert sum(stream.framer.frames.values()) == 3 * len(rover.epochs)


def test_msm7_doppler_and_cnr_round_trip_within_one_lsb() -> None:
    """Septentrio 1 Hz epochs with D and S (4 GPS signals, BeiDou B1I/B2I/B3I): Doppler
    within 0.05 mm/s of range rate, C/N0 within 1/32 dB-Hz, code and phase as above."""
    data = read_obs(MAT_ROVER)
    back, _o, stream = decode_all(encode_session(data), data.epochs[0].time.week)
    assert not stream.decode_errors
    checked = compare_epochs(data.epochs, back, "GEC",
                             {"C": PR_TOL_M, "L": CP_TOL_M * 1.01, "D": RATE_TOL_MS * 1.01,
                              "S": CNR_TOL})
    assert min(checked[k] for k in "CLDS") > 10000


def test_msm4_keeps_its_coarser_resolution(rover: ObsData) -> None:
    """1074/1094/1124: pseudorange within ½ of 2⁻²⁴ ms (9 mm), phase within ½ of 2⁻²⁹ ms."""
    sub = ObsData(rover.header, rover.epochs[:200])
    back, _o, stream = decode_all(encode_session(sub, msm=4), sub.epochs[0].time.week)
    assert set(stream.decoded) == {"rtcm3"} and not stream.decode_errors
    compare_epochs(sub.epochs, back, "GEC", {"C": 2.0**-24 * RANGE_MS / 2 * 1.01,
                                              "L": 2.0**-29 * RANGE_MS / 2 * 1.01})


def test_pyrtcm_reads_our_msm7_frames_with_the_same_values(rover: ObsData) -> None:
    """pyrtcm's DF397+DF398+DF405/DF406 give back each cell's pseudorange and phase range;
    every epoch but the last message has the multiple-message bit; BeiDou time is BDT."""
    enc = Rtcm3Encoder()
    cells = 0
    for epoch in rover.epochs[::40]:
        frames = enc.epoch(epoch)
        for k, raw in enumerate(frames):
            msg = RTCMReader.parse(raw)
            assert msg.DF393 == (k < len(frames) - 1)
            sys = {1077: "G", 1097: "E", 1127: "C"}[int(msg.identity)]
            tow = epoch.time.sow - (14.0 if sys == "C" else 0.0)
            epoch_ms = msg.DF427 if sys == "C" else (msg.DF004 if sys == "G" else msg.DF248)
            assert epoch_ms == round(tow * 1000)
            sat_index = {int(getattr(msg, f"PRN_{i + 1:02d}")): i + 1 for i in range(msg.NSat)}
            for c in range(1, msg.NCell + 1):
                prn = int(getattr(msg, f"CELLPRN_{c:02d}"))
                sig = getattr(msg, f"CELLSIG_{c:02d}")
                j = sat_index[prn]
                rough = getattr(msg, f"DF397_{j:02d}") + getattr(msg, f"DF398_{j:02d}")
                sat = f"{sys}{prn:02d}"
                pr = epoch.get(sat, "C" + sig)
                if math.isfinite(pr):
                    got = (rough + getattr(msg, f"DF405_{c:02d}")) * RANGE_MS
                    assert got == pytest.approx(pr, abs=PR_TOL_M + 1e-6)
                cp = epoch.get(sat, "L" + sig)
                if math.isfinite(cp):
                    lam = CLIGHT / {"1": 1575.42e6, "2": {"G": 1227.60e6, "C": 1561.098e6}
                                    .get(sys, 0.0), "7": 1207.14e6}[sig[0]]
                    got = (rough + getattr(msg, f"DF406_{c:02d}")) * RANGE_MS
                    assert got == pytest.approx(cp * lam, abs=CP_TOL_M + 1e-6)
                cells += 1
    assert cells > 1000


def _lsb(scale: float, kind: str) -> float:
    return abs(scale) if kind != "u" or scale != 1 else 1.0


def test_ephemerides_round_trip_within_one_lsb_and_pyrtcm_agrees(nav: NavData) -> None:
    """Every GPS, Galileo and BeiDou record of the F9P navigation file: 1019/1046/1042
    decode (our decoder, ``kepler_ephemeris``) to every field within one LSB; pyrtcm reads
    the same numbers (its angles in semicircles, BeiDou TGD in ns)."""
    seen: Counter[int] = Counter()
    for e in nav.ephemerides:
        if not isinstance(e, KeplerEphemeris) or e.system not in "GEC":
            continue
        raw = encode_ephemeris(e)
        msg, table, fields = ephemeris_message(e)
        _eps, recs, stream = decode_all(raw, 2198)
        assert not stream.decode_errors
        (rec,) = recs
        assert isinstance(rec, Ephemeris)
        assert rec.prn == int(e.sat[1:])
        for name, _n, kind, scale in table:
            if name not in ("prn", "FitIntvl"):
                assert abs(rec.fields[name] - fields[name]) <= _lsb(scale, kind) * 0.5001, name
        back = kepler_ephemeris(rec, 2198)
        assert (back.sat, back.week, back.toc, back.toe) == (e.sat, e.week, e.toc, e.toe)
        assert (back.iode, back.svh, back.fit) == (e.iode, e.svh, e.fit)
        if e.system != "E":
            assert back.iodc == e.iodc and back.sva == e.sva
        ref = RTCMReader.parse(raw)
        values = [v for k, v in ref.__dict__.items() if k.startswith("DF")][1:]
        for (name, _n, _kind, _scale), v in zip(table, values, strict=False):
            ours = rec.fields.get(name, float(rec.prn) if name == "prn" else None)
            if ours is None or name.endswith("Week") or name == "FitIntvl":
                continue
            assert any(math.isclose(ours, v * k, rel_tol=1e-9, abs_tol=1e-30)
                       for k in (1.0, SC, 1e-9)), (e.sat, name, ours, v)
        seen[msg] += 1
    assert seen[1019] == 28 and seen[1042] == 42 and seen[1046] == 230


def test_station_1005_round_trips_to_a_tenth_of_a_millimetre() -> None:
    raw = station_1005(F9P_BASE, station_id=1234)
    _e, (st,), _s = decode_all(raw, 2198)
    assert isinstance(st, Station) and st.station == 1234
    assert np.allclose((st.x, st.y, st.z), F9P_BASE, atol=5e-5)
    ref = RTCMReader.parse(raw)
    assert (ref.DF025, ref.DF026, ref.DF027) == pytest.approx(F9P_BASE, abs=5e-5)


def test_values_a_field_cannot_hold_are_counted_never_fatal(rover: ObsData) -> None:
    """A pseudorange beyond the 255 ms rough range is skipped and counted; a crazy
    ephemeris field raises EncodeError naming the field; the rest is encoded."""
    epoch = rover.epochs[0].select(rover.epochs[0].codes)
    g = epoch.sats.index("G10")
    epoch.values[g, epoch.codes.index("C1C")] = 9e7          # 300 ms: not encodable
    epoch.values[g, epoch.codes.index("L1C")] = np.nan
    epoch.values[g, epoch.codes.index("C2X")] = np.nan
    epoch.values[g, epoch.codes.index("L2X")] = np.nan
    enc = Rtcm3Encoder()
    back, _o, _s = decode_all(b"".join(enc.epoch(epoch)), epoch.time.week)
    assert enc.skipped["rough_range"] == 1
    assert "G10" not in back[0].sats and "G16" in back[0].sats
    eph = next(e for e in read_nav(NAV).ephemerides if e.sat[0] == "G")
    assert isinstance(eph, KeplerEphemeris)
    bad = KeplerEphemeris(**{**{f: getattr(eph, f) for f in eph.__dataclass_fields__},
                             "crs": 1e6})
    with pytest.raises(EncodeError) as err:
        encode_ephemeris(bad)
    assert err.value.field == "Crs"


def _decode_session(chunks: list[tuple[float, bytes]], week: int) -> tuple[ObsData, NavData]:
    epochs, others, stream = decode_all(b"".join(c for _t, c in chunks), week)
    assert not stream.decode_errors and not stream.framer.rejected
    ephs = {}
    for rec in others:
        if isinstance(rec, Ephemeris):
            e = kepler_ephemeris(rec, week)
            ephs[(e.sat, e.week, e.toe, e.iode)] = e
    return ObsData(ObsHeader(marker_name="RTCM"), epochs), NavData(list(ephs.values()))


def test_session_through_rtcm_and_rinex_export_gives_the_same_baseline(
        tmp_path: Path) -> None:
    """Rover and base (2 h, GPS+BeiDou) → rinex_to_rtcm → our decoder → RINEX 3.04 files →
    read back → static baseline: within 1 mm of the original RINEX's, per component."""
    from daq.gnss.solver.baseline import SolverOptions, solve_baseline

    start = GNSSTime(2198, 5 * 86400 + 14 * 3600.0).gps_seconds
    end = start + 7200.0
    week = 2198
    out = {}
    for name, path in (("rover", ROVER), ("base", BASE)):
        chunks = list(rinex_to_rtcm(path, NAV, F9P_BASE, systems="GC", start=start, end=end))
        obs_data, nav_data = _decode_session(chunks, week)
        write_obs(obs_data, tmp_path / f"{name}.obs")
        write_nav(nav_data, tmp_path / f"{name}.nav")
        out[name] = read_obs(tmp_path / f"{name}.obs")
    nav_back = read_nav(tmp_path / "base.nav")
    opts = SolverOptions(systems="GC")
    got = solve_baseline(out["rover"], out["base"], nav_back, F9P_BASE, opts)
    ref = solve_baseline(read_obs(ROVER), read_obs(BASE), read_nav(NAV), F9P_BASE, opts,
                         start=start, end=end)
    assert got.fixed and ref.fixed
    assert np.all(np.abs(got.enu - ref.enu) <= 0.001), (got.enu - ref.enu) * 1000
    assert got.n_epochs == ref.n_epochs


def test_galileo_fnav_only_records_go_as_1045_with_e5a_health() -> None:
    """A record whose data source is F/NAV only (RINEX bits 1 and 8) is sent as 1045 and
    decodes with its E5a health bits; I/NAV records (bit 0 or 2) go as 1046."""
    inav = next(e for e in read_nav(NAV).ephemerides if e.sat[0] == "E")
    assert isinstance(inav, KeplerEphemeris)
    fnav = KeplerEphemeris(**{**{f: getattr(inav, f) for f in inav.__dataclass_fields__},
                              "codes": 258.0, "svh": 0b110000 | 0b1000})
    raw = encode_ephemeris(fnav)
    assert RTCMReader.parse(raw).identity == "1045"
    _e, (rec,), _s = decode_all(raw, 2198)
    back = kepler_ephemeris(rec, 2198)
    assert back.codes == 258.0 and back.svh == fnav.svh and back.toe == fnav.toe


def test_more_than_64_cells_are_split_into_messages_of_one_epoch() -> None:
    """20 GPS satellites × 4 signals = 80 cells > 64: two 1077s (the first with the
    multiple-message bit), decoded back into one epoch with every value; signals seen for
    the first time without LLI decode without a slip (MSM7 and MSM4)."""
    codes = ("C1C", "L1C", "C2W", "L2W", "C2L", "L2L", "C5Q", "L5Q")
    sats = tuple(f"G{p:02d}" for p in range(1, 21))
    epoch = ObsEpoch.empty(GNSSTime(2198, 482415.0), sats, codes)
    lam = {"1": CLIGHT / 1575.42e6, "2": CLIGHT / 1227.60e6, "5": CLIGHT / 1176.45e6}
    for i in range(len(sats)):
        for j, c in enumerate(codes):
            pr = 2.0e7 + 1.0e5 * i + 3.1 * j
            epoch.values[i, j] = pr if c[0] == "C" else (pr + 0.37) / lam[c[1]]
    frames = Rtcm3Encoder().epoch(epoch, "G")
    parsed = [RTCMReader.parse(f) for f in frames]
    assert [p.DF393 for p in parsed] == [1, 0] and sum(p.NCell for p in parsed) == 80
    (back,), _o, _s = decode_all(b"".join(frames), 2198)
    assert back.sats == sats and not back.lli.any()     # no LLI in, no slip out
    (back4,), _o, _s = decode_all(b"".join(Rtcm3Encoder().epoch(epoch, "G", 4)), 2198)
    assert back4.sats == sats and not back4.lli.any()
    for code in codes:
        tol = PR_TOL_M if code[0] == "C" else CP_TOL_M / lam[code[1]] * 1.01
        assert np.allclose(back.column(code), epoch.column(code), atol=tol, rtol=0)


def test_rinex_to_rtcm_counts_an_unencodable_ephemeris_and_goes_on(tmp_path: Path) -> None:
    nav = read_nav(NAV)
    bad = [KeplerEphemeris(**{**{f: getattr(e, f) for f in e.__dataclass_fields__},
                              "crs": 1e6}) if isinstance(e, KeplerEphemeris)
           and e.sat[0] == "C" else e for e in nav.ephemerides]
    write_nav(NavData(bad), tmp_path / "bad.nav")
    counts: Counter[str] = Counter()
    start = GNSSTime(2198, 5 * 86400 + 14 * 3600.0).gps_seconds
    chunks = list(rinex_to_rtcm(ROVER, tmp_path / "bad.nav", F9P_BASE, start=start,
                                end=start + 600, counts=counts))
    assert len(chunks) == 41 and counts["ephemeris_Crs"] >= 5
    _e, recs, _s = decode_all(b"".join(c for _t, c in chunks), 2198)
    assert {r.sys for r in recs if isinstance(r, Ephemeris)} == {"G", "E"}


@pytest.mark.skipif(shutil.which("convbin") is None, reason="RTKLIB convbin not installed")
def test_rtklib_convbin_decodes_our_stream_to_the_original_rinex(tmp_path: Path) -> None:
    """An independent decoder: RTKLIB's convbin turns 10 min of our RTCM 3 back into RINEX
    with every G/E/C value equal to the original at RINEX precision, the same LLI (bar
    RTKLIB's own slip flag on each signal's first epoch) and all 41 epochs."""
    start = GNSSTime(2198, 5 * 86400 + 14 * 3600.0).gps_seconds
    log = tmp_path / "rover.rtcm3"
    log.write_bytes(b"".join(c for _t, c in rinex_to_rtcm(
        ROVER, NAV, F9P_BASE, start=start, end=start + 600)))
    subprocess.run(["convbin", "-r", "rtcm3", "-tr", "2022/02/25", "14:00:00", "-v", "3.04",
                    "-od", "-os", "-o", str(tmp_path / "r.obs"), "-n", str(tmp_path / "r.nav"),
                    str(log)], check=True, capture_output=True, timeout=60)
    orig = {e.time: e for e in read_obs(ROVER).epochs}
    back = read_obs(tmp_path / "r.obs").epochs
    assert len(back) == 41
    n = 0
    for k, eb in enumerate(back):
        ea = orig[eb.time]
        for i, sat in enumerate(ea.sats):
            for j, code in enumerate(ea.codes):
                v = ea.values[i, j]
                if sat[0] not in "GEC" or not math.isfinite(v):
                    continue
                assert eb.get(sat, code) == v, (eb.time, sat, code)
                if code[0] == "L" and k > 0:
                    assert eb.lli[eb.sats.index(sat), eb.codes.index(code)] == ea.lli[i, j]
                n += 1
    assert n > 3000
    assert len(read_nav(tmp_path / "r.nav").ephemerides) == 41


def test_phase_far_from_the_code_is_shifted_by_whole_cycles_with_a_slip_when_forced(
        ) -> None:
    """A phase range 5 km from the pseudorange does not fit DF406 (±1171 m): it is sent
    less a whole number of cycles (no slip on the first epoch); when it later drifts out
    of range again the shift changes, a slip is flagged and ``phase_shift`` counted."""
    lam = CLIGHT / 1575.42e6
    enc = Rtcm3Encoder()
    out = []
    for k, drift in enumerate((0.0, 10.0, 1500.0)):
        e = ObsEpoch.empty(GNSSTime(2198, 482400.0 + 15 * k), ("G05",), ("C1C", "L1C"))
        e.values[0] = (2.2e7, (2.2e7 + 5000.0 + drift) / lam)
        (back,), _o, _s = decode_all(b"".join(enc.epoch(e, "G")), 2198)
        out.append((back.values[0, 1] - e.values[0, 1], int(back.lli[0, 1])))
    (d0, lli0), (d1, lli1), (d2, lli2) = out
    assert abs(d0 - round(d0)) < 1e-3 and abs(round(d0)) > 20000 and d1 == pytest.approx(d0)
    assert (lli0, lli1, lli2) == (0, 0, 1) and enc.skipped["phase_shift"] == 1
    assert abs(d2 - round(d2)) < 1e-3 and round(d2) != round(d0)
