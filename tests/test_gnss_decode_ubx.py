"""UBX decoding on real u-blox logs, cross-checked against pyubx2 and RTKLIB's convbin."""

from __future__ import annotations

import io
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from pyubx2 import GET, UBXMessage, UBXReader

from daq.gnss.streams.framing import Frame, Framer
from daq.gnss.streams.records import Ephemeris, ObsEpoch
from daq.gnss.streams.ubx import GNSS_SYS, NAV_PVT, NavPvt, UbxDecoder

DATA = (Path(__file__).resolve().parents[1] / "../shared/data/gnss").resolve()
F9P_UBX = DATA / "raw/f9p_2021/20210809-121012-ubx-nmea-data.ubx"
OLD_UBX = DATA / "raw/rtklib_samples/ubx_20080526.ubx"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"GNSS data folder {DATA} absent")
NAV_NAMES = ["SVclockBias", "SVclockDrift", "SVclockDriftRate", "IODE", "Crs", "DeltaN", "M0",
             "Cuc", "Eccentricity", "Cus", "sqrtA", "Toe", "Cic", "Omega0", "Cis", "Io", "Crc",
             "omega", "OmegaDot", "IDOT", "CodesL2", "GPSWeek", "L2Pflag", "SVacc", "health",
             "TGD", "IODC", "TransTime", "FitIntvl"]


def ubx_frames(path: Path) -> list[Frame]:
    fr = Framer()
    data = path.read_bytes()
    out = [f for i in range(0, len(data), 1000) for f in fr.feed(data[i:i + 1000])]
    return [f for f in out + fr.flush() if f.kind == "ubx"]


def pyubx2_frames(path: Path) -> Counter[bytes]:
    """Every UBX frame pyubx2's own stream reader finds (restarted after each error)."""
    stream, found = io.BytesIO(path.read_bytes()), Counter[bytes]()
    while True:
        try:
            for raw, parsed in UBXReader(stream, protfilter=2, quitonerror=0):
                if parsed is not None:
                    found[raw] += 1
            return found
        except Exception:  # pyubx2 stops on the NMEA fragments inside this log: go on
            continue


@pytest.mark.parametrize("path", [F9P_UBX, OLD_UBX], ids=lambda p: p.name)
def test_every_frame_pyubx2_finds_is_found_and_every_frame_we_find_parses_in_pyubx2(
        path: Path) -> None:
    ours = ubx_frames(path)
    ours_raw = Counter(f.raw for f in ours)
    theirs = pyubx2_frames(path)
    assert not theirs - ours_raw                 # nothing pyubx2 sees is missed
    for f in ours:                               # and nothing we accept is invalid to pyubx2
        UBXReader.parse(f.raw, validate=1)
    if path == F9P_UBX:
        # the log has RAWX frames cut by NMEA lines: byte-wise resync recovers more of them
        assert Counter(f.msg for f in ours)[(2, 0x15)] == 132
        assert sum(1 for r in theirs if r[2:4] == b"\x02\x15") == 123
    else:
        assert Counter(f.msg for f in ours) == Counter({(2, 0x10): 242, (2, 0x11): 842})


def _fields(msg: Any, name: str, i: int) -> Any:
    return getattr(msg, f"{name}_{i:02d}")


def test_rawx_observations_equal_pyrtcm_fields_for_every_measurement() -> None:
    dec = UbxDecoder()
    n = 0
    for f in ubx_frames(F9P_UBX):
        if f.msg != (2, 0x15):
            continue
        ours, ref = dec.decode(f.msg, f.payload), UBXReader.parse(f.raw)
        assert isinstance(ours, ObsEpoch) and ours.week == ref.week
        assert ours.tow == ref.rcvTow
        by_key = {(s.sys, s.prn, s.code): s for s in ours.signals}
        assert len(by_key) == len(ours.signals)
        for i in range(1, ref.numMeas + 1):
            sys = GNSS_SYS.get(_fields(ref, "gnssId", i))
            if sys is None:
                continue
            hits = [s for s in ours.signals if s.sys == sys and s.prn == _fields(ref, "svId", i)
                    and s.lock_ms == _fields(ref, "locktime", i)
                    and s.cnr == (_fields(ref, "cno", i) or None)]
            assert hits, (sys, _fields(ref, "svId", i))
            s = next(h for h in hits if h.doppler == pytest.approx(_fields(ref, "doMes", i)))
            if _fields(ref, "prValid", i):
                assert s.pr == pytest.approx(_fields(ref, "prMes", i), abs=1e-3)
            if _fields(ref, "cpValid", i):
                assert s.cp == pytest.approx(_fields(ref, "cpMes", i), abs=1e-3)
            assert s.half_cycle == (not _fields(ref, "halfCyc", i))
            n += 1
    assert n > 6000


