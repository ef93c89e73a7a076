"""The ASCII line driver on real serial links: pyserial's loop:// and a pty pair with a
scripted device. Garbled and partial replies raise ProtocolError, are counted by kind,
and the next poll works."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import serial

from daq.driver import discover
from daq.errors import ConfigError, NoResponse, ProtocolError
from daq.model import Quality
from daq.schema import Ctx, load_yaml
from daq.testing_serial import ScriptedLineDevice, pty_pair
from daq_drivers.ascii_line import AsciiLineDriver, LineError

VAISALA_REPLY = b"RH= 45.2 %RH T= 21.6 'C\r\n"
LEVEL: dict[str, Any] = {"reply": r"(?P<level>[-+]\d+\.\d+) m",
                         "groups": {"level": {"unit": "m"}}}
DBT: dict[str, Any] = {"reply": r"\$SDDBT,[0-9.]*,f,(?P<depth>[0-9.]+),M,[0-9.]*,F",
                       "checksum": "xor", "groups": {"depth": {"unit": "m"}}}


def make(address: int | None = None, **options: Any) -> AsciiLineDriver:
    ctx = Ctx()
    checked = AsciiLineDriver.options_schema.check(options, "options", None, ctx)
    assert ctx.problems == []
    return AsciiLineDriver("sensor", address, checked)


def sample() -> tuple[dict[str, Any], AsciiLineDriver]:
    entry = load_yaml((Path(__file__).parent / "sample.yaml").read_text())
    ctx = Ctx()
    options = AsciiLineDriver.options_schema.check(entry["options"], "options", None, ctx)
    assert ctx.problems == []
    return entry, AsciiLineDriver("sample", entry["address"], options)


@pytest.fixture
def loop() -> Iterator[serial.Serial]:
    port = serial.serial_for_url("loop://", timeout=0.1)
    yield port
    port.close()


@pytest.fixture
def pty() -> Iterator[tuple[serial.Serial, int]]:
    with pty_pair(timeout=0.2, port_class=serial.Serial, baudrate=9600) as pair:
        yield pair


def test_sample_config_passes_the_schema_and_builds_a_driver() -> None:
    entry, driver = sample()
    assert entry["driver"] == "ascii_line"
    assert driver.codec.request == b"SEND 1\r"
    assert [c.name for c in driver.channels] == ["humidity", "air_temperature"]
    assert driver.codec.decode(VAISALA_REPLY)[0].value == pytest.approx(45.2)


def test_driver_is_found_through_its_entry_point() -> None:
    found, _ = discover()
    assert found["ascii_line"].__name__ == "AsciiLineDriver"
    assert found["ascii_line"].link_kind == "serial"


def test_request_with_address_but_no_device_address_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        make(None, request="SEND {address}\r", reply="(?P<a>.*)")


# -- listen mode on loop:// ------------------------------------------------------------

def test_listen_mode_returns_the_newest_complete_line(loop: serial.Serial) -> None:
    driver = make(**LEVEL)
    loop.write(b"2.340 m\r\n+0012.345 m\r\n+0012.346 m\r\n")  # opened mid-line: 1st dropped
    assert driver.poll(loop)[0].value == pytest.approx(12.346)
    loop.write(b"+0012.347 m\r\n+0012.3")
    assert driver.poll(loop)[0].value == pytest.approx(12.347)
    loop.write(b"48 m\r\n")  # the rest of the line left over from the last poll
    assert driver.poll(loop)[0].value == pytest.approx(12.348)


def test_listen_mode_silence_is_no_response(loop: serial.Serial) -> None:
    driver = make(**LEVEL)
    with pytest.raises(NoResponse):
        driver.poll(loop)
    assert driver.errors["no_response"] == 1


def test_listen_mode_bad_checksum_is_counted_and_the_next_line_decodes(
        loop: serial.Serial) -> None:
    driver = make(**DBT)
    loop.write(b"\r\n$SDDBT,12.3,f,3.76,M,2.05,F*30\r\n")  # 3.75 sent as 3.76
    with pytest.raises(ProtocolError) as info:
        driver.poll(loop)
    assert isinstance(info.value, LineError) and info.value.kind == "checksum"
    loop.write(b"$SDDBT,12.3,f,3.75,M,2.05,F*30\r\n")
    assert driver.poll(loop)[0].value == pytest.approx(3.75)
    assert driver.errors == {"checksum": 1}


def test_listen_mode_line_cut_off_is_incomplete(loop: serial.Serial) -> None:
    driver = make(**LEVEL)
    loop.write(b"\r\n+0012.3")
    with pytest.raises(LineError) as info:
        driver.poll(loop)
    assert info.value.kind == "incomplete" and info.value.data == b"+0012.3"


def test_listen_mode_endless_noise_is_too_long_then_resyncs(loop: serial.Serial) -> None:
    driver = make(max_length=32, **LEVEL)
    loop.write(b"\r\n" + b"\x55" * 100)
    with pytest.raises(LineError) as info:
        driver.poll(loop)
    assert info.value.kind == "too_long"
    loop.write(b"\r\n+0001.000 m\r\n")
    assert driver.poll(loop)[0].value == pytest.approx(1.0)


# -- polled mode on a pty pair ---------------------------------------------------------

def test_polled_vaisala_send_over_a_pty(pty: Any) -> None:
    port, fd = pty
    _, driver = sample()
    with ScriptedLineDevice(fd, {b"SEND 1\r": VAISALA_REPLY}) as device:
        values = driver.poll(port)
    assert [(v.channel, v.value, v.unit) for v in values] == [
        ("humidity", pytest.approx(45.2), "%"), ("air_temperature", pytest.approx(21.6), "°C")]
    assert device.requests == [b"SEND 1\r"]


def test_partial_and_garbled_replies_never_stop_the_next_poll(pty: Any) -> None:
    port, fd = pty
    _, driver = sample()
    replies = [VAISALA_REPLY, b"RH= 45.3 %RH T= 2", b"\x00\xff#\x15\r\n",
               b"RH= 45.4 %RH T= 21.7 'C\r\n"]
    outcomes = []
    with ScriptedLineDevice(fd, {b"SEND 1\r": replies}):
        for _ in range(4):
            try:
                outcomes.append(driver.poll(port)[0].value)
            except ProtocolError as err:
                assert err.device == "sample" and err.data
                outcomes.append(type(err).__name__)
    assert outcomes == [pytest.approx(45.2), "LineError", "LineError", pytest.approx(45.4)]
    assert driver.errors == {"incomplete": 1, "decode": 1}


def test_silent_device_is_no_response(pty: Any) -> None:
    port, fd = pty
    _, driver = sample()
    with ScriptedLineDevice(fd, {b"SEND 1\r": None}) as device, pytest.raises(NoResponse):
        driver.poll(port)
    assert device.requests == [b"SEND 1\r"] and driver.errors == {"no_response": 1}


def test_stale_bytes_before_the_request_are_discarded(pty: Any) -> None:
    port, fd = pty
    _, driver = sample()
    os.write(fd, b"RH= 99.9 %RH T= 99.9 'C\r\n")  # a late reply to an earlier poll
    time.sleep(0.05)
    with ScriptedLineDevice(fd, {b"SEND 1\r": VAISALA_REPLY}):
        assert driver.poll(port)[0].value == pytest.approx(45.2)


def test_adapter_echo_is_read_back_before_the_reply(pty: Any) -> None:
    port, fd = pty
    options = dict(request="SEND {address}\r", reply=r"RH= (?P<rh>[0-9.]+) %RH.*")
    with ScriptedLineDevice(fd, {b"SEND 1\r": VAISALA_REPLY}, echo=True):
        assert make(1, echo=True, **options).poll(port)[0].value == pytest.approx(45.2)
        unaware = make(1, **options)  # forgets the echo: the line starts with the request
        with pytest.raises(LineError) as info:
            unaware.poll(port)
    assert info.value.kind == "no_match"


def test_overlong_reply_is_too_long(pty: Any) -> None:
    port, fd = pty
    driver = make(1, request="SEND {address}\r", reply="(?P<a>.*)", max_length=16)
    with ScriptedLineDevice(fd, {b"SEND 1\r": b"+1" * 20 + b"\r\n"}):
        with pytest.raises(LineError) as info:
            driver.poll(port)
    assert info.value.kind == "too_long" and len(info.value.data) == 16


def test_listen_mode_on_a_pty_with_a_streaming_device(pty: Any) -> None:
    port, fd = pty
    driver = make(**LEVEL)
    with ScriptedLineDevice(fd, stream=b"+0012.345 m\r\n", period=0.02):
        values = [driver.poll(port)[0] for _ in range(3)]
    assert [(v.value, v.quality) for v in values] == [(pytest.approx(12.345), Quality.GOOD)] * 3
