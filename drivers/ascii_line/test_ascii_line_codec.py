"""The line codec as pure functions, with byte sequences of real sensor families.

Provenance: the NMEA GGA sentence is the classic published example (checksum 47); the
Vaisala and Pfeiffer lines follow the formats in those vendors' manuals; the Keller-style
line and the generic level transmitter line are hand-written, not captured from devices.
"""

from __future__ import annotations

from typing import Any

import pytest

from daq.model import Quality
from daq.schema import Ctx
from daq_drivers.ascii_line import AsciiLineDriver, LineCodec, LineError
from daq_drivers.ascii_line.codec import check_template, sum8, unescape, xor8


def codec(address: int | None = None, **options: Any) -> LineCodec:
    ctx = Ctx()
    checked = AsciiLineDriver.options_schema.check(options, "options", None, ctx)
    assert ctx.problems == []
    return LineCodec(checked, address)


VAISALA = dict(request="SEND {address}\\r",
               reply=r"\s*RH=\s*(?P<rh>[-+0-9.]+)\s*%RH\s+T=\s*(?P<t>[-+0-9.]+)\s*'C\s*",
               groups={"rh": {"unit": "%"}, "t": {"unit": "°C"}})


def test_vaisala_send_reply_gives_humidity_and_temperature() -> None:
    c = codec(1, **VAISALA)
    assert c.request == b"SEND 1\r"
    rh, t = c.decode(b"RH= 45.2 %RH T= 21.6 'C\r\n")
    assert (rh.channel, rh.value, rh.unit) == ("rh", pytest.approx(45.2), "%")
    assert (t.channel, t.value, t.quality) == ("t", pytest.approx(21.6), Quality.GOOD)


def test_vaisala_style_sum8_checksum_is_verified_and_removed() -> None:
    """A PTB-style barometer line with a modulo-256 checksum after a space."""
    c = codec(reply=r"P=\s*(?P<p>[0-9.]+) hPa", checksum="sum8", checksum_separator=" ",
              groups={"p": {"unit": "hPa"}})
    assert c.decode(b"P= 1013.25 hPa 40\r\n")[0].value == pytest.approx(1013.25)
    with pytest.raises(LineError) as info:
        c.decode(b"P= 1013.26 hPa 40\r\n")
    assert info.value.kind == "checksum"
    assert info.value.data == b"P= 1013.26 hPa 40\r\n"


def test_nmea_gga_xor_checksum_of_the_published_example() -> None:
    line = b"$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\r\n"
    c = codec(reply=r"\$GPGGA,[^,]*,[^,]*,[NS],[^,]*,[EW],(?P<fix>\d),(?P<sats>\d+),"
                    r"[^,]*,(?P<alt>[-0-9.]+),M,.*", checksum="xor")
    fix, sats, alt = c.decode(line)
    assert (fix.value, sats.value, alt.value) == (1.0, 8.0, pytest.approx(545.4))
    with pytest.raises(LineError) as info:
        c.decode(line.replace(b"545.4", b"545.5"))
    assert info.value.kind == "checksum"


def test_keller_style_reply_with_scale_and_offset() -> None:
    """Pressure in bar → kPa (scale 100); temperature kept in °C."""
    c = codec(1, request="#{address:02d}RD\\r\\n",
              reply=r"#(?P<addr>\d\d) P1=(?P<p>[-+0-9.]+) bar TOB1=(?P<t>[-+0-9.]+) C",
              groups={"p": {"unit": "kPa", "scale": 100.0}, "t": {"unit": "°C"}})
    assert c.request == b"#01RD\r\n"
    addr, p, t = c.decode(b"#01 P1=+0.98765 bar TOB1=+12.50 C\r\n")
    assert (addr.value, p.value, t.value) == (1.0, pytest.approx(98.765), pytest.approx(12.5))


def test_generic_level_line_with_offset_to_elevation() -> None:
    """'+0012.345 m' is a depth; offset 69.645 m gives the level as an elevation."""
    c = codec(reply=r"(?P<level>[-+]\d+\.\d+) m",
              groups={"level": {"unit": "m", "offset": 69.645, "quantity": "water_level"}})
    (level,) = c.decode(b"+0012.345 m\r\n")
    assert level.value == pytest.approx(81.99, abs=1e-9)
    assert level.raw == {"text": "+0012.345"}


