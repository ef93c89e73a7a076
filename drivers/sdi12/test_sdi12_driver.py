"""The SDI-12 driver against a scripted sensor behind a real pseudo-terminal pair."""

from __future__ import annotations

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
from daq.testing_serial import ScriptedSDI12Sensor, pty_pair
from daq_drivers.sdi12 import SDI12Driver

NAMES = ["level", "temperature", "battery"]


def make(command: str = "M", names: list[str] = NAMES, address: int | str = 0,
         options: dict[str, Any] | None = None, **extra: Any) -> SDI12Driver:
    ctx = Ctx()
    checked = SDI12Driver.options_schema.check(
        {"command": command, "values": [{"name": n, "unit": "u"} for n in names],
         **(options or {}), **extra}, "options", None, ctx)
    assert ctx.problems == []
    return SDI12Driver("probe", address, checked)


@pytest.fixture
def pty() -> Iterator[tuple[serial.Serial, int]]:
    with pty_pair(timeout=0.3) as pair:
        yield pair


def test_sample_config_passes_the_schema_and_builds_a_driver() -> None:
    entry = load_yaml((Path(__file__).parent / "sample.yaml").read_text())
    ctx = Ctx()
    options = SDI12Driver.options_schema.check(entry["options"], "options", None, ctx)
    assert ctx.problems == []
    driver = SDI12Driver("sample", entry["address"], options)
    assert entry["driver"] == "sdi12"
    assert [c.name for c in driver.channels] == ["level", "water_temperature"]
    assert driver.command.crc


def test_driver_is_found_through_its_entry_point() -> None:
    found, _ = discover()
    assert found["sdi12"].__name__ == "SDI12Driver"
    assert found["sdi12"].link_kind == "serial"


def test_m_measurement_waits_for_the_service_request_and_reads_values(pty: Any) -> None:
    port, fd = pty
    with ScriptedSDI12Sensor(fd, "0", values=[12.345, 18.25, -0.5],
                             announce_seconds=2, ready_after=0.05) as sensor:
        values = make().poll(port)
    assert [v.channel for v in values] == NAMES
    assert [v.value for v in values] == pytest.approx([12.345, 18.25, -0.5], abs=1e-9)
    assert all(v.quality is Quality.GOOD for v in values)
    assert values[0].raw == {"text": "+12.345"}
    assert sensor.commands == ["0M!", "0D0!"]
    assert port.timeout == 0.3  # the bus's timeout is left as it was


def test_values_spread_over_several_d_replies_are_all_collected(pty: Any) -> None:
    port, fd = pty
    vals = [1000.001 * (i + 1) for i in range(9)]  # 9 x "+1000.001" ≈ 81 chars > 35
    names = [f"v{i}" for i in range(9)]
    with ScriptedSDI12Sensor(fd, "3", values=vals, announce_seconds=0) as sensor:
        values = make("M", names, address=3).poll(port)
    assert [v.value for v in values] == pytest.approx(vals, abs=1e-9)
    assert sensor.commands == ["3M!", "3D0!", "3D1!", "3D2!"]


def test_mc_measurement_checks_the_crc_of_every_data_reply(pty: Any) -> None:
    port, fd = pty
    with ScriptedSDI12Sensor(fd, "0", values=[3.14, 2.718, 1.414]) as sensor:
        values = make("MC").poll(port)
        assert [v.value for v in values] == pytest.approx([3.14, 2.718, 1.414])
        sensor.garble_once("D0", "flip")
        driver = make("MC")
        with pytest.raises(ProtocolError) as info:
            driver.poll(port)
        assert info.value.data.startswith(b"0+3.14")
        assert info.value.device == "probe"
        assert driver.errors["protocol_error"] == 1
        assert [v.value for v in driver.poll(port)] == pytest.approx([3.14, 2.718, 1.414])


def test_concurrent_measurement_waits_ttt_and_reads_up_to_75_chars_a_reply(pty: Any) -> None:
    port, fd = pty
    vals = [-123.4567 - i for i in range(12)]  # 12 x 9 chars = 108 > 75: two D replies
    names = [f"c{i}" for i in range(12)]
    with ScriptedSDI12Sensor(fd, "b", values=vals, decimals=4,
                             announce_seconds=1) as sensor:
        values = make("CC", names, address="b").poll(port)
    assert [v.value for v in values] == pytest.approx(vals, abs=1e-9)
    assert sensor.commands == ["bCC!", "bD0!", "bD1!"]


def test_additional_measurement_command_reads_its_own_values(pty: Any) -> None:
    port, fd = pty
    with ScriptedSDI12Sensor(fd, "0", values=[1.0, 2.0, 3.0],
                             values_by_command={"M2": [7.5, 8.5, 9.5]}) as sensor:
        values = make("MC2").poll(port)
    assert [v.value for v in values] == pytest.approx([7.5, 8.5, 9.5])
    assert sensor.commands[0] == "0MC2!"


@pytest.mark.parametrize("command", ["R0", "RC3"])
def test_continuous_measurement_values_come_in_the_reply_itself(pty: Any, command: str) -> None:
    port, fd = pty
    with ScriptedSDI12Sensor(fd, "0", values=[0.25, 14.0, 12.6]) as sensor:
        values = make(command).poll(port)
    assert [v.value for v in values] == pytest.approx([0.25, 14.0, 12.6])
    assert sensor.commands == [f"0{command}!"]


