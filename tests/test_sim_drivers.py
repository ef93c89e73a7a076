"""Every driver, configured from daq/sim/demo-devices.yaml, polled through pymodbus's
ModbusSerialClient on sim://, returns the reservoir model's truth."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymodbus.client import ModbusSerialClient

import daq.sim
from daq.driver import Driver, discover
from daq.errors import NoResponse
from daq.model import Quality
from daq.schema import load_yaml
from daq.sim import Reservoir
from daq.sim.reservoir import WEIRS, piezometer, thermistor_ohm
from daq.testing import build_driver

DEMO = Path(daq.sim.__file__).parent / "demo-devices.yaml"
SEED, T0 = 11, 1_790_000_000.7
F32 = 1.2e-7  # relative precision of float32


@pytest.fixture(scope="module")
def demo() -> dict[str, Driver]:
    doc = load_yaml(DEMO.read_text())
    drivers, failed = discover()
    assert not [f for f in failed if f.name in ("modbus", "vw_logger", "level_gauge",
                                                "rain_gauge")]
    return {name: build_driver(drivers[dev["driver"]], dev["options"], dev["address"], name)
            for name, dev in doc.items()}


@pytest.fixture
def client() -> Iterator[Any]:
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    c = ModbusSerialClient(f"sim://demo?seed={SEED}&time={T0}", timeout=0.1, retries=0)
    assert c.connect()
    yield c
    c.close()


def _poll(drv: Driver, client: Any) -> dict[str, Any]:
    return {v.channel: v for v in drv.poll(client)}


def test_radar_level_equals_the_model_level(demo, client):
    out = _poll(demo["level"], client)
    truth = Reservoir(SEED).truth(T0)
    assert out["level"].value == pytest.approx(truth.level, abs=2e-6)
    assert abs(out["level"].value - 81.99) < 0.2


def test_vw_logger_frequencies_and_thermistors_equal_the_model(demo, client):
    truth = Reservoir(SEED).truth(T0)
    loggers = {"vw_a": _poll(demo["vw_a"], client), "vw_b": _poll(demo["vw_b"], client)}
    for n in range(1, 18):
        out, ch = (loggers["vw_a"], n) if n <= 9 else (loggers["vw_b"], n - 9)
        p = truth.piezometers[f"P{n:02d}"]
        assert out[f"ch{ch:02d}.freq"].value == pytest.approx(p.freq_hz, rel=2 * F32)
        assert out[f"ch{ch:02d}.therm"].value == pytest.approx(p.resistance_ohm, rel=F32)
        assert out[f"ch{ch:02d}.freq"].quality is Quality.GOOD


def test_piezometric_elevation_recovered_from_the_frequency_within_a_millimetre(demo, client):
    """The documented calibration turns the served Hz back into the model's elevation."""
    truth = Reservoir(SEED).truth(T0)
    out = _poll(demo["vw_b"], client)
    for ch, n in enumerate(range(10, 18), start=1):
        p, pz = piezometer(n), truth.piezometers[f"P{n:02d}"]
        digits = out[f"ch{ch:02d}.freq"].value ** 2 / 1000.0
        head = p.cal.pressure(digits) * 1000.0 / (1000.0 * 9.80665)
        assert p.tip + head == pytest.approx(pz.elevation, abs=0.001)


def test_thermistor_model_is_the_geokon_3k_curve():
    assert thermistor_ohm(25.0) == pytest.approx(3000.0, rel=1e-3)


def test_weir_heads_equal_the_model_as_current_and_as_millimetres(demo, client):
    truth = Reservoir(SEED).truth(T0)
    analog, direct = _poll(demo["weirs"], client), _poll(demo["weir_mm"], client)
    for w in WEIRS:
        assert analog[f"{w}.head"].value == pytest.approx(truth.weirs[w], abs=0.016)  # ½ µA
        assert direct[f"{w}.head_mm"].value == pytest.approx(truth.weirs[w], abs=1e-4)


