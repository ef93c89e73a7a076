"""Configuration: every problem at once, with dotted path, line and a hint; exit 2."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from daq import config
from daq.errors import ConfigError
from daq.schema import parse_duration

from .conftest import REPO

GOOD = textwrap.dedent("""\
    site: s1
    rtu: r1
    mqtt:
      url: mqtt://broker.example:1883
      username: rtu1
      password: {env: DAQ_MQTT_PASSWORD}
      allow_plain_password: true
    buses:
      gw:
        protocol: modbus_tcp
        url: 192.0.2.10:502
        devices:
          lvl:
            driver: modbus
            address: 1
            interval: 10min
            options:
              registers:
                - {name: level, address: 0, type: float32, unit: m}
    """)

BAD = textwrap.dedent("""\
    site: s1
    rtu: r1
    mqtt:
      url: http://broker:1883
      batch_sise: 10
    outbox:
      max_days: -1
    buses:
      rs485:
        protocol: modbus_rtu
        url: /dev/ttyUSB0
        baudrate: 9601
        devices:
          lvl:
            driver: modbuss
            address: 1
            interval: 1s
          p1:
            driver: modbus
            address: 300
            interval: fast
            options:
              registers:
                - {name: f, address: 0, type: float128}
    """)


def problems(text: str) -> dict[str, config.ConfigProblem]:
    with pytest.raises(ConfigError) as info:
        config.loads(text, source="t.yaml")
    return {p.path: p for p in info.value.problems}


def test_good_config_builds_typed_objects() -> None:
    """A valid file gives immutable objects with durations in seconds and defaults."""
    cfg = config.loads(GOOD)
    assert cfg.mqtt is not None and cfg.mqtt.host == "broker.example" and cfg.mqtt.port == 1883
    assert cfg.mqtt.password.env == "DAQ_MQTT_PASSWORD"
    dev = cfg.devices[0]
    assert dev.interval == 600.0 and dev.address == 1 and dev.bus == "gw"
    with pytest.raises(AttributeError):
        dev.interval = 1  # type: ignore[misc]


def test_every_problem_is_reported_with_path_line_and_hint() -> None:
    """Seven mistakes in one file: all seven listed, each with its path and line."""
    got = problems(BAD)
    assert set(got) >= {"mqtt.url", "mqtt.batch_sise", "outbox.max_days",
                        "buses.rs485.baudrate", "buses.rs485.devices.lvl.driver",
                        "buses.rs485.devices.p1.address", "buses.rs485.devices.p1.interval"}
    assert got["mqtt.batch_sise"].hint == "did you mean 'batch_size'?"
    assert got["mqtt.batch_sise"].line == 5
    assert got["buses.rs485.devices.lvl.driver"].hint == "did you mean 'modbus'?"
    assert got["buses.rs485.devices.lvl.driver"].line == 15
    assert got["buses.rs485.baudrate"].line == 12
    assert any(p.startswith("buses.rs485.devices.p1.options") for p in got) or \
        "buses.rs485.devices.p1.interval" in got


def test_password_in_url_is_refused_and_secret_never_shown(monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    """A password in the URL would be logged: refused. A Secret's repr shows no value."""
    got = problems(GOOD.replace("mqtt://broker.example", "mqtt://u:hunter2@broker.example"))
    assert "mqtt.url" in got and "hunter2" not in str(got["mqtt.url"])
    monkeypatch.setenv("DAQ_MQTT_PASSWORD", "s3cret")
    cfg = config.loads(GOOD)
    assert cfg.mqtt is not None and cfg.mqtt.password.read() == "s3cret"
    assert "s3cret" not in repr(cfg)


def test_yaml_syntax_error_names_the_line() -> None:
    got = problems("site: a\nrtu: [\n")
    assert next(iter(got.values())).line is not None


def test_quarantine_runs_the_rest() -> None:
    """daq run leaves out a device with a bad section and keeps the others."""
    text = GOOD.replace("      lvl:", "      broken: {driver: nosuchdriver, address: 2,"
                        " interval: 1s}\n      lvl:")
    with pytest.raises(ConfigError):
        config.loads(text)
    cfg = config.loads(text, quarantine=True)
    assert [d.name for d in cfg.devices] == ["lvl"]
    assert [p.path for p in cfg.quarantined] == ["buses.gw.devices.broken.driver"]


@pytest.mark.parametrize("text,seconds", [("500ms", 0.5), ("1s", 1), ("10min", 600),
                                          ("4h", 14400), (2, 2.0), ("1.5 s", 1.5)])
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_daq_check_exits_2_listing_all_problems_without_traceback(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    res = subprocess.run([sys.executable, "-m", "daq", "check", "--config", str(path)],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert res.returncode == 2
    assert "Traceback" not in res.stderr + res.stdout
    for where in ("mqtt.batch_sise (line 5)", "buses.rs485.devices.lvl.driver (line 15)",
                  "outbox.max_days", "buses.rs485.baudrate"):
        assert where in res.stderr, where
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    ok = subprocess.run([sys.executable, "-m", "daq", "check", "--config", str(good)],
                        capture_output=True, text=True, cwd=REPO, timeout=60)
    assert ok.returncode == 0, ok.stderr
    missing = subprocess.run([sys.executable, "-m", "daq", "check", "--config",
                              str(tmp_path / "nope.yaml")], capture_output=True, text=True,
                             cwd=REPO, timeout=60)
    assert missing.returncode == 2 and "cannot read file" in missing.stderr


def test_duplicate_keys_are_reported_not_silently_merged() -> None:
    """YAML keeps the last of two equal keys; a configuration reports both places."""
    got = problems(GOOD.replace("      lvl:", "      lvl:\n        interval: 1s", 1)
                   .replace("  username: rtu1", "  username: rtu1\n  username: rtu2"))
    assert "mqtt.username" in got and "first given on line 5" in got["mqtt.username"].message
    assert "buses.gw.devices.lvl.interval" in got