def test_sensor_that_skips_its_service_request_is_read_after_ttt(pty: Any) -> None:
    """v1.4 4.4.6: without a service request the data are read once ttt has passed."""
    port, fd = pty
    with ScriptedSDI12Sensor(fd, "0", values=[5.0, 6.0, 7.0], announce_seconds=1,
                             skip_service_request=True) as sensor:
        values = make(service_request_margin=0.1).poll(port)
    assert [v.value for v in values] == pytest.approx([5.0, 6.0, 7.0])
    assert sensor.commands == ["0M!", "0D0!"]


def test_silent_sensor_raises_no_response_and_is_counted(pty: Any) -> None:
    port, fd = pty
    driver = make()
    with ScriptedSDI12Sensor(fd, "0", values=[1.0]) as sensor:
        sensor.silent = True
        for _ in range(2):
            with pytest.raises(NoResponse):
                driver.poll(port)
    assert driver.errors["no_response"] == 2


def test_sensor_at_another_address_gives_no_response(pty: Any) -> None:
    port, fd = pty
    with ScriptedSDI12Sensor(fd, "5", values=[1.0]), pytest.raises(NoResponse):
        make(address=0).poll(port)


@pytest.mark.parametrize("mode", ["noise", "truncate", "wrong_address"])
def test_garbled_replies_raise_protocol_error_and_the_next_poll_works(pty: Any,
                                                                      mode: str) -> None:
    port, fd = pty
    driver = make()
    with ScriptedSDI12Sensor(fd, "0", values=[1.0, 2.0, 3.0]) as sensor:
        sensor.garble_once("M", mode)
        with pytest.raises(ProtocolError) as info:
            driver.poll(port)
        assert info.value.data
        assert [v.value for v in driver.poll(port)] == pytest.approx([1.0, 2.0, 3.0])
    assert driver.errors["protocol_error"] == 1


def test_sleeping_sensor_needs_the_break(pty: Any) -> None:
    """With a break before every command the sensor wakes; without one it ignores us."""
    port, fd = pty
    with ScriptedSDI12Sensor(fd, "0", values=[1.0, 2.0, 3.0], require_break=True) as sensor:
        values = make().poll(port)
        assert [v.value for v in values] == pytest.approx([1.0, 2.0, 3.0])
        assert sensor.breaks == 2 and sensor.ignored == []
        time.sleep(0.15)  # > 100 ms of marking: the sensor falls asleep
        with pytest.raises(NoResponse):
            make(options={"break": False}).poll(port)
        assert sensor.ignored == ["0M!"]


def test_values_missing_from_the_reply_are_gap_records(pty: Any) -> None:
    port, fd = pty
    with ScriptedSDI12Sensor(fd, "0", values=[4.5]):
        values = make().poll(port)
    assert values[0].value == pytest.approx(4.5) and values[0].quality is Quality.GOOD
    assert [(v.value, v.quality, v.flags) for v in values[1:]] == [
        (None, Quality.MISSING, ("not_returned",))] * 2


def test_error_codes_and_out_of_range_values_are_flagged_bad(pty: Any) -> None:
    port, fd = pty
    ctx = Ctx()
    options = SDI12Driver.options_schema.check({
        "values": [{"name": "a", "valid_max": 10}, {"name": "b"}, {"name": "c"}],
        "error_values": [-9999]}, "options", None, ctx)
    driver = SDI12Driver("probe", 0, options)
    with ScriptedSDI12Sensor(fd, "0", values=[12.0, "-9999", "+1.5"]):
        a, b, c = driver.poll(port)
    assert (a.value, a.quality, a.flags) == (12.0, Quality.BAD, ("out_of_range",))
    assert (b.value, b.quality, b.flags) == (-9999.0, Quality.BAD, ("error_code",))
    assert (c.value, c.quality) == (1.5, Quality.GOOD)


def test_identify_acknowledge_and_address_query(pty: Any) -> None:
    port, fd = pty
    driver = make(address="7")
    with ScriptedSDI12Sensor(fd, "7", identification="14DAMWATCHLEVEL1101SN4711"):
        ident = driver.identify(port)
        driver.acknowledge(port)
        assert driver.query_address(port) == "7"
    assert (ident.version, ident.vendor, ident.model, ident.firmware, ident.extra) == (
        "14", "DAMWATCH", "LEVEL1", "101", "SN4711")


@pytest.mark.parametrize("options,where", [
    ({"command": "X", "values": [{"name": "a"}]}, "options.command"),
    ({"values": []}, "options.values"),
    ({"values": [{"name": "a"}, {"name": "a"}]}, "options.values"),
    ({"values": [{"name": "a"}], "break_duration": "5ms"}, "options.break_duration"),
    ({"values": [{"name": "a"}], "brake": True}, "options.brake"),
])
def test_bad_options_are_reported_with_their_path(options: dict[str, Any], where: str) -> None:
    ctx = Ctx()
    SDI12Driver.options_schema.check(options, "options", None, ctx)
    assert [p.path for p in ctx.problems] == [where]


def test_bad_address_is_a_config_error() -> None:
    ctx = Ctx()
    options = SDI12Driver.options_schema.check({"values": [{"name": "a"}]}, "options", None, ctx)
    with pytest.raises(ConfigError) as info:
        SDI12Driver("probe", 12, options)
    assert info.value.problems[0].path == "address"