def test_rain_gauge_counts_the_model_tips_between_polls(demo, client):
    drv = demo["rain"]
    res = Reservoir(SEED)
    sim = daq.sim.line("demo")
    assert sim is not None
    # find a rainy hour: the model rains half of every 6 h
    t1 = next(T0 + h * 3600 for h in range(6)
              if res.truth(T0 + h * 3600 + 3600).tips - res.truth(T0 + h * 3600).tips > 5)
    sim.clock = lambda: t1
    _poll(drv, client)
    sim.clock = lambda: t1 + 3600
    out = _poll(drv, client)
    expected = res.truth(t1 + 3600).tips - res.truth(t1).tips
    assert out["tips"].value == expected
    assert out["rain_interval"].value == pytest.approx(expected * 0.2)


def test_barometer_through_the_generic_driver(demo, client):
    truth = Reservoir(SEED).truth(T0)
    out = _poll(demo["baro"], client)
    assert out["pressure"].value == pytest.approx(truth.pressure_hpa, rel=F32)
    assert out["air_temperature"].value == pytest.approx(truth.air_temperature, abs=1e-5)


def test_live_clock_readings_match_the_truth_of_the_served_second(demo):
    """Without a frozen time the line records which 1 Hz sample it served."""
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    c = ModbusSerialClient(f"sim://live?seed={SEED}", timeout=0.1, retries=0)
    assert c.connect()
    try:
        out = _poll(demo["level"], c)
    finally:
        c.close()
    sim = daq.sim.line("live")
    assert sim is not None
    unit, t_served = sim.served[-1]
    assert unit == 1 and t_served == math.floor(t_served)
    assert out["level"].value == pytest.approx(Reservoir(SEED).truth(t_served).level, abs=2e-6)


def test_dropouts_reach_the_driver_as_no_response(demo):
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    c = ModbusSerialClient("sim://drop?dropout=1", timeout=0.05, retries=0)
    assert c.connect()
    try:
        for name in ("level", "vw_a", "rain"):
            with pytest.raises(NoResponse):
                demo[name].poll(c)
    finally:
        c.close()


def test_model_is_a_pure_function_of_seed_and_time():
    a, b = Reservoir(1).truth(T0), Reservoir(1).truth(T0 + 0.2)
    assert a == b  # the same 1 Hz sample
    assert Reservoir(2).truth(T0).level != a.level


def test_level_noise_is_about_a_millimetre():
    res = Reservoir(3)
    noise = [res.noise(int(T0) + i) for i in range(3000)]
    mean = sum(noise) / len(noise)
    sd = math.sqrt(sum((x - mean) ** 2 for x in noise) / len(noise))
    assert abs(mean) < 1e-4 and 0.0009 < sd < 0.0011


def test_piezometers_follow_the_level_with_their_lag_and_ratio():
    res = Reservoir(4)
    truth = res.truth(T0)
    for n in (1, 9, 17):
        p = piezometer(n)
        expected = 58.0 + p.ratio * (res.level_smooth(math.floor(T0) - p.lag) - 58.0)
        assert truth.piezometers[p.id].elevation == pytest.approx(expected, abs=1e-9)
        assert p.cal.digits(p.cal.pressure(7000.0)) == pytest.approx(7000.0, abs=1e-6)


def test_demo_devices_pass_the_daemon_config_check():
    """demo-devices.yaml pasted under a sim:// bus is a valid daemon configuration."""
    from daq.config import loads

    devices = "\n".join("      " + line for line in DEMO.read_text().splitlines())
    cfg = loads("site: demo\nrtu: rtu1\nbuses:\n  rs485_sim:\n    protocol: modbus_rtu\n"
                "    url: sim://reservoir?seed=1\n    devices:\n" + devices + "\n")
    (bus,) = cfg.buses
    assert sorted(d.address or 0 for d in bus.devices) == [1, 2, 3, 4, 4, 5, 6]
