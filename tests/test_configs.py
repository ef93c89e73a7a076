"""The shipped configurations: both load and pass `daq check`, and the demo's sensors are
the simulator's truth.

The truth test runs the whole acquisition chain in-process without MQTT: the real drivers
of configs/demo.yaml poll the real ``sim://`` line (its clock frozen with ``&time=T``, no
dropouts or spikes), and the configured sensors turn their channels into engineering
values, which must equal ``Reservoir(seed).truth(T)``.
"""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from daq import config
from daq.bus import open_link
from daq.config import Config, instantiate
from daq.model import Quality, Reading
from daq.sensors import SensorSet
from daq.sim import Reservoir

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "configs" / "demo.yaml"
SITE = REPO / "configs" / "site-example.yaml"
T0 = 1_795_000_000.0  # a fixed UTC second (2026-11-18 11:06:40) for the frozen simulator clock


@pytest.mark.parametrize("path", [DEMO, SITE], ids=["demo", "site-example"])
def test_config_loads(path: Path) -> None:
    """Each shipped configuration passes the loader with devices and sensors, nothing
    quarantined."""
    cfg = config.load(path)
    assert cfg.devices and cfg.sensors
    assert cfg.quarantined == ()


@pytest.mark.parametrize("path", [DEMO, SITE], ids=["demo", "site-example"])
def test_daq_check_exits_0(path: Path, tmp_path: Path) -> None:
    """`daq check --config FILE` accepts each shipped configuration (exit 0) and says OK,
    once the CA, certificate and key files it names exist."""
    text = path.read_text()
    for name in ("platform-ca.crt", "rtu-01.crt", "rtu-01.key"):
        (tmp_path / name).write_text("x")
        text = text.replace(f"/etc/daq/tls/{name}", str(tmp_path / name))
    (tmp_path / path.name).write_text(text)
    proc = subprocess.run([sys.executable, "-m", "daq", "check", "--config",
                           str(tmp_path / path.name)],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert ": OK" in proc.stdout


def test_daq_check_names_a_missing_tls_file() -> None:
    """The site example names /etc/daq/tls/... files this machine lacks: `daq check` lists
    each as a problem (exit 2), where `daq run` would start and retry the broker."""
    proc = subprocess.run([sys.executable, "-m", "daq", "check", "--config", str(SITE)],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 2
    for key in ("mqtt.tls.ca_file", "mqtt.tls.cert_file", "mqtt.tls.key_file"):
        assert key in proc.stderr and "does not exist or cannot be read" in proc.stderr


def test_demo_matches_the_documented_setup() -> None:
    """The demo is site shandong-demo / rtu-01 on one sim:// bus carrying all six simulated
    units; level at 1 s, piezometers at 10 s, weirs at 1 min; no relative state_dir."""
    cfg = config.load(DEMO)
    assert (cfg.site, cfg.rtu) == ("shandong-demo", "rtu-01")
    assert Path(cfg.state_dir).is_absolute()
    (bus,) = cfg.buses
    assert bus.protocol == "modbus_rtu" and bus.url.startswith("sim://reservoir?")
    assert {d.address for d in bus.devices} == {1, 2, 3, 4, 5, 6}
    interval = {d.name: d.interval for d in bus.devices}
    assert interval["level"] == 1.0
    assert interval["vw_a"] == interval["vw_b"] == 10.0
    assert interval["weirs"] == 60.0


def test_site_example_is_a_secure_two_line_site() -> None:
    """The site example: 17 piezometers on two VW loggers at 9600 8N1 over by-id serial
    paths, TLS with CA and client certificate, the password from the environment."""
    cfg = config.load(SITE)
    assert cfg.mqtt is not None and cfg.mqtt.tls_enabled
    assert cfg.mqtt.tls.ca_file and cfg.mqtt.tls.cert_file and cfg.mqtt.tls.key_file
    assert cfg.mqtt.password.env == "DAQ_MQTT_PASSWORD" and cfg.mqtt.password.file is None
    for bus in cfg.buses:
        assert bus.url.startswith("/dev/serial/by-id/")
        assert (bus.baudrate, bus.bytesize, bus.parity, bus.stopbits) == (9600, 8, "N", 1)
    loggers = [d for d in cfg.devices if d.driver == "vw_logger"]
    assert len(loggers) == 2
    piezos = {k: v for k, v in cfg.sensors.items() if v["kind"] == "vw_piezometer"}
    assert len(piezos) == 17
    assert all(p["method"] == "polynomial" and "zero_reading" in p for p in piezos.values())
    assert {p["inputs"]["frequency"].split("/")[0] for p in piezos.values()} == \
        {d.name for d in loggers}
    kinds = [v["kind"] for v in cfg.sensors.values()]
    assert kinds.count("weir") == 3 and kinds.count("water_level") == 2
    assert kinds.count("rain") == 1 and kinds.count("barometer") == 1


# ---- the demo's sensors against the reservoir model ------------------------------------

def _frozen_url(cfg: Config, name: str) -> tuple[str, int]:
    """The demo bus URL as a private line with a frozen clock, no dropouts, no spikes."""
    (bus,) = cfg.buses
    seed = int(parse_qs(urlsplit(bus.url).query)["seed"][0])
    return f"sim://{name}?seed={seed}&time={T0:.0f}", seed


def _poll_all(cfg: Config, url: str, sensors: SensorSet, drivers: dict[str, Any],
              t: float) -> dict[str, Reading]:
    import daq.sim

    (bus,) = cfg.buses
    link = open_link(dataclasses.replace(bus, url=url))
    try:
        sim = daq.sim.line(urlsplit(url).netloc)
        assert sim is not None
        sim.clock = lambda: t
        out: dict[str, Reading] = {}
        ts = datetime.fromtimestamp(t, UTC)
        for dev in bus.devices:
            values = drivers[dev.name].poll(link)
            for r in sensors.process(dev.name, values, ts):
                out[r.channel] = r
        return out
    finally:
        link.close()


def test_every_demo_sensor_is_the_simulators_truth() -> None:
    """Polled through the real drivers and converted with the demo's sensors, every
    simulated sensor gives the model's truth: piezometric elevations within 0.1 mm,
    temperatures within 0.01 °C, level within 0.1 mm, weir heads within the 4-20 mA
    quantisation, flows by 1.4·H^2.5, rain = tips × 0.2 mm, barometer hPa/10."""
    cfg = config.load(DEMO)
    url, seed = _frozen_url(cfg, "cfgtruth")
    channels = {f"{d.name}/{c.name}" for d in cfg.devices
                for c in instantiate(d, cfg.drivers).channels}
    sensors = SensorSet.build(dict(cfg.sensors), channels)
    drivers = {d.name: instantiate(d, cfg.drivers) for d in cfg.devices}
    model = Reservoir(seed)
    first = _poll_all(cfg, url, sensors, drivers, T0)
    later = T0 + 6 * 3600.0  # six hours on: it rains half of every 6 h in the model
    second = _poll_all(cfg, url, sensors, drivers, later)
    checked: set[str] = set()

    def value(readings: dict[str, Reading], channel: str) -> float:
        r = readings[channel]
        assert r.quality is Quality.GOOD, (channel, r.quality, r.flags)
        assert r.value is not None and math.isfinite(r.value)
        assert r.calibration and r.calibration["id"]
        checked.add(r.sensor or "")
        return r.value

    for readings, t in ((first, T0), (second, later)):
        truth = model.truth(t)
        for pid, p in truth.piezometers.items():
            assert value(readings, f"{pid}.elevation") == pytest.approx(p.elevation, abs=1e-4)
            assert value(readings, f"{pid}.head") == pytest.approx(p.head, abs=1e-4)
            assert value(readings, f"{pid}.pressure") == pytest.approx(p.pressure_kpa,
                                                                       abs=1e-3)
            assert value(readings, f"{pid}.temperature") == pytest.approx(p.temperature_c,
                                                                          abs=0.01)
        assert value(readings, "LEVEL.level") == pytest.approx(truth.level, abs=1e-4)
        for wid, head_mm in truth.weirs.items():
            h = value(readings, f"{wid}.head")
            assert h == pytest.approx(head_mm / 1000.0, abs=0.0316e-3)  # 1 µA = 0.03125 mm
            assert value(readings, f"{wid}.flow") == pytest.approx(1.4 * h ** 2.5 * 1000.0,
                                                                   rel=1e-9)
        assert value(readings, "BARO.pressure") == pytest.approx(truth.pressure_hpa / 10.0,
                                                                 abs=1e-4)
    assert value(first, "RAIN.rainfall") == 0.0  # the first poll only takes the baseline
    tips = model.truth(later).tips - model.truth(T0).tips
    assert tips > 0
    assert value(second, "RAIN.rainfall") == pytest.approx(tips * 0.2, abs=1e-9)
    assert checked == set(cfg.sensors), "a demo sensor without a truth to compare with"
