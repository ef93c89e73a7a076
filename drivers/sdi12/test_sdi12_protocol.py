"""SDI-12 encode/decode as pure functions, with byte vectors from the v1.4 specification
and from sensor manuals (Vaisala WMT700, WXT530)."""

from __future__ import annotations

import pytest

from daq.errors import ProtocolError
from daq_drivers.sdi12 import protocol as p

M = p.parse_command("M")
MC = p.parse_command("MC")
C = p.parse_command("C")


def test_crc_of_the_specification_example_is_oqz() -> None:
    """SDI-12 v1.4 §4.4.12.3: 0D0! → 0+3.14OqZ<CR><LF>."""
    assert p.crc_chars(p.crc16(b"0+3.14")) == b"OqZ"
    assert p.append_crc(b"0+3.14") == b"0+3.14OqZ"


def test_crc_matches_a_vaisala_wmt700_capture() -> None:
    """WMT700 user guide: 1D0! → 1+2.7+85.2-0.2-2.7+770.5CAH<CR><LF>."""
    assert p.crc_chars(p.crc16(b"1+2.7+85.2-0.2-2.7+770.5")) == b"CAH"


def test_crc_is_crc16_arc_with_its_published_check_value() -> None:
    assert p.crc16(b"123456789") == 0xBB3D


def test_crc_characters_are_printable_and_carry_16_bits() -> None:
    for crc in (0x0000, 0xFFFF, 0x1234, 0xFC5A):
        chars = p.crc_chars(crc)
        assert all(0x40 <= c <= 0x7F for c in chars)
        assert ((chars[0] & 0x0F) << 12 | (chars[1] & 0x3F) << 6 | chars[2] & 0x3F) == crc


def test_data_reply_with_crc_yields_the_value_texts() -> None:
    values = p.parse_values(b"1+2.7+85.2-0.2-2.7+770.5CAH\r\n", "1", crc=True)
    assert values == ["+2.7", "+85.2", "-0.2", "-2.7", "+770.5"]
    assert [float(v) for v in values] == pytest.approx([2.7, 85.2, -0.2, -2.7, 770.5])


def test_a_changed_digit_fails_the_crc_and_keeps_the_bytes() -> None:
    with pytest.raises(ProtocolError) as info:
        p.parse_values(b"0+3.15OqZ\r\n", "0", crc=True)
    assert info.value.data == b"0+3.15OqZ\r\n"


def test_data_reply_without_crc_splits_on_signs() -> None:
    """v1.4 example: 0D0! → 0+3.14+2.718+1.414<CR><LF>."""
    assert p.parse_values(b"0+3.14+2.718+1.414\r\n", "0", crc=False) == [
        "+3.14", "+2.718", "+1.414"]
    assert p.parse_values(b"0-.5+12-0\r\n", "0", crc=False) == ["-.5", "+12", "-0"]


def test_address_only_data_reply_means_no_more_values() -> None:
    assert p.parse_values(b"0\r\n", "0", crc=False) == []
    assert p.parse_values(p.append_crc(b"0") + b"\r\n", "0", crc=True) == []


@pytest.mark.parametrize("line", [
    b"0+3.14",  # cut short: no <CR><LF>
    b"0+3.1x4\r\n",  # a character that is no part of a value
    b"03.14\r\n",  # value without its sign
    b"0+12345678\r\n",  # 8 digits: the standard allows 7
    b"1+3.14\r\n",  # another sensor's address
    b"\x7f#%&\r\n",  # line noise
])
def test_malformed_data_replies_raise_protocol_error(line: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        p.parse_values(line, "0", crc=False)
    assert info.value.data == line


def test_echoed_command_is_stripped_before_parsing() -> None:
    """Some SDI-12 adapters echo the command: the reply then starts with '0D0!'."""
    assert p.parse_values(b"0D0!0+1.5\r\n", "0", crc=False, sent=b"0D0!") == ["+1.5"]


def test_measurement_start_gives_seconds_and_count() -> None:
    """v1.4: aM! → atttn; aC! → atttnn."""
    assert p.parse_start(b"00013\r\n", "0", M) == p.MeasurementStart("0", 1, 3)
    assert p.parse_start(b"10025\r\n", "1", MC) == p.MeasurementStart("1", 2, 5)
    assert p.parse_start(b"a12012\r\n", "a", C) == p.MeasurementStart("a", 120, 12)


@pytest.mark.parametrize("line,cmd", [
    (b"00013\r\n", C),  # M-style reply to a C command
    (b"000112\r\n", M),  # C-style reply to an M command
    (b"0001\r\n", M),
    (b"10013\r\n", M),  # wrong address
])
def test_malformed_measurement_start_raises_protocol_error(
        line: bytes, cmd: p.MeasurementCommand) -> None:
    with pytest.raises(ProtocolError):
        p.parse_start(line, "0", cmd)


def test_identification_of_a_vaisala_wxt530() -> None:
    """WXT530 user guide: 0I! → 013VAISALA_WXT530103Y2630000."""
    ident = p.parse_identification(b"013VAISALA_WXT530103Y2630000\r\n", "0")
    assert (ident.version, ident.vendor, ident.model, ident.firmware, ident.extra) == (
        "13", "VAISALA_", "WXT530", "103", "Y2630000")


def test_short_identification_raises_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        p.parse_identification(b"013VAISALA\r\n", "0")


@pytest.mark.parametrize("body,kind,crc", [
    ("M", "M", False), ("MC", "M", True), ("M7", "M", False), ("MC9", "M", True),
    ("C", "C", False), ("CC", "C", True), ("C3", "C", False), ("CC1", "C", True),
    ("R0", "R", False), ("RC5", "R", True),
])
def test_measurement_commands_parse(body: str, kind: str, crc: bool) -> None:
    cmd = p.parse_command(body)
    assert (cmd.kind, cmd.crc) == (kind, crc)


@pytest.mark.parametrize("body", ["", "M0", "MCC", "R", "D0", "X", "M10"])
def test_unknown_measurement_commands_are_refused(body: str) -> None:
    with pytest.raises(ValueError):
        p.parse_command(body)


def test_commands_are_address_body_and_bang() -> None:
    assert p.command("0", "M") == b"0M!"
    assert p.command("z", "D1") == b"zD1!"
    assert p.command("?", "") == b"?!"


def test_addresses_accept_digits_and_letters_only() -> None:
    assert p.normalise_address(3) == "3"
    assert p.normalise_address("Z") == "Z"
    for bad in (10, "", "ab", "!", None, True):
        with pytest.raises(ValueError):
            p.normalise_address(bad)


def test_ack_and_address_query_replies() -> None:
    p.parse_ack(b"0\r\n", "0")
    assert p.parse_address(b"7\r\n") == "7"
    with pytest.raises(ProtocolError):
        p.parse_ack(b"1\r\n", "0")
    with pytest.raises(ProtocolError):
        p.parse_address(b"\r\n")
