"""NMEA 0183 decoding (vs pynmeagps on a real F9P capture) and RTK session statistics."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
from pynmeagps import NMEAReader

from daq.gnss.solver.receiver_rtk import EnuFix, enu_offset, geodetic_to_ecef, session_stats
from daq.gnss.streams import nmea
from daq.gnss.streams.bits import DecodeError
from daq.gnss.streams.framing import Framer, nmea_checksum
from daq.gnss.streams.records import Unsupported
from daq.gnss.streams.stream import GnssStream

DATA = (Path(__file__).resolve().parents[1] / "../shared/data/gnss").resolve()
F9P_UBX = DATA / "raw/f9p_2021/20210809-121012-ubx-nmea-data.ubx"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"GNSS data folder {DATA} absent")


def sentence(body: str) -> bytes:
    return f"${body}*{nmea_checksum(body.encode()):02X}\r\n".encode()


def one(body: str) -> object:
    (frame,) = Framer().feed(sentence(body))
    return nmea.decode(frame.payload)


@needs_data
def test_gga_and_rmc_of_a_real_f9p_capture_equal_pynmeagps() -> None:
    fr = Framer()
    n = n_gga = 0
    for frame in fr.feed(F9P_UBX.read_bytes()) + fr.flush():
        if frame.kind != "nmea" or str(frame.msg)[2:] not in ("GGA", "RMC"):
            continue
        ours, ref = nmea.decode(frame.payload), NMEAReader.parse(frame.raw)
        assert ours.lat == pytest.approx(ref.lat, abs=1e-9)
        assert ours.lon == pytest.approx(ref.lon, abs=1e-9)
        t = ref.time
        assert ours.time == pytest.approx(t.hour * 3600 + t.minute * 60 + t.second
                                          + t.microsecond * 1e-6, abs=1e-6)
        if isinstance(ours, nmea.Gga):
            assert (ours.quality, ours.satellites) == (ref.quality, ref.numSV)
            assert (ours.alt_msl, ours.geoid_sep) == (ref.alt, ref.sep)
            assert ours.age == (ref.diffAge or None) or ours.age == ref.diffAge
            n_gga += 1
        n += 1
    assert n_gga == 606 and n == 606 + 625


@needs_data
def test_real_capture_has_fixed_and_float_epochs_and_session_statistics_use_fixed_only() -> None:
    stream = GnssStream()
    ggas = [r for _f, r in stream.feed(F9P_UBX.read_bytes()) if isinstance(r, nmea.Gga)]
    ref = (ggas[-1].lat, ggas[-1].lon, ggas[-1].height)
    assert ref[0] is not None and ref[1] is not None and ref[2] is not None
    fixes = [EnuFix(g.quality, *enu_offset(g.lat, g.lon, g.height, ref))  # type: ignore[arg-type]
             for g in ggas]
    st = session_stats(fixes)
    assert (st.epochs, st.fixed) == (606, 544)
    assert st.fixed_ratio == pytest.approx(544 / 606)
    assert st.e is not None and st.n is not None and st.u is not None
    # a static rover: fixed epochs within a few cm of the last one (NMEA has 1e-5' ≈ 1.8 cm)
    assert abs(st.e.median) < 0.05 and abs(st.n.median) < 0.05 and abs(st.u.median) < 0.3
    assert st.e.sigma < 0.05 and st.n.sigma < 0.05


def test_gst_zda_and_every_talker_decode_with_units() -> None:
    gst = one("GNGST,172814.0,0.006,0.023,0.020,273.6,0.023,0.020,0.031")
    assert isinstance(gst, nmea.Gst)
    assert (gst.sigma_lat, gst.sigma_lon, gst.sigma_h) == (0.023, 0.020, 0.031)
    assert gst.time == 17 * 3600 + 28 * 60 + 14.0
    zda = one("GPZDA,160012.71,09,08,2021,00,00")
    assert isinstance(zda, nmea.Zda) and zda.date == (2021, 8, 9)
    for talker in ("GP", "GN", "BD", "GB", "GA", "GL"):
        gga = one(f"{talker}GGA,123519,4807.038,N,01131.000,E,4,08,0.9,545.4,M,46.9,M,1.2,0031")
        assert isinstance(gga, nmea.Gga) and gga.talker == talker
        assert gga.quality == nmea.RTK_FIXED and gga.age == 1.2 and gga.station == "0031"
        assert gga.lat == pytest.approx(48 + 7.038 / 60) and gga.lon == pytest.approx(11 + 31 / 60)
        assert gga.height == pytest.approx(545.4 + 46.9)
    rmc = one("GNRMC,161013.00,A,1827.72063,S,06954.92123,W,0.009,,090821,,,F,V")
    assert isinstance(rmc, nmea.Rmc) and rmc.valid and rmc.mode == "F"
    assert rmc.date == (2021, 8, 9) and rmc.lat < 0 and rmc.lon < 0  # type: ignore[operator]


def test_empty_fields_are_none_and_malformed_fields_are_decode_errors() -> None:
    gga = one("GPGGA,,,,,,0,,,,,,,,")
    assert isinstance(gga, nmea.Gga) and gga.lat is None and gga.quality == 0
    assert gga.height is None
    for bad in ("GPGGA,1x3519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,",
                "GPGGA,123519,4867.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,",
                "GPGGA,123519,4807.038,Q,01131.000,E,1,08,0.9,545.4,M,46.9,M,,",
                "GPGGA,123519,4807.038,N,01131.000,E,one,08,0.9,545.4,M,46.9,M,,",
                "GPGGA,123519,4807.038,N",
                "GPRMC,161013.00,A,1827.72063,N,06954.92123,W,0.009,,991321,,,F,V",
                "GPZDA,160012.71,45,13,2021,00,00"):
        with pytest.raises(DecodeError):
            one(bad)
    assert isinstance(one("GPGSV,3,1,11,03,03,111,00"), Unsupported)


def test_enu_offset_of_a_point_one_metre_north_east_up() -> None:
    ref = (18.4620105, -69.9153538, -18.9)
    # move 1 m along each local axis in ECEF and convert back through geodetic latitude
    lat, lon, h = ref
    e, n, u = enu_offset(lat, lon, h + 1.0, ref)
    assert (e, n, u) == pytest.approx((0.0, 0.0, 1.0), abs=1e-6)
    dlat = 1.0 / 110_700.0            # ~1 m of latitude near 18° N
    e, n, u = enu_offset(lat + dlat, lon, h, ref)
    assert e == pytest.approx(0.0, abs=1e-6) and n == pytest.approx(1.0, rel=2e-3)
    x, y, z = geodetic_to_ecef(0.0, 0.0, 0.0)
    assert (x, y, z) == pytest.approx((6378137.0, 0.0, 0.0))


def test_session_statistics_ignore_float_epochs_and_reject_outliers() -> None:
    rng = random.Random(7)
    fixes = [EnuFix(4, 0.010 + rng.gauss(0, 0.001), -0.020 + rng.gauss(0, 0.001),
                    0.005 + rng.gauss(0, 0.002)) for _ in range(400)]
    fixes += [EnuFix(5, 0.5, 0.5, 0.5) for _ in range(100)]          # float: not used
    fixes += [EnuFix(4, 0.2, 0.010, -0.3) for _ in range(5)]         # wrong fixes: rejected
    st = session_stats(fixes)
    assert (st.epochs, st.fixed) == (505, 405)
    assert st.fixed_ratio == pytest.approx(405 / 505)
    assert st.e is not None and st.n is not None and st.u is not None
    assert st.e.mean == pytest.approx(0.010, abs=3e-4) and st.e.rejected == 5
    assert st.n.mean == pytest.approx(-0.020, abs=3e-4)
    assert st.u.mean == pytest.approx(0.005, abs=5e-4)
    assert st.e.sigma == pytest.approx(0.001, rel=0.2)
    assert st.e.spread < 0.01


def test_session_without_fixed_epochs_reports_counts_and_no_position() -> None:
    st = session_stats([EnuFix(5, 0.0, 0.0, 0.0), EnuFix(1, 0.0, 0.0, math.nan)])
    assert (st.epochs, st.fixed, st.fixed_ratio, st.e) == (2, 0, 0.0, None)
    assert session_stats([]).fixed_ratio == 0.0
    same = session_stats([EnuFix(4, 0.001, 0.002, 0.003)] * 10)
    assert same.e is not None and same.e.mean == pytest.approx(0.001) and same.e.sigma == 0.0
