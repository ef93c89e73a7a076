"""RINEX import (2.11, 3.04) and 3.04 export against real files, convbin and rnx2rtkp."""

from __future__ import annotations

import dataclasses
import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from daq.gnss.obs import GlonassEphemeris, GNSSTime, KeplerEphemeris, ObsData
from daq.gnss.rinex import read_nav, read_obs, write_nav, write_obs
from daq.gnss.rinex.obs_format import format_cells
from daq.gnss.rinex.writer import nav_to_text, obs_to_text

GNSS = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "gnss").resolve()
F9P = GNSS / "ppk_f9p_4h"
ROVER = F9P / "rover_2022-02-25_13-26-06_GNSS-1.obs"
BASE = F9P / "base_2022-02-25_00-00-00_GNSS-1.obs"
NAV = F9P / "base_2022-02-25_00-00-00_GNSS-1.nav"
MAT = GNSS / "matrtklib_static_5min"
UBX = GNSS / "raw" / "f9p_2021" / "20210809-121012-ubx-nmea-data.ubx"

pytestmark = pytest.mark.skipif(not F9P.exists(), reason="shared GNSS data not present")


def assert_same_obs(a: ObsData, b: ObsData) -> None:
    """Same epochs, satellites, and per cell the same value (NaN = NaN), LLI and SSI."""
    assert len(a.epochs) == len(b.epochs)
    for ea, eb in zip(a.epochs, b.epochs, strict=True):
        assert ea.time == eb.time and ea.flag == eb.flag and ea.sats == eb.sats
        cols = [eb.codes.index(c) for c in ea.codes]
        np.testing.assert_array_equal(ea.values, eb.values[:, cols])
        np.testing.assert_array_equal(ea.lli, eb.lli[:, cols])
        np.testing.assert_array_equal(ea.ssi, eb.ssi[:, cols])


# --- import ---------------------------------------------------------------------------

def test_f9p_rover_reads_964_epochs_with_first_values_as_printed() -> None:
    obs = read_obs(ROVER)
    assert obs.header.version == 3.04 and not obs.problems
    assert len(obs.epochs) == 964
    ep = obs.epochs[0]
    assert ep.time == GNSSTime(2198, 5 * 86400 + 13 * 3600 + 26 * 60 + 15.0)
    assert len(ep.sats) == 32 and ep.sats[0] == "G10"
    assert ep.get("G10", "C1C") == 23161248.279
    assert ep.get("G10", "L1C") == 121713155.981
    i, j = ep.sats.index("G10"), ep.codes.index("L1C")
    assert (ep.lli[i, j], ep.ssi[i, j]) == (1, 1)
    assert obs.header.obs_types["C"] == ("C2I", "L2I", "C7I")
    assert obs.header.glonass_slots["R14"] == -7
    assert obs.header.approx_xyz == (2077970.7070, -5684018.1979, 2006789.4508)
    assert obs.epochs[-1].time.to_calendar().strftime("%H:%M:%S") == "17:27:00"


def test_obs_types_continued_over_two_lines_are_joined() -> None:
    obs = read_obs(MAT / "base.obs")
    assert len(obs.header.obs_types["G"]) == 17
    assert obs.header.obs_types["G"][-4:] == ("C5Q", "L5Q", "D5Q", "S5Q")
    assert len(obs.epochs) == 301 and not obs.problems
    assert obs.epochs[0].get("C01", "L6I") == 155244076.921


def test_code_and_system_filters_shrink_the_arrays() -> None:
    obs = read_obs(MAT / "rover.obs", codes=("C1C", "L1C", "C2I", "L2I"), systems="GC")
    ep = obs.epochs[0]
    assert ep.codes == ("C1C", "L1C", "C2I", "L2I")
    assert {s[0] for s in ep.sats} == {"G", "C"}


