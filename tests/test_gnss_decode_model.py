"""Decoded streams → the shared data model, checked against RTKLIB convbin's RINEX output."""

from __future__ import annotations

import math
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from daq.gnss import obs
from daq.gnss.rinex.nav_reader import read_nav
from daq.gnss.rinex.obs_reader import read_obs
from daq.gnss.streams.records import Ephemeris, ObsEpoch
from daq.gnss.streams.stream import GnssStream
from daq.gnss.streams.to_model import (
    EpochAssembler,
    full_week,
    glonass_ephemeris,
    kepler_ephemeris,
    sisa_metres,
)

DATA = (Path(__file__).resolve().parents[1] / "../shared/data/gnss").resolve()
F9P_UBX = DATA / "raw/f9p_2021/20210809-121012-ubx-nmea-data.ubx"
F9P_RTCM = DATA / "raw/f9p_2021/20210809-111055-rtcm3-base-corrections.rtcm3"
GMSD = DATA / "raw/rtklib_samples/GMSD7_20121014.rtcm3"
pytestmark = [
    pytest.mark.skipif(not DATA.is_dir(), reason=f"GNSS data folder {DATA} absent"),
    pytest.mark.skipif(shutil.which("convbin") is None, reason="RTKLIB convbin not installed"),
]
KEPLER_FIELDS = ["af0", "af1", "af2", "iode", "crs", "deltan", "m0", "cuc", "e", "cus", "sqrta",
                 "toe", "cic", "omega0", "cis", "i0", "crc", "omega", "omegadot", "idot", "codes",
                 "week", "l2p_flag", "sva", "svh", "tgd", "tgd2", "iodc", "fit"]
GLONASS_FIELDS = ["minus_taun", "gamman", "tk", "x", "vx", "ax", "health", "y", "vy", "ay", "k",
                  "z", "vz", "az", "age"]


def records(path: Path) -> list[object]:
    stream = GnssStream(leap_seconds=16 if path == GMSD else 18)
    data = path.read_bytes()
    return [r for _f, r in stream.feed(data) + stream.flush()]


def convbin(path: Path, tmp: Path, fmt: str, *extra: str) -> tuple[Path, Path]:
    src = tmp / path.name
    src.write_bytes(path.read_bytes())
    nav, obs_path = tmp / "out.nav", tmp / "out.obs"
    subprocess.run(["convbin", "-r", fmt, *extra, str(src), "-n", str(nav), "-o", str(obs_path)],
                   check=True, capture_output=True)
    return nav, obs_path


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-11, abs_tol=1e-20)


@pytest.mark.parametrize(("path", "fmt", "extra", "ref_week", "system", "count"), [
    (F9P_UBX, "ubx", (), 2170, "G", 8),
    (F9P_UBX, "ubx", (), 2170, "C", 5),
    (F9P_UBX, "ubx", (), 2170, "E", 8),
    (GMSD, "rtcm3", ("-tr", "2012/10/14", "00:00:00"), 1709, "G", 15),
], ids=["ubx_sfrbx_gps_lnav", "ubx_sfrbx_bds_d1", "ubx_sfrbx_gal_inav", "rtcm_1019"])
def test_ephemerides_convert_to_the_model_exactly_as_convbin_writes_them(
        path: Path, fmt: str, extra: tuple[str, ...], ref_week: int, system: str, count: int,
        tmp_path: Path) -> None:
    nav, _ = convbin(path, tmp_path, fmt, *extra)
    ref = [e for e in read_nav(nav).ephemerides
           if isinstance(e, obs.KeplerEphemeris) and e.sat[0] == system]
    ours = [kepler_ephemeris(r, ref_week) for r in records(path)
            if isinstance(r, Ephemeris) and r.sys == system]
    assert len(ref) == count and len(ours) >= count
    for want in ref:
        got = next(e for e in ours if e.sat == want.sat and e.iode == want.iode
                   and e.toe == want.toe)
        assert got.toc == want.toc
        for name in KEPLER_FIELDS:
            assert _same(getattr(got, name), getattr(want, name)), (want.sat, name)


def test_glonass_1020_converts_to_the_model_as_convbin_writes_it(tmp_path: Path) -> None:
    nav, _ = convbin(GMSD, tmp_path, "rtcm3", "-tr", "2012/10/14", "00:00:00")
    ref = {e.sat: e for e in read_nav(nav).ephemerides if isinstance(e, obs.GlonassEphemeris)}
    near = datetime(2012, 10, 13, 23, 59, 44)
    ours = [glonass_ephemeris(r, near) for r in records(GMSD)
            if isinstance(r, Ephemeris) and r.sys == "R"]
    assert len(ours) == 16 and len(ref) >= 14
    for got in ours:
        want = ref.get(got.sat)
        if want is None or want.toc != got.toc:
            continue   # convbin keeps one record per satellite
        for name in GLONASS_FIELDS:
            assert _same(getattr(got, name), getattr(want, name)), (got.sat, name)


