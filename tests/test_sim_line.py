"""The sim:// line: RTU framing, the pyserial handler, dropouts and spikes."""

from __future__ import annotations

import logging

import pytest
import serial
from pymodbus.client import ModbusSerialClient

import daq.sim
from daq.errors import NoResponse
from daq.modbus import decode, read_registers
from daq.sim import Reservoir, rtu
from daq.sim.reservoir import SPIKES

T0 = 1_790_000_000.25  # a frozen model time (epoch s)


def _client(url: str, timeout: float = 0.05) -> ModbusSerialClient:
    """The reply is in the buffer as soon as the request is written: short timeouts do."""
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    client = ModbusSerialClient(url, timeout=timeout, retries=0)
    assert client.connect()
    return client


def test_crc16_matches_the_modbus_reference_vector():
    # "01 03 00 00 00 01" is sent as 84 0A on the wire (Modbus over serial line, §6.2.2)
    assert rtu.read_request(1, 3, 0, 1).hex() == "010300000001840a"
    assert rtu.check_crc(bytes.fromhex("010300000001840a"))


def test_a_known_unit_answers_a_read_with_its_registers():
    port = serial.serial_for_url(f"sim://frame?time={T0}", timeout=0.1)
    port.write(rtu.read_request(6, 4, 0, 2))
    reply = port.read(9)
    assert reply[:3] == bytes((6, 4, 4)) and rtu.check_crc(reply)
    hpa = decode([int.from_bytes(reply[3:5], "big"), int.from_bytes(reply[5:7], "big")],
                 "float32")
    assert hpa == pytest.approx(Reservoir(0).truth(T0).pressure_hpa, rel=1e-7)


@pytest.mark.parametrize(("request_frame", "exception"), [
    (rtu.read_request(1, 4, 1, 2), 2),      # beyond the radar's two input registers
    (rtu.read_request(2, 3, 0, 126), 3),    # more than 125 registers
    (rtu.frame(bytes((5, 6, 0, 0, 0, 1))), 1),  # write single register: not supported
])
def test_bad_requests_get_exception_replies(request_frame, exception):
    port = serial.serial_for_url("sim://exc", timeout=0.1)
    port.write(request_frame)
    reply = port.read(5)
    assert reply[1] == request_frame[1] | 0x80 and reply[2] == exception
    assert rtu.check_crc(reply)


@pytest.mark.parametrize("request_frame", [
    rtu.read_request(9, 3, 0, 1),                       # nobody is unit 9
    rtu.read_request(0, 3, 0, 1),                       # broadcast
    rtu.read_request(1, 4, 0, 2)[:-1] + b"\x00",        # CRC damaged on the wire
])
def test_silence_for_unknown_units_broadcasts_and_bad_crc(request_frame):
    port = serial.serial_for_url("sim://silent", timeout=0.05)
    port.write(request_frame)
    assert port.read(5) == b""


def test_a_request_written_in_pieces_is_still_answered():
    port = serial.serial_for_url("sim://pieces", timeout=0.1)
    frame = rtu.read_request(1, 4, 0, 2)
    port.write(frame[:3])
    port.write(frame[3:])
    assert len(port.read(9)) == 9


def test_units_parameter_limits_who_answers():
    client = _client("sim://few?units=5")
    try:
        assert len(read_registers(client, "input", 0, 1, 5)) == 1
        with pytest.raises(NoResponse):
            read_registers(client, "input", 0, 2, 1)
    finally:
        client.close()


@pytest.mark.parametrize("url", ["sim://x?sed=1", "sim://x?dropout=2", "sim://x?seed=abc",
                                 "sim://?seed=1", "sim://x?units=1,9"])
def test_bad_urls_are_refused_with_serial_exception(url):
    with pytest.raises(serial.SerialException):
        serial.serial_for_url(url)


def test_full_dropout_means_no_response():
    client = _client("sim://dead?dropout=1")
    try:
        with pytest.raises(NoResponse):
            read_registers(client, "input", 0, 2, 6)
    finally:
        client.close()


def test_partial_dropout_rate_is_close_to_the_asked_probability():
    client = _client("sim://lossy?seed=4&dropout=0.25", timeout=0.02)
    lost = 0
    try:
        for _ in range(200):
            try:
                read_registers(client, "input", 0, 2, 6)
            except NoResponse:
                lost += 1
    finally:
        client.close()
    sim = daq.sim.line("lossy")
    assert sim is not None and sim.dropouts == lost
    assert 0.15 < lost / 200 < 0.35


def test_spikes_are_visible_and_the_truth_stays_clean():
    client = _client(f"sim://spiky?seed=2&spikes=1&time={T0}")
    try:
        distance = decode(read_registers(client, "input", 0, 2, 1), "float32")
        freq = decode(read_registers(client, "holding", 0, 2, 2), "float32")
    finally:
        client.close()
    truth = Reservoir(2).truth(T0)
    assert truth.distance - distance == pytest.approx(SPIKES["level"], abs=1e-5)
    assert freq - truth.piezometers["P01"].freq_hz == pytest.approx(25.0, abs=1e-3)


def test_occasional_spikes_follow_the_documented_per_second_draw():
    res = Reservoir(5)
    hits = [t for t in range(1000) if res.spike("level", T0 + t, 0.02)]
    assert 5 <= len(hits) <= 40
    assert hits == [t for t in range(1000) if Reservoir(5).spike("level", T0 + t, 0.02)]