def test_f9p_nav_has_every_system_with_bds_times_in_bdt() -> None:
    nav = read_nav(NAV)
    assert nav.skipped == 0
    count = {s: sum(e.sat[0] == s for e in nav.ephemerides) for s in "GREC"}
    assert count == {"G": 28, "R": 92, "E": 230, "C": 42}
    c20 = next(e for e in nav.ephemerides if e.sat == "C20")
    assert isinstance(c20, KeplerEphemeris)
    assert c20.toc == GNSSTime(842, 478800.0, "BDT") and c20.toe == 478800.0
    assert c20.sqrta == 5282.63066483 and c20.tgd == 2.23e-08 and c20.tgd2 == 2.23e-08
    r01 = next(e for e in nav.ephemerides if e.sat == "R01")
    assert isinstance(r01, GlonassEphemeris)
    assert r01.k == 1 and r01.minus_taun == 7.12368637323e-06 and r01.x == 10246.746582


def test_mixed_nav_header_corrections_are_read() -> None:
    nav = read_nav(MAT / "base.nav")
    assert nav.ionospheric["GPSA"][0] == 1.8626e-08
    assert nav.leap_seconds == 18 and len(nav.time_corrections) == 3
    g05 = next(e for e in nav.ephemerides if e.sat == "G05")
    assert isinstance(g05, KeplerEphemeris)
    assert (g05.iodc, g05.fit, g05.week) == (72.0, 4.0, 2320)