def test_msm7_epochs_assemble_into_model_epochs_equal_to_convbin_rinex(tmp_path: Path) -> None:
    """Every pseudorange and phase of the F9P base's 1077/1087/1097/1127 epochs, to the
    1 mm / 1e-3 cycle RINEX resolution (+ rounding), against convbin's RINEX 3 file."""
    _, obs_path = convbin(F9P_RTCM, tmp_path, "rtcm3", "-tr", "2021/08/09", "15:10:00")
    ref = {round(e.time.gps_seconds, 3): e for e in read_obs(obs_path).epochs}
    asm = EpochAssembler(week=2170)
    ours = [ep for r in records(F9P_RTCM) if isinstance(r, ObsEpoch) for ep in asm.add(r)]
    ours += asm.flush()
    assert len(ours) == len(ref) == 867
    compared = 0
    for ep in ours:
        want = ref.get(round(ep.time.gps_seconds, 3))
        if want is None:
            continue
        for i, sat in enumerate(ep.sats):
            for j, code in enumerate(ep.codes):
                v, w = ep.values[i, j], want.get(sat, code)
                if np.isnan(v) or np.isnan(w) or code[0] not in "CL":
                    continue
                assert abs(v - w) <= 1.5e-3, (ep.time, sat, code)
                compared += 1
    assert compared > 100000


def test_rawx_epochs_assemble_into_model_epochs_equal_to_convbin_rinex(tmp_path: Path) -> None:
    """F9P RXM-RAWX → model: every code and phase convbin writes is there, to RINEX
    resolution; phases RTKLIB drops (half-cycle unresolved) are kept, flagged LLI bit 1."""
    _, obs_path = convbin(F9P_UBX, tmp_path, "ubx")
    ref = {round(e.time.gps_seconds, 3): e for e in read_obs(obs_path).epochs}
    asm = EpochAssembler()
    ours = [ep for r in records(F9P_UBX) if isinstance(r, ObsEpoch) for ep in asm.add(r)]
    ours += asm.flush()
    assert len(ours) == 132 and len(ref) == 129
    compared = 0
    for ep in ours:
        want = ref.get(round(ep.time.gps_seconds, 3))
        if want is None:
            continue
        for i, sat in enumerate(want.sats):
            for j, code in enumerate(want.codes):
                w = want.values[i, j]
                if np.isnan(w):
                    continue
                assert abs(ep.get(sat, code) - w) <= 1.5e-3, (ep.time, sat, code)
                compared += 1
    assert compared > 12000
    flagged = sum(int(((ep.lli & 2) > 0).sum()) for ep in ours)
    assert flagged > 0


def test_gmsd_2012_beidou_epochs_stand_apart_because_that_encoder_sent_gpst() -> None:
    """GMSD (2012) stamped BDS MSM with GPST, not BDT: per RTCM we add 14 s, so its BDS
    observations form their own epochs (RTKLIB does the same and drops the others)."""
    asm = EpochAssembler(week=1709)
    ours = [ep for r in records(GMSD) if isinstance(r, ObsEpoch) for ep in asm.add(r)]
    ours += asm.flush()
    bds = [ep for ep in ours if {s[0] for s in ep.sats} == {"C"}]
    assert len(ours) == 514 and len(bds) == 257
    assert {s[0] for ep in ours if ep not in bds for s in ep.sats} == {"G", "R", "J"}


def test_f9p_reference_station_epochs_hold_all_four_systems() -> None:
    asm = EpochAssembler(week=2170)
    recs = [r for r in records(F9P_RTCM) if isinstance(r, ObsEpoch)]
    epochs = [ep for r in recs for ep in asm.add(r)] + asm.flush()
    assert len(epochs) == 867
    first = epochs[0]
    assert {s[0] for s in first.sats} == {"G", "R", "E", "C"}
    g02 = next(s for s in recs[0].signals if (s.prn, s.code) == (2, "1C"))
    assert first.get("G02", "C1C") == g02.pr and first.get("G02", "L1C") == g02.cp
    assert first.time == obs.GNSSTime(2170, 141094.0)


def test_assembler_counts_records_without_a_week_or_time() -> None:
    asm = EpochAssembler()
    assert asm.add(ObsEpoch("rtcm1077", "G", 100.0)) == []
    assert asm.add(ObsEpoch("rtcm1012", "R", None, 2170)) == []
    assert asm.dropped == 2


def test_truncated_weeks_complete_to_the_nearest_full_week_and_sisa_maps_to_metres() -> None:
    assert full_week(122, 10, 2170) == 2170
    assert full_week(1023, 10, 2049) == 2047
    assert full_week(1146, 12, 2170 - 1024) == 1146
    assert [sisa_metres(n) for n in (0, 49, 50, 75, 100, 255)] == pytest.approx(
        [0.0, 0.49, 0.5, 1.0, 2.0, -1.0])