def test_old_rxm_raw_observations_equal_pyubx2() -> None:
    dec = UbxDecoder()
    n = 0
    for f in ubx_frames(OLD_UBX):
        if f.msg != (2, 0x10):
            continue
        ours, ref = dec.decode(f.msg, f.payload), UBXReader.parse(f.raw)
        gps = [i for i in range(1, ref.numSV + 1) if _fields(ref, "sv", i) <= 32]
        assert [s.prn for s in ours.signals] == [_fields(ref, "sv", i) for i in gps]
        for s, i in zip(ours.signals, gps, strict=True):
            assert s.pr == pytest.approx(_fields(ref, "prMes", i), abs=1e-3)
            assert s.cp == (pytest.approx(_fields(ref, "cpMes", i), abs=1e-3)
                            if _fields(ref, "cpMes", i) else None)   # 0: no phase
            assert s.slip == bool(_fields(ref, "lli", i) & 1)
            n += 1
    assert n > 2000


def _rinex_gps_nav(text: str) -> list[tuple[int, list[float]]]:
    lines = text.split("END OF HEADER")[1].splitlines()[1:]
    out = []
    for i, line in enumerate(lines):
        if line[:1] == "G":
            block = [line[23:]] + [x[4:] for x in lines[i + 1:i + 8]]
            vals = [float(b[k:k + 19].replace("D", "E"))
                    for b in block for k in range(0, len(b.rstrip()), 19)]
            out.append((int(line[1:3]), vals))
    return out


@pytest.mark.skipif(shutil.which("convbin") is None, reason="RTKLIB convbin not installed")
@pytest.mark.parametrize("path", [F9P_UBX, OLD_UBX], ids=lambda p: p.name)
def test_gps_ephemerides_from_subframes_equal_convbin_rinex_nav(path: Path,
                                                                tmp_path: Path) -> None:
    src = tmp_path / "log.ubx"
    src.write_bytes(path.read_bytes())
    subprocess.run(["convbin", "-r", "ubx", str(src), "-n", str(tmp_path / "log.nav"),
                    "-o", str(tmp_path / "log.obs")], check=True, capture_output=True)
    ref = _rinex_gps_nav((tmp_path / "log.nav").read_text())
    dec = UbxDecoder()
    ours = [r for f in ubx_frames(path) if isinstance(r := dec.decode(f.msg, f.payload),
                                                      Ephemeris) and r.sys == "G"]
    assert len(ref) >= 8 and len(ours) >= len(ref)
    for prn, vals in ref:
        eph = next(e for e in ours if e.prn == prn and e.fields["IODE"] == vals[3])
        for name, value in zip(NAV_NAMES, vals, strict=False):
            if name in ("TransTime", "SVacc", "GPSWeek"):   # receiver time / index / full week
                continue
            # RINEX prints 12 significant digits
            assert eph.fields[name] == pytest.approx(value, rel=1e-11, abs=1e-24), (prn, name)


@pytest.mark.skipif(shutil.which("convbin") is None, reason="RTKLIB convbin not installed")
def test_rawx_epochs_include_every_epoch_convbin_writes(tmp_path: Path) -> None:
    src = tmp_path / "log.ubx"
    src.write_bytes(F9P_UBX.read_bytes())
    subprocess.run(["convbin", "-r", "ubx", str(src), "-o", str(tmp_path / "log.obs")],
                   check=True, capture_output=True)
    ref = [line for line in (tmp_path / "log.obs").read_text().splitlines()
           if line.startswith(">")]
    ref_sod = {round(int(r[13:15]) * 3600 + int(r[16:18]) * 60 + float(r[19:29]), 3)
               for r in ref}
    dec = UbxDecoder()
    ours = {round(r.tow % 86400, 3) for f in ubx_frames(F9P_UBX)
            if isinstance(r := dec.decode(f.msg, f.payload), ObsEpoch) and r.tow is not None}
    assert len(ref) == 129 and ref_sod <= ours and len(ours) == 132


def test_nav_pvt_built_by_pyubx2_decodes_to_the_same_position_and_carrier_solution() -> None:
    msg = UBXMessage("NAV", "NAV-PVT", GET, iTOW=144631200, year=2021, month=8, day=9,
                     hour=16, min=10, second=13, fixType=3, carrSoln=2, numSV=24,
                     lon=-69.9153538, lat=18.4620105, height=-18912, hMSL=22588,
                     hAcc=14, vAcc=10)
    fr = Framer()
    (frame,) = fr.feed(msg.serialize())
    pvt = UbxDecoder().decode(frame.msg, frame.payload)
    assert frame.msg == NAV_PVT and isinstance(pvt, NavPvt)
    assert (pvt.lat, pvt.lon) == pytest.approx((18.4620105, -69.9153538), abs=1e-9)
    assert (pvt.height, pvt.h_msl, pvt.h_acc) == pytest.approx((-18.912, 22.588, 0.014))
    assert pvt.carrier == 2 and pvt.fix_type == 3 and pvt.num_sv == 24
    assert pvt.tow == pytest.approx(144631.2) and pvt.utc[:5] == (2021, 8, 9, 16, 10)
