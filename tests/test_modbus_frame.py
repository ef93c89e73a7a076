"""daq.modbus_frame, sans I/O: request bytes and reply checks against byte vectors."""

from __future__ import annotations

import pytest

from daq import modbus_frame as mf


def test_request_bytes_match_the_specification_example() -> None:
    """Read holding registers 0-9 of unit 1: 01 03 00 00 00 0A C5 CD."""
    assert mf.rtu_request(1, "holding", 0, 10) == bytes.fromhex("01030000000AC5CD")
    assert mf.tcp_request(0x1234, 255, "input", 1, 2) == bytes.fromhex(
        "123400000006FF0400010002")
    assert mf.rtu_request(17, "coil", 19, 37)[:-2] == bytes.fromhex("110100130025")


def test_a_good_reply_decodes_and_each_wrong_field_is_refused() -> None:
    good = mf.with_crc(bytes.fromhex("0103040102FFFE"))
    assert mf.values(mf.check_rtu(good, 1, "holding", 2), "holding", 2) == [0x0102, 0xFFFE]
    cases = {
        "garbled": [mf.with_crc(bytes.fromhex("0203040102FFFE")),   # unit
                    mf.with_crc(bytes.fromhex("0104040102FFFE")),   # input for holding
                    mf.with_crc(bytes.fromhex("010306010203040506")),  # 3 registers
                    bytes.fromhex("0103")],                          # truncated
        "crc": [good[:-1] + bytes([good[-1] ^ 1])],
    }
    for kind, frames in cases.items():
        for frame in frames:
            with pytest.raises(mf.FrameError) as err:
                mf.check_rtu(frame, 1, "holding", 2)
            assert err.value.kind == kind, frame.hex()


@pytest.mark.parametrize("code,kind", [(2, "exception"), (10, "gateway_path"),
                                       (11, "gateway_no_response")])
def test_exception_replies_carry_their_code(code: int, kind: str) -> None:
    frame = mf.with_crc(bytes([1, 0x83, code]))
    with pytest.raises(mf.FrameError) as err:
        mf.check_rtu(frame, 1, "holding", 2)
    assert (err.value.kind, err.value.code) == (kind, code)
    assert mf.with_crc(bytes.fromhex("018302")) == bytes.fromhex("018302C0F1")


def test_bits_are_least_significant_first() -> None:
    """Coils 20-29 = 1,0,1,1,0,0,1,1, 1,0 (the spec's example: CD 01)."""
    assert mf.bits(bytes.fromhex("CD01"), 10) == [1, 0, 1, 1, 0, 0, 1, 1, 1, 0]
    assert mf.data_bytes("coil", 10) == 2 and mf.rtu_reply_length("discrete", 1) == 6


def test_mbap_header_checks() -> None:
    assert mf.check_mbap(bytes.fromhex("00070000000701"), 7, 1) == 6
    for bad in ("00080000000701", "00070001000701", "00070000010001", "00070000000702"):
        with pytest.raises(mf.FrameError):
            mf.check_mbap(bytes.fromhex(bad), 7, 1)


def test_write_single_coil_matches_the_spec_example_and_checks_the_echo() -> None:
    """Modbus spec 6.5 (slave 0x11, coil 173 ON): the request is 11 05 00AC FF00 + CRC 4E8B,
    and only a reply echoing address and value is taken as done."""
    req = mf.rtu_request(0x11, mf.WRITE_COIL, 0xAC, 1)
    assert req.hex() == "110500acff004e8b"
    assert mf.values(mf.check_rtu(req, 0x11, mf.WRITE_COIL, 1), mf.WRITE_COIL, 1) == \
        [0xAC, 0xFF00]
    with pytest.raises(mf.FrameError) as err:
        mf.check_rtu(mf.with_crc(bytes.fromhex("1185") + b"\x02"), 0x11, mf.WRITE_COIL, 1)
    assert err.value.kind == "exception" and err.value.code == 2
