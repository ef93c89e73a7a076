"""Framing of mixed RTCM 3 / UBX / NMEA streams, and the ``daq gnss decode`` command."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from pyubx2 import POLL, UBXMessage

from daq.gnss.cli import decode as cli_decode
from daq.gnss.streams.framing import (
    BAD_CRC,
    BAD_NMEA_CHECKSUM,
    BAD_UBX_CHECKSUM,
    TRUNCATED,
    Framer,
    crc24q,
    nmea_checksum,
    ubx_checksum,
)

DATA = (Path(__file__).resolve().parents[1] / "../shared/data/gnss").resolve()
F9P_UBX = DATA / "raw/f9p_2021/20210809-121012-ubx-nmea-data.ubx"
F9P_RTCM = DATA / "raw/f9p_2021/20210809-111055-rtcm3-base-corrections.rtcm3"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"GNSS data folder {DATA} absent")
GGA = b"$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\r\n"


def rtcm(payload: bytes) -> bytes:
    head = bytes([0xD3, len(payload) >> 8, len(payload) & 0xFF]) + payload
    return head + crc24q(head).to_bytes(3, "big")


def run_all(data: bytes, chunk: int) -> tuple[list[bytes], Framer]:
    fr = Framer()
    out = [f.raw for i in range(0, len(data), chunk) for f in fr.feed(data[i:i + chunk])]
    return out + [f.raw for f in fr.flush()], fr


def test_checksums_match_published_examples() -> None:
    assert nmea_checksum(GGA[1:GGA.index(b"*")]) == 0x47
    poll = UBXMessage("CFG", "CFG-PRT", POLL).serialize()     # pyubx2 computes its own
    assert ubx_checksum(poll[2:-2]) == poll[-2:]
    assert crc24q(b"") == 0
    assert crc24q(b"\xd3\x00\x00") == 0x47EA4B  # the empty keep-alive frame D3 00 00 47 EA 4B


def test_an_empty_rtcm_keep_alive_frame_is_framed_and_not_an_error() -> None:
    from daq.gnss.streams.stream import GnssStream

    stream = GnssStream()
    (pair,) = stream.feed(b"\xd3\x00\x00\x47\xea\x4b")
    assert pair[0].msg == 0 and stream.decode_errors == {}


def test_three_protocols_interleaved_are_each_framed() -> None:
    ubx = UBXMessage("CFG", "CFG-PRT", POLL).serialize()
    msg = rtcm(bytes([0x3E, 0xD0]) + bytes(17))                # an all-zero 1005
    frames, fr = run_all(GGA + ubx + msg + b"noise" + GGA, 5)
    assert frames == [GGA, ubx, msg, GGA]
    assert fr.frames == {"nmea": 2, "ubx": 1, "rtcm3": 1}
    assert fr.bytes_skipped == 5 and fr.pending == 0


def test_a_bad_frame_is_counted_by_reason_and_the_next_good_frame_still_found() -> None:
    msg = rtcm(bytes([0x3E, 0xD0]) + bytes(17))
    bad_rtcm = msg[:10] + bytes([msg[10] ^ 4]) + msg[11:]
    ubx = UBXMessage("CFG", "CFG-PRT", POLL).serialize()
    bad_ubx = ubx[:-1] + bytes([ubx[-1] ^ 1])
    bad_gga = GGA.replace(b"4807", b"4808")
    frames, fr = run_all(bad_rtcm + msg + bad_ubx + ubx + bad_gga + GGA + msg[:12], 3)
    assert frames == [msg, ubx, GGA]
    assert fr.rejected[BAD_CRC] == 1 and fr.rejected[BAD_UBX_CHECKSUM] == 1
    assert fr.rejected[BAD_NMEA_CHECKSUM] == 1
    assert fr.rejected[TRUNCATED] >= 1            # the cut frame at the end of the stream
    assert fr.bytes_in == fr.bytes_framed + fr.bytes_skipped


@needs_data
@pytest.mark.parametrize("path", [F9P_UBX, F9P_RTCM], ids=lambda p: p.name)
def test_chunk_size_never_changes_the_frames_found(path: Path) -> None:
    data = path.read_bytes()[:300_000]
    whole, fr_whole = run_all(data, len(data))
    for chunk in (1, 7, 1000):
        frames, fr = run_all(data, chunk)
        assert frames == whole
        assert fr.rejected == fr_whole.rejected
        assert fr.bytes_in == fr.bytes_framed + fr.bytes_skipped == len(data)


def test_a_runaway_partial_frame_cannot_grow_the_buffer_without_bound() -> None:
    fr = Framer(max_pending=1024)
    fr.feed(b"$GPGGA," + b"1" * 5000)
    assert fr.pending <= 1024
    assert fr.bytes_in == fr.bytes_framed + fr.bytes_skipped + fr.pending


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="daq gnss")
    cli_decode.register(parser.add_subparsers())
    args = parser.parse_args(["decode", *argv])
    return int(args.func(args))


@needs_data
def test_decode_command_summarises_an_rtcm_log_as_json(capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    assert _cli(str(F9P_RTCM), "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["messages"]["RTCM 1077"] == 867 and out["messages"]["RTCM 1006"] == 87
    assert out["epochs"] == 867 and out["span_s"] == 866.0
    assert set(out["satellites"]) == {"G", "R", "E", "C"}
    assert out["stations"][0]["x"] == pytest.approx(2078678.9505)
    assert out["rejected_frames"] == {} and out["decode_errors"] == {}


@needs_data
def test_decode_command_prints_a_table_with_errors_for_a_damaged_log(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(str(F9P_UBX)) == 0
    text = capsys.readouterr().out
    assert "UBX RXM-RAWX" in text and "NMEA GGA" in text and "GPS" in text
    assert "ubx_checksum 498" in text and "epochs     132" in text


def test_decode_command_rejects_a_missing_file_or_one_without_any_message(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(str(tmp_path / "absent.ubx")) == 2
    assert "no such file" in capsys.readouterr().err
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 10)
    assert _cli(str(junk), "--json") == 2
    captured = capsys.readouterr()
    assert "no RTCM 3, UBX or NMEA message" in captured.err
    assert json.loads(captured.out)["skipped_bytes"] == 2560
