"""Defects found on real logs (issue 13, part 3): each test failed before its fix.

- u-blox PUBX,03 (613–617 characters in the F9P log) was rejected as ``nmea_format``;
- a ``$`` inside binary data was counted as a malformed sentence;
- ``daq gnss decode`` reported a span of 604 799 s for a log crossing the GPS week.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from daq.gnss.streams.framing import (
    BAD_NMEA_FORMAT,
    NMEA_MAX_LEN,
    NMEA_PROPRIETARY_MAX_LEN,
    Frame,
    Framer,
    nmea_checksum,
)
from daq.gnss.streams.records import ObsEpoch
from daq.gnss.streams.stream import StreamStats, summarise

DATA = (Path(__file__).resolve().parents[1] / "../shared/data/gnss").resolve()
F9P_UBX = DATA / "raw/f9p_2021/20210809-121012-ubx-nmea-data.ubx"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"GNSS data folder {DATA} absent")


def sentence(body: str) -> bytes:
    return f"${body}*{nmea_checksum(body.encode()):02X}\r\n".encode()


def pubx03(n_sv: int) -> bytes:
    """A u-blox PUBX,03 satellite-status sentence with ``n_sv`` satellites (~20 chars each)."""
    svs = ",".join(f"{sv},U,{(sv * 37) % 360:03d},{sv % 90:02d},{30 + sv % 20},064"
                   for sv in range(1, n_sv + 1))
    return sentence(f"PUBX,03,{n_sv:02d},{svs}")


def test_a_long_proprietary_sentence_is_framed_and_a_long_standard_one_is_not() -> None:
    long_pubx = pubx03(32)
    assert 600 < len(long_pubx) < NMEA_PROPRIETARY_MAX_LEN
    gsv = sentence("GPGSV," + "9," * 200 + "9")              # 400+ chars: not NMEA 0183
    assert len(gsv) > NMEA_MAX_LEN + 8
    fr = Framer()
    frames = fr.feed(long_pubx + gsv + sentence("GPGGA,1,2") + pubx03(300)) + fr.flush()
    assert [(f.kind, f.msg, f.raw) for f in frames] == [("nmea", "PUBX", long_pubx),
                                                        ("nmea", "GPGGA", sentence("GPGGA,1,2"))]
    assert dict(fr.rejected) == {BAD_NMEA_FORMAT: 2}    # the long GSV, the 6000-char PUBX
    assert fr.bytes_in == fr.bytes_framed + fr.bytes_skipped


def test_a_proprietary_sentence_split_over_many_chunks_is_framed() -> None:
    data = pubx03(30)
    fr = Framer()
    frames = [f for i in range(0, len(data), 7) for f in fr.feed(data[i:i + 7])]
    assert [f.raw for f in frames] == [data] and not fr.rejected


def test_a_dollar_byte_inside_binary_data_is_skipped_not_counted_as_a_bad_sentence() -> None:
    fr = Framer()
    frames = fr.feed(b"\x01$\x05\x03\x07\x00$E\x06\x05" + sentence("GPGGA,1,2")) + fr.flush()
    assert [f.msg for f in frames] == ["GPGGA"]
    assert not fr.rejected and fr.bytes_skipped == 10


@needs_data
def test_every_valid_pubx_sentence_of_the_real_f9p_log_is_framed() -> None:
    """Oracle: a plain regex over the file for complete PUBX sentences with a good checksum."""
    data = F9P_UBX.read_bytes()
    valid = valid_pubx(data)
    assert valid["03"] == 379 and valid["00"] > 500 and valid["04"] > 500
    fr = Framer()
    framed: dict[str, int] = {}
    for f in fr.feed(data) + fr.flush():
        if f.kind == "nmea" and f.msg == "PUBX":
            kind = f.payload[6:8].decode()
            framed[kind] = framed.get(kind, 0) + 1
    assert framed == valid
    # what is still rejected is really damaged: a sentence cut by a binary frame (its start
    # has no valid checksum anywhere) or a bad checksum; never a '$' byte inside binary data
    candidates = len(re.findall(rb"\$[A-Z0-9]{2}", data))
    good = sum(nmea_checksum(m.group(1)) == int(m.group(2), 16) for m in re.finditer(
        rb"\$([A-Z0-9]{2}[\x20-\x23\x25-\x7e]*)\*([0-9A-F]{2})\r\n", data))
    assert sum(fr.rejected[k] for k in fr.rejected if k.startswith("nmea")) <= candidates - good


def valid_pubx(data: bytes) -> dict[str, int]:
    out: dict[str, int] = {}
    for m in re.finditer(rb"\$(PUBX,(\d\d),[\x20-\x23\x25-\x7e]*)\*([0-9A-F]{2})\r\n", data):
        if nmea_checksum(m.group(1)) == int(m.group(3), 16):
            out[m.group(2).decode()] = out.get(m.group(2).decode(), 0) + 1
    return out


GMSD = DATA / "raw/rtklib_samples/GMSD7_20121014.rtcm3"


def _epochs_stats(tows: list[float]) -> dict[str, object]:
    stats = StreamStats()
    frame = Frame("rtcm3", 1077, b"", b"")
    for tow in tows:
        stats.add(frame, ObsEpoch("rtcm1077", "G", tow))
    return stats.to_json()


def test_the_span_of_epochs_across_the_gps_week_rollover_is_their_real_duration() -> None:
    j = _epochs_stats([604797.0, 604798.0, 604799.0, 0.0, 1.0, 2.0])
    assert (j["epochs"], j["span_s"], j["tow_first"], j["tow_last"]) == (6, 5.0, 604797.0, 2.0)
    # a late message from before the rollover is not a week back in time
    j = _epochs_stats([604798.0, 604799.0, 0.0, 604799.5, 1.0])
    assert (j["epochs"], j["span_s"], j["tow_first"], j["tow_last"]) == (5, 3.0, 604798.0, 1.0)
    j = _epochs_stats([100.0, 101.0])                       # nothing changes within a week
    assert (j["span_s"], j["tow_first"], j["tow_last"]) == (1.0, 100.0, 101.0)


@needs_data
def test_decode_of_the_gmsd_log_that_crosses_the_week_reports_its_real_span() -> None:
    """RTKLIB's GMSD sample (2012-10-14, a Sunday): 257 MSM epochs from TOW 604 784 s to
    240 s of the next week (BeiDou stamped 14 s later: RTCM's BDT, see streams/README.md)."""
    j = summarise(GMSD.read_bytes()).to_json()
    assert j["messages"]["RTCM 1077"] == 257
    assert (j["tow_first"], j["tow_last"], j["span_s"]) == (604784.0, 254.0, 270.0)


def test_solve_accepts_a_negative_base_x_as_a_user_types_it() -> None:
    """``--base-xyz -2078720.6,…`` (no ``=``) is the value, in every form a user writes."""
    import argparse

    from daq.gnss.cli import solve as cli_solve

    parser = argparse.ArgumentParser(prog="daq gnss")
    cli_solve.register(parser.add_subparsers(dest="command", required=True))
    common = ["solve", "--rover", "r.obs", "--base", "b.obs", "--nav", "n.nav"]
    for text, xyz in (("-2078720.6329,-5683487.5402,2007608.6397",
                       (-2078720.6329, -5683487.5402, 2007608.6397)),
                      ("-1.5e6, 2, -3", (-1.5e6, 2.0, -3.0)), ("-.5,0,0", (-0.5, 0.0, 0.0))):
        args = parser.parse_args([*common, "--base-xyz", text, "--json"])
        assert cli_solve._xyz(args.base_xyz) == xyz and args.json
        args = parser.parse_args([*common, f"--base-xyz={text}"])
        assert cli_solve._xyz(args.base_xyz) == xyz
    with pytest.raises(SystemExit):          # an option is still an option
        parser.parse_args([*common, "--base-xyz", "--json"])


def test_daq_gnss_solve_with_a_negative_x_reaches_the_command(tmp_path: Path) -> None:
    """Through the real ``daq`` entry point: the missing file is reported, not the syntax."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "daq", "gnss", "solve", "--rover",
                        str(tmp_path / "missing.obs"), "--base", str(tmp_path / "b.obs"),
                        "--nav", str(tmp_path / "n.nav"), "--base-xyz",
                        "-2078720.6,-5683487.5,2007608.6"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2 and "missing.obs" in r.stderr, r.stderr