def test_pfeiffer_style_status_and_exponent_value() -> None:
    c = codec(reply=r"(?P<status>\d),\s*(?P<pressure>[-+0-9.Ee]+)")
    status, pressure = c.decode(b"0, 8.3E-3\r\n")
    assert (status.value, pressure.value) == (0.0, pytest.approx(8.3e-3))


def test_non_numeric_group_is_flagged_bad_and_out_of_range_too() -> None:
    c = codec(reply=r"(?P<a>\S+) (?P<b>\S+)", groups={"b": {"valid_max": 10}})
    a, b = c.decode(b"---- 12.5\r\n")
    assert (a.value, a.quality, a.flags, a.raw) == (None, Quality.BAD, ("not_a_number",),
                                                    {"text": "----"})
    assert (b.value, b.quality, b.flags) == (12.5, Quality.BAD, ("out_of_range",))
    assert c.decode(b"nan inf\r\n")[0].flags == ("not_a_number",)


def test_optional_group_left_out_is_a_gap_record() -> None:
    c = codec(reply=r"(?P<a>[0-9.]+)(?: (?P<b>[0-9.]+))?")
    a, b = c.decode(b"1.5\r\n")
    assert a.value == 1.5 and (b.value, b.quality, b.flags) == (None, Quality.MISSING,
                                                                ("not_returned",))


@pytest.mark.parametrize("line,kind", [
    (b"RH= 45.2 %RH T= 21", "incomplete"),  # cut short
    (b"RH= 45.2 %RH T= 21.6 'C\n", "incomplete"),  # wrong terminator
    (b"\x7f\x15#%&\r\n", "no_match"),  # line noise
    (b"RH= 45.2 %RH\r\n", "no_match"),  # a value missing
    (b"RH= 4\xb55.2 %RH T= 21.6 'C\r\n", "decode"),  # not ASCII
])
def test_garbled_and_partial_lines_raise_line_error(line: bytes, kind: str) -> None:
    with pytest.raises(LineError) as info:
        codec(1, **VAISALA).decode(line)
    assert info.value.kind == kind
    assert info.value.data == line


def test_checksum_field_missing_is_a_checksum_error() -> None:
    c = codec(reply=r"(?P<all>.*)", checksum="xor")
    for line in (b"$SDDBT,12.3,f\r\n", b"$SDDBT,12.3,f*Z1\r\n", b"*\r\n"):
        with pytest.raises(LineError) as info:
            c.decode(line)
        assert info.value.kind == "checksum"


def test_escapes_and_templates() -> None:
    assert unescape(r"SEND\r\n\x02\\") == "SEND\r\n\x02\\"
    assert unescape("already\r\n") == "already\r\n"
    with pytest.raises(ValueError):
        unescape(r"\q")
    assert check_template("SEND {address:02d}\r") is True
    assert check_template("SEND {{x}}") is False
    with pytest.raises(ValueError):
        check_template("SEND {addr}")


def test_checksum_functions() -> None:
    assert xor8(b"SDDBT,12.3,f,3.75,M,2.05,F") == 0x30
    assert sum8(b"\xff\x02") == 0x01


@pytest.mark.parametrize("options,where", [
    ({"reply": "(?P<a>[0-9"}, "options.reply"),
    ({"reply": "[0-9]+"}, "options.reply"),
    ({"reply": "(?P<a>.*)", "groups": {"b": {}}}, "options.groups.b"),
    ({"reply": "(?P<a>.*)", "checksum": "crc"}, "options.checksum"),
    ({"reply": "(?P<a>.*)", "request": "X{unit}"}, "options.request"),
    ({"reply": "(?P<a>.*)", "terminator": r"\q"}, "options.terminator"),
    ({"reply": "(?P<a>.*)", "encoding": "klingon"}, "options.encoding"),
    ({"reply": "(?P<a>.*)", "replay": 1}, "options.replay"),
])
def test_bad_options_are_config_problems_with_their_path(options: dict[str, Any],
                                                         where: str) -> None:
    ctx = Ctx()
    AsciiLineDriver.options_schema.check(options, "options", None, ctx)
    assert [p.path for p in ctx.problems] == [where]