@pytest.fixture(scope="module")
def convbin_pair(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """RINEX 2.11 and 3.04 made by RTKLIB's convbin from one real u-blox capture."""
    if shutil.which("convbin") is None:
        pytest.skip("convbin (Debian rtklib) not installed")
    out = tmp_path_factory.mktemp("convbin")
    for ver in ("2.11", "3.04"):
        v = ver.replace(".", "")
        subprocess.run(["convbin", "-r", "ubx", "-v", ver, "-od", "-os", "-o", f"f{v}.obs",
                        "-n", f"f{v}.nav", "-g", f"f{v}.gnav", str(UBX)], cwd=out,
                       check=True, capture_output=True)
    return out


def test_rinex2_obs_reads_the_same_numbers_as_rinex3(convbin_pair: Path) -> None:
    v2, v3 = read_obs(convbin_pair / "f211.obs"), read_obs(convbin_pair / "f304.obs")
    assert v2.header.version == 2.11 and not v2.problems
    assert len(v2.epochs) == len(v3.epochs) == 129
    compared = 0
    for e2, e3 in zip(v2.epochs, v3.epochs, strict=True):
        assert e2.time == e3.time
        for i, sat in enumerate(e2.sats):
            k = e3.sats.index(sat)
            for c3 in v3.header.obs_types[sat[0]]:
                c2 = next(c for c in v2.header.obs_types[sat[0]] if c[:2] == c3[:2])
                j2, j3 = e2.codes.index(c2), e3.codes.index(c3)
                assert (e2.values[i, j2] == e3.values[k, j3]
                        or (np.isnan(e2.values[i, j2]) and np.isnan(e3.values[k, j3])))
                assert (e2.lli[i, j2], e2.ssi[i, j2]) == (e3.lli[k, j3], e3.ssi[k, j3])
                compared += 1
    assert compared > 20000
    assert v2.epochs[0].time.sow % 1 == pytest.approx(0.197)  # F11.7 seconds kept exactly


def test_rinex2_gps_and_glonass_nav_equal_rinex3(convbin_pair: Path) -> None:
    v3 = {(e.sat, str(e.toc)): e for e in read_nav(convbin_pair / "f304.nav").ephemerides}
    v2 = (read_nav(convbin_pair / "f211.nav").ephemerides
          + read_nav(convbin_pair / "f211.gnav").ephemerides)
    assert len(v2) == 13
    for e in v2:  # GLONASS tk: seconds of day in 2.11, of week in 3.04
        assert e == v3[(e.sat, str(e.toc))]


# --- robustness -------------------------------------------------------------------------

def _rover_text(n_epochs: int) -> list[str]:
    lines = ROVER.read_text().splitlines()
    starts = [i for i, ln in enumerate(lines) if ln.startswith(">")]
    return lines[: starts[n_epochs]]


def test_event_flags_power_failure_and_truncated_end_are_handled() -> None:
    lines = _rover_text(3)
    second = next(i for i, ln in enumerate(lines) if ln.startswith(">") and i > 40)
    lines[second] = lines[second][:31] + "1" + lines[second][32:]  # power failure before
    event = ["> 2022 02 25 13 26 20.0000000  5  0",
             ">                              4  2",
             f"{'header event inside the file':<60}COMMENT",
             f"{'    15.000':<60}INTERVAL"]
    lines[second:second] = event
    lines += ["> 2022 02 25 13 27 00.0000000  0 32", "G10  23161248.279 1"]  # torn last epoch
    obs = read_obs(lines)
    flags = [e.flag for e in obs.epochs]
    assert flags == [0, 5, 4, 1, 0]
    assert obs.epochs[2].event_lines[0].startswith("header event")
    assert obs.epochs[3].sats and obs.epochs[3].get("G10", "C1C") > 2e7
    assert len(obs.problems) == 1 and "truncated" in obs.problems[0]


def test_missing_optional_header_fields_and_garbled_numbers_do_not_crash() -> None:
    lines = [ln for ln in _rover_text(2) if not ln.rstrip().endswith(
        ("INTERVAL", "TIME OF FIRST OBS", "APPROX POSITION XYZ", "GLONASS SLOT / FRQ #"))]
    k = next(i for i, ln in enumerate(lines) if ln.startswith("G16"))
    lines[k] = "G16  2221x971.277 1 116745711.60711"
    lines.insert(3, f"{'    xx':<60}LEAP SECONDS")
    obs = read_obs(lines)
    assert len(obs.epochs) == 2 and obs.header.interval is None
    assert obs.header.leap_seconds is None and "LEAP SECONDS not understood" in obs.problems[0]
    assert math.isnan(obs.epochs[0].get("G16", "C1C"))
    assert obs.epochs[0].get("G16", "L1C") == 116745711.607
    assert any("garbled" in p for p in obs.problems)


def test_rinex302_beidou_b1_codes_become_band_2() -> None:
    lines = _rover_text(1)
    lines[0] = "     3.02" + lines[0][9:]
    lines = [ln.replace("C    3 C2I L2I C7I", "C    3 C1I L1I C7I") for ln in lines]
    obs = read_obs(lines)
    assert obs.header.obs_types["C"] == ("C2I", "L2I", "C7I")
    assert obs.epochs[0].get("C20", "C2I") == 21967452.016


def test_bad_nav_records_are_counted_and_3_05_glonass_lines_kept() -> None:
    lines = NAV.read_text().splitlines()[:7 + 12]  # header, three GLONASS records
    lines[7 + 4 + 1] = "     this is not a number at all " + lines[7 + 4 + 1][33:]
    glo = [*lines[7:11], "    " + "".join(f"{x:19.12E}" for x in (1.0, 0.0, 0.0, 3.0))]
    bad_header = f"{'GPSA   1.8626E-08  oops':<60}IONOSPHERIC CORR"
    nav = read_nav([*lines[:6], bad_header, *lines[6:7], *glo, *lines[11:]])
    assert "IONOSPHERIC CORR not understood" in nav.problems[0] and not nav.ionospheric
    assert nav.skipped == 1 and "bad record" in nav.problems[1]
    assert [e.sat for e in nav.ephemerides] == ["R01", "R08"]
    assert nav.ephemerides[0].extra == (1.0, 0.0, 0.0, 3.0)  # type: ignore[union-attr]


def test_not_rinex_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="END OF HEADER"):
        read_obs(["hello", "world"])
    with pytest.raises(ValueError, match="END OF HEADER"):
        read_nav(["hello"])


# --- export -----------------------------------------------------------------------------

@pytest.mark.parametrize("path", [ROVER, BASE, MAT / "base.obs"], ids=lambda p: p.name)
def test_obs_export_reimports_identical_values_lli_ssi(path: Path) -> None:
    obs = read_obs(path)
    text, stats = obs_to_text(obs)
    assert stats.epochs == len(obs.epochs) and stats.overflow == 0
    again = read_obs(text.splitlines())
    assert again.header.obs_types == obs.header.obs_types
    assert again.header.glonass_slots == obs.header.glonass_slots
    assert_same_obs(obs, again)


