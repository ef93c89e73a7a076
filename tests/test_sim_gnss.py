"""simgnss://: the simulated RTK rover, read through pyserial by the ``nmea`` driver."""

from __future__ import annotations

from typing import Any

import pytest
import serial

import daq.sim  # noqa: F401  registers simgnss://
from daq.gnss.streams import nmea
from daq.gnss.streams.stream import GnssStream
from daq.model import Quality
from daq.schema import Ctx
from daq.sim.rover import Rover
from daq_drivers.nmea import NmeaDriver

T0 = 1_790_000_000  # a frozen UTC second
REF = {"lat": 36.1, "lon": 117.2, "height": 60.0}
URL = f"simgnss://pier?seed=4&lat=36.1&lon=117.2&height=60&time={T0}.5"


def driver(**options: Any) -> NmeaDriver:
    ctx = Ctx()
    checked = NmeaDriver.options_schema.check({"reference": REF, **options}, "options",
                                              None, ctx)
    assert ctx.problems == []
    return NmeaDriver("rover", None, checked)


def test_the_current_epoch_is_there_when_the_port_opens_and_decodes_rtk_fixed() -> None:
    port = serial.serial_for_url(URL)
    drv = driver()
    values = {v.channel: v for v in drv.poll(port)}
    assert values["fix_quality"].value == 4 and values["latitude"].quality is Quality.GOOD
    assert drv.gga is not None and drv.gga.time == T0 % 86400
    truth = Rover(4, (36.1, 117.2, 60.0)).truth(T0)
    for axis, true_m, sigma_mm in (("east", truth[0], 3), ("north", truth[1], 3),
                                   ("up", truth[2], 6)):
        assert values[axis].value == pytest.approx(true_m * 1000, abs=5 * sigma_mm + 0.1)
    assert drv.stream.decode_errors == {} and drv.stream.framer.rejected == {}
    assert port.in_waiting == 0  # one epoch a second, nothing more


def test_one_epoch_per_second_of_the_clock_and_a_bounded_backlog() -> None:
    port = serial.serial_for_url(URL)
    now = [T0 + 0.5]
    port.clock = lambda: now[0]
    stream = GnssStream()
    stream.feed(port.read(port.in_waiting))
    now[0] += 3.0
    ggas = [r for _f, r in stream.feed(port.read(port.in_waiting)) if isinstance(r, nmea.Gga)]
    assert [g.time for g in ggas] == [(T0 + k) % 86400 for k in (1, 2, 3)]
    now[0] += 3600.0  # a reader away for an hour gets the last minute, as a UART buffer
    ggas = [r for _f, r in stream.feed(port.read(port.in_waiting)) if isinstance(r, nmea.Gga)]
    assert len(ggas) == 60 and ggas[-1].time == (T0 + 3603) % 86400


def test_the_same_seed_and_second_give_the_same_bytes_and_floats_are_flagged() -> None:
    a, b = Rover(9, float_rate=0.5), Rover(9, float_rate=0.5)
    assert a.nmea(T0) == b.nmea(T0) and a.nmea(T0) != Rover(10).nmea(T0)
    drv = driver()
    qualities = set()
    for t in range(T0, T0 + 40):
        values = {v.channel: v for v in drv.feed(a.nmea(t))}
        qualities.add((values["fix_quality"].value, values["latitude"].quality))
    assert qualities == {(4.0, Quality.GOOD), (5.0, Quality.SUSPECT)}