def test_obs_export_data_section_is_byte_identical_to_convbin_output() -> None:
    def body(text: str) -> list[str]:
        rows = text.splitlines()
        return [r.rstrip() for r in rows[next(i for i, r in enumerate(rows)
                                             if "END OF HEADER" in r) + 1:]]
    text, _ = obs_to_text(read_obs(ROVER))
    assert body(text) == body(ROVER.read_text())


@pytest.mark.parametrize("path", [NAV, MAT / "base.nav"], ids=lambda p: p.name)
def test_nav_export_reimports_identical_ephemerides(path: Path) -> None:
    nav = read_nav(path)
    again = read_nav(nav_to_text(nav).splitlines())
    assert again.ephemerides == nav.ephemerides
    assert again.ionospheric == nav.ionospheric and again.leap_seconds == nav.leap_seconds
    assert [dataclasses.asdict(e) for e in again.ephemerides][:1] == [
        dataclasses.asdict(nav.ephemerides[0])]


def _enu(xyz: np.ndarray, base: np.ndarray) -> np.ndarray:
    """ECEF point → east, north, up (m) at ``base`` (WGS84)."""
    x, y, z = base
    lon = math.atan2(y, x)
    a, f = 6378137.0, 1 / 298.257223563
    e2 = f * (2 - f)
    p = math.hypot(x, y)
    lat = math.atan2(z, p * (1 - e2))
    for _ in range(10):
        n = a / math.sqrt(1 - e2 * math.sin(lat) ** 2)
        lat = math.atan2(z, p * (1 - e2 * n / (p / math.cos(lat))))
    sl, cl, sp, cp = math.sin(lon), math.cos(lon), math.sin(lat), math.cos(lat)
    rot = np.array([[-sl, cl, 0.0], [-sp * cl, -sp * sl, cp], [cp * cl, cp * sl, sp]])
    return rot @ (xyz - base)


def _rnx2rtkp(conf: Path, rover: Path, base: Path, nav: Path, out: Path) -> np.ndarray:
    """The single static solution (fixed) of one rnx2rtkp run, ECEF metres."""
    subprocess.run(["rnx2rtkp", "-k", str(conf), "-o", str(out), str(rover), str(base),
                    str(nav)], check=True, capture_output=True)
    rows = [ln.split() for ln in out.read_text().splitlines()
            if ln.strip() and not ln.startswith("%")]
    assert len(rows) == 1 and rows[0][5] == "1"  # one static solution, fixed
    return np.array([float(v) for v in rows[0][2:5]])


RTKLIB_CASES = {  # option file, rover, base, nav, records, README reference ENU (m)
    "f9p_GC_4h": ("f9p_GC_static_fh_fwd.conf", ROVER, BASE, NAV, 392,
                  (-886.9575, -853.8958, -28.4262)),
    "matrtklib_GEC_1Hz": ("matrtklib_GEC_static_fh_fwd.conf", MAT / "rover.obs",
                          MAT / "base.obs", MAT / "base.nav", 134, (-0.2235, -0.9645, 0.0094)),
}


@pytest.mark.skipif(shutil.which("rnx2rtkp") is None, reason="rnx2rtkp not installed")
@pytest.mark.parametrize("case", list(RTKLIB_CASES))
def test_rnx2rtkp_static_solution_is_unchanged_by_our_export(tmp_path: Path, case: str
                                                             ) -> None:
    """Static fix-and-hold (README reference runs) on the originals and on our exports."""
    conf_name, rover_in, base_in, nav_in, n_nav, reference = RTKLIB_CASES[case]
    lines = (GNSS / "rtklib" / "conf" / conf_name).read_text().splitlines()
    lines = ["out-solstatic      =single" if ln.startswith("out-solstatic") else ln
             for ln in lines]
    conf = tmp_path / "static.conf"
    conf.write_text("\n".join(lines) + "\n")
    base_xyz = np.array([float(ln.split("=")[1].split()[0]) for ln in lines
                         if ln.startswith(("ant2-pos1", "ant2-pos2", "ant2-pos3"))])
    rover, base, nav = tmp_path / "rover.obs", tmp_path / "base.obs", tmp_path / "base.nav"
    write_obs(read_obs(rover_in), rover)
    write_obs(read_obs(base_in), base)
    assert write_nav(read_nav(nav_in), nav) == n_nav
    orig = _enu(_rnx2rtkp(conf, rover_in, base_in, nav_in, tmp_path / "orig.pos"), base_xyz)
    ours = _enu(_rnx2rtkp(conf, rover, base, nav, tmp_path / "ours.pos"), base_xyz)
    np.testing.assert_allclose(ours, orig, atol=1e-4)  # 0.1 mm in E, N, U
    np.testing.assert_allclose(ours, reference, atol=1.5e-3)  # and RTKLIB's reference answer


def test_rinex2_header_event_changing_obs_types_applies_to_later_epochs(
        convbin_pair: Path) -> None:
    """A flag-4 event with a new '# / TYPES OF OBSERV' (12 → 4 types) mid-file."""
    lines = (convbin_pair / "f211.obs").read_text().splitlines()
    epoch = re.compile(r"^ \d\d \d\d \d\d \d\d \d\d [ \d]\d\.\d{7}  0[ \d]{2}\d")
    starts = [i for i, ln in enumerate(lines) if epoch.match(ln)]
    _first, second, third = starts[:3]
    n2 = int(lines[second][29:32])
    sat_lines = (n2 + 11) // 12
    short = [lines[k][:64] for k in range(second + sat_lines, third, 3)]  # C1 L1 D1 S1 only
    event = [" 21 08 09 16 10 32.1970000  4  1",
             f"{'     4    C1    L1    D1    S1':<60}# / TYPES OF OBSERV"]
    text = lines[:second] + event + lines[second:second + sat_lines] + short
    obs = read_obs(text)
    full = read_obs(lines[:third])
    assert not obs.problems and [e.flag for e in obs.epochs] == [0, 4, 0]
    assert obs.header.obs_types["G"] == ("C1C", "L1C", "D1C", "S1C")
    after, ref = obs.epochs[2], full.epochs[1]
    assert after.sats == ref.sats
    for c in ("C1C", "L1C", "D1C", "S1C"):
        np.testing.assert_array_equal(after.column(c), ref.column(c))
    assert np.isnan(after.column("L2W")).all() and not np.isnan(ref.column("L2W")).all()


def test_receiver_clock_offset_is_read_and_written_back() -> None:
    lines = _rover_text(2)
    k = next(i for i, ln in enumerate(lines) if ln.startswith(">"))
    lines[k] = f"{lines[k][:35]:<35}{'':6}{-0.000123456789:15.12f}"
    obs = read_obs(lines)
    assert obs.epochs[0].clock_offset == -0.000123456789
    again = read_obs(obs_to_text(obs)[0].splitlines())
    assert again.epochs[0].clock_offset == -0.000123456789 and again.epochs[1].clock_offset is None


def test_vectorised_cells_match_python_formatting_and_blank_overflows() -> None:
    rng = np.random.default_rng(7)
    text = [f"{x:.3f}" for x in rng.uniform(-3e8, 3e9, 4000)]
    text += ["0.000", "-0.000", "-0.001", "0.999", "9999999999.999", "-999999999.999",
             "123.4565", "-5.0005"]
    values = np.array([float(t) for t in text])
    lli = rng.integers(0, 3, values.size).astype(np.uint8)
    ssi = rng.integers(0, 10, values.size).astype(np.uint8)
    cells, over = format_cells(values[None, :], lli[None, :], ssi[None, :])
    got = [bytes(c).decode() for c in cells[0]]
    want = [f"{v:14.3f}" + (str(a) if a else " ") + (str(b) if b else " ")
            for v, a, b in zip(values, lli, ssi, strict=True)]
    assert got[:-2] == want[:-2] and over == 0
    assert got[-2][:14] == "       123.457" and got[-1][:14] == "        -5.001"  # half away
    big, over = format_cells(np.array([[1e10, -1e9, np.nan]]), np.array([[1, 0, 2]], np.uint8),
                             np.zeros((1, 3), np.uint8))
    assert over == 2
    assert [bytes(c).decode() for c in big[0]] == [" " * 14 + "1 ", " " * 16, " " * 14 + "2 "]
