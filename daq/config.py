"""The daemon's configuration: YAML in, immutable typed objects out.

Everything is checked before the first poll, and every problem is reported at once with
its dotted path, line and hint. Driver options are checked by the driver's own schema, so a
misspelt register option is caught here too. Secrets never live in the YAML: the MQTT
password and the TLS key passphrase come from a file path or an environment variable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from .driver import Driver, LoadFailure, discover
from .errors import ConfigError, ConfigProblem
from .gnss.gnss_config import GNSS
from .gnss.gnss_config import build as build_gnss
from .schema import Ctx, Field, MapOf, Schema, join

BUS_PROTOCOLS = ("modbus_rtu", "modbus_tcp", "serial")


# ---- typed, immutable result -------------------------------------------------------------

@dataclass(frozen=True)
class Secret:
    """Where a secret comes from; its value is read only when needed and never logged."""

    file: str | None = None
    env: str | None = None

    def read(self) -> str | None:
        if self.file:
            return Path(self.file).read_text(encoding="utf-8").strip()
        if self.env:
            return os.environ.get(self.env)
        return None

    def __repr__(self) -> str:  # never show a value, only where it comes from
        return f"Secret(file={self.file!r}, env={self.env!r})"


@dataclass(frozen=True)
class TlsConfig:
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    key_password: Secret = Secret()
    insecure: bool = False


@dataclass(frozen=True)
class MqttConfig:
    host: str
    port: int
    tls_enabled: bool
    prefix: str
    client_id: str
    username: str | None
    password: Secret
    tls: TlsConfig
    keepalive: float
    batch_size: int
    max_inflight: int
    reconnect_min: float
    reconnect_max: float


@dataclass(frozen=True)
class OutboxConfig:
    max_days: float
    max_mb: float | None
    commit_interval: float
    commit_batch: int


@dataclass(frozen=True)
class DeviceConfig:
    name: str
    bus: str
    driver: str
    address: int | None
    interval: float
    timeout: float | None
    lane: str
    options: Mapping[str, Any]
    backoff_max: float


@dataclass(frozen=True)
class BusConfig:
    name: str
    protocol: str
    url: str
    baudrate: int
    bytesize: int
    parity: str
    stopbits: int
    timeout: float
    retries: int
    devices: tuple[DeviceConfig, ...]


@dataclass(frozen=True)
class Config:
    site: str
    rtu: str
    state_dir: str
    mqtt: MqttConfig | None
    outbox: OutboxConfig
    buses: tuple[BusConfig, ...]
    sensors: Mapping[str, Any]
    log_level: str
    log_format: str
    source: str | None = None
    drivers: Mapping[str, type[Driver]] = field(default_factory=dict, repr=False)
    quarantined: tuple[ConfigProblem, ...] = ()
    gnss: Any = None  # daq.gnss.gnss_config.GnssConfig when a `gnss:` section is given

    @property
    def devices(self) -> list[DeviceConfig]:
        return [d for b in self.buses for d in b.devices]


# ---- schema -------------------------------------------------------------------------------

SECRET = Schema({
    "file": Field("str", doc="path of a file holding the secret"),
    "env": Field("str", doc="name of an environment variable holding the secret"),
})

TLS = Schema({
    "ca_file": Field("str"), "cert_file": Field("str"), "key_file": Field("str"),
    "key_password": Field(SECRET), "insecure": Field("bool", default=False),
})


def _check_mqtt(out: dict[str, Any], path: str, lines: Mapping[str, Any], ctx: Ctx) -> None:
    url = out.get("url")
    if url is not None:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            ctx.add(join(path, "url"), f"{url!r} is not an mqtt:// or mqtts:// URL",
                    lines.get("url"), "e.g. mqtt://broker.example:1883")
        if parts.password:
            ctx.add(join(path, "url"), "a password in the URL would be logged",
                    lines.get("url"), "use mqtt.password: {file: ...} or {env: ...}")
    if "password" in out and not out.get("username"):
        ctx.add(join(path, "password"), "a password needs a username", lines.get("password"))
    pw = out.get("password") or {}
    if "file" in pw and "env" in pw:
        ctx.add(join(path, "password"), "give either file or env, not both", lines.get("password"))


MQTT = Schema({
    "url": Field("str", default="mqtt://127.0.0.1:1883"),
    "prefix": Field("str", default="daq/v1"),
    "client_id": Field("str"),
    "username": Field("str"),
    "password": Field(SECRET),
    "tls": Field(TLS),
    "keepalive": Field("duration", default=30.0, min=5, max=3600),
    "batch_size": Field("int", default=100, min=1, max=1000),
    "max_inflight": Field("int", default=20, min=1, max=1000),
    "reconnect_min": Field("duration", default=1.0, min=0.05, max=60),
    "reconnect_max": Field("duration", default=60.0, min=0.1, max=3600),
}, validator=_check_mqtt)

OUTBOX = Schema({
    "max_days": Field("float", default=30.0, min=0.01,
                      doc="size cap in days of autonomy at the configured poll rates"),
    "max_mb": Field("float", min=1, doc="optional hard cap in MiB"),
    "commit_interval": Field("duration", default=1.0, min=0.05, max=60),
    "commit_batch": Field("int", default=200, min=1, max=10000),
})

DEVICE = Schema({
    "driver": Field("str", required=True),
    "address": Field("any"),
    "interval": Field("duration", required=True, min=0.1, max=86400),
    "timeout": Field("duration", min=0.01, max=60),
    "lane": Field("str", default="raw", choices=("raw", "result", "alarm")),
    "backoff_max": Field("duration", default=300.0, min=1, max=86400),
    "options": Field("any", default=dict),
})


def _check_bus(out: dict[str, Any], path: str, lines: Mapping[str, Any], ctx: Ctx) -> None:
    proto, url = out.get("protocol"), out.get("url")
    if proto == "modbus_tcp" and url and not re.match(r"^(tcp://)?[\w.\-\[\]:]+:\d+$", url):
        ctx.add(join(path, "url"), f"{url!r} is not host:port", lines.get("url"),
                "e.g. tcp://192.0.2.10:502")


BUS = Schema({
    "protocol": Field("str", required=True, choices=BUS_PROTOCOLS),
    "url": Field("str", required=True,
                 doc="/dev/ttyUSB0, /dev/serial/by-id/..., socket://h:p, rfc2217://, sim://..."),
    "baudrate": Field("int", default=9600, choices=(1200, 2400, 4800, 9600, 19200, 38400,
                                                    57600, 115200)),
    "bytesize": Field("int", default=8, choices=(7, 8)),
    "parity": Field("str", default="N", choices=("N", "E", "O")),
    "stopbits": Field("int", default=1, choices=(1, 2)),
    "timeout": Field("duration", default=0.5, min=0.01, max=30),
    "retries": Field("int", default=0, min=0, max=3),
    "devices": Field(MapOf(Field("any")), required=True),
}, validator=_check_bus)

LOG = Schema({
    "level": Field("str", default="info", choices=("debug", "info", "warning", "error")),
    "format": Field("str", default="auto", choices=("auto", "json", "console")),
})


def _top_schema(sensors_field: Field) -> Schema:
    return Schema({
        "site": Field("str", required=True),
        "rtu": Field("str", required=True),
        "state_dir": Field("str", default="/var/lib/daq"),
        "mqtt": Field(MQTT),
        "outbox": Field(OUTBOX),
        "log": Field(LOG),
        "buses": Field(MapOf(Field(BUS)), default=dict),  # a GNSS-only RTU has none
        "sensors": sensors_field,
        "gnss": Field(GNSS),
    })


# ---- loading ------------------------------------------------------------------------------

def load(path: str | os.PathLike[str], *, drivers: Mapping[str, type[Driver]] | None = None,
         failures: list[LoadFailure] | None = None, quarantine: bool = False) -> Config:
    """Read and check a configuration file; raises :class:`ConfigError` with every problem."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError([ConfigProblem("", f"cannot read file: {err.strerror}")], source) \
            from err
    return loads(text, source=source, drivers=drivers, failures=failures,
                 quarantine=quarantine)


def loads(text: str, *, source: str | None = None,
          drivers: Mapping[str, type[Driver]] | None = None,
          failures: list[LoadFailure] | None = None, quarantine: bool = False) -> Config:
    """Check a configuration text.

    With ``quarantine=True`` (``daq run``), a device or sensor whose own section has
    problems is left out and its problems are kept in ``Config.quarantined``, so the rest
    of the RTU runs; any other problem is still fatal. ``daq check`` reports them all.
    """
    from .schema import load_yaml

    try:
        doc = load_yaml(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        raise ConfigError([ConfigProblem("", f"YAML syntax: {getattr(err, 'problem', err)}",
                                         mark.line + 1 if mark else None)], source) from err
    if drivers is None:
        found, failed = discover()
        drivers, failures = found, failed
    sensors_field = _sensors_field()
    ctx = Ctx()
    checked = _top_schema(sensors_field).check(doc, "", 1, ctx)
    if not isinstance(checked, dict):
        raise ConfigError(ctx.problems, source)
    buses = _build_buses(checked.get("buses", {}), doc, drivers, failures or [], ctx)
    sensors = dict(checked.get("sensors") or {})
    if sensors:
        _check_sensors(sensors, buses, drivers, ctx)
    quarantined: list[ConfigProblem] = []
    if quarantine:
        quarantined = [p for p in ctx.problems if _isolable(p.path)]
        ctx.problems = [p for p in ctx.problems if not _isolable(p.path)]
        for name in {p.path.split(".")[1] for p in quarantined if p.path.startswith("sensors.")}:
            sensors.pop(name, None)
        if sensors and any(p.path.startswith("buses.") for p in quarantined):
            # sensors fed by a quarantined device go too, or they would wait forever
            trial = Ctx()
            _check_sensors(sensors, buses, drivers, trial)
            for name in {p.path.split(".")[1] for p in trial.problems
                         if p.path.startswith("sensors.")}:
                sensors.pop(name, None)
                quarantined.extend(p for p in trial.problems
                                   if p.path.split(".")[1:2] == [name])
    names: dict[str, str] = {}
    for bus in buses:
        for dev in bus.devices:
            if dev.name in names:
                ctx.add(f"buses.{bus.name}.devices.{dev.name}",
                        f"device name already used on bus {names[dev.name]!r}")
            names[dev.name] = bus.name
    if ctx.problems:
        raise ConfigError(ctx.problems, source)
    return Config(
        site=checked["site"], rtu=checked["rtu"], state_dir=checked["state_dir"],
        mqtt=_build_mqtt(checked["mqtt"], checked["rtu"]) if "mqtt" in checked else None,
        outbox=OutboxConfig(**_defaults(OUTBOX, checked.get("outbox"))),
        buses=tuple(buses), sensors=sensors,
        log_level=(checked.get("log") or {}).get("level", "info"),
        log_format=(checked.get("log") or {}).get("format", "auto"),
        source=source, drivers=dict(drivers), quarantined=tuple(quarantined),
        gnss=build_gnss(checked["gnss"]) if checked.get("gnss") is not None else None,
    )


def _isolable(path: str) -> bool:
    parts = path.split(".")
    return (len(parts) >= 4 and parts[0] == "buses" and parts[2] == "devices") or (
        len(parts) >= 2 and parts[0] == "sensors")


def _sensors_field() -> Field:
    try:
        from .sensors import SENSORS_FIELD
    except ImportError:  # the sensor layer is optional at this layer
        return Field(MapOf(Field("any")))
    return SENSORS_FIELD


def _check_sensors(sensors: dict[str, Any], buses: list[BusConfig],
                   drivers: Mapping[str, type[Driver]], ctx: Ctx) -> None:
    try:
        from .sensors import SensorSet
    except ImportError:
        return
    channels = _channel_names(buses, drivers)
    try:
        SensorSet.build(sensors, channels)
    except ConfigError as err:
        ctx.problems.extend(err.problems)


def _channel_names(buses: list[BusConfig], drivers: Mapping[str, type[Driver]]) -> set[str]:
    out: set[str] = set()
    for bus in buses:
        for dev in bus.devices:
            drv = instantiate(dev, drivers)
            out.update(f"{dev.name}/{c.name}" for c in drv.channels)
    return out


def _defaults(schema: Schema, value: Any) -> dict[str, Any]:
    out = schema.check(value or {}, "", None, Ctx())
    return {k: out.get(k) for k in schema.fields}


def _build_mqtt(m: dict[str, Any], rtu: str) -> MqttConfig:
    parts = urlsplit(m["url"])
    tls_on = parts.scheme == "mqtts" or "tls" in m
    tls = m.get("tls") or {}
    return MqttConfig(
        host=parts.hostname or "127.0.0.1", port=parts.port or (8883 if tls_on else 1883),
        tls_enabled=tls_on, prefix=m["prefix"].strip("/"),
        client_id=m.get("client_id") or f"daq-{rtu}", username=m.get("username"),
        password=Secret(**(m.get("password") or {})),
        tls=TlsConfig(ca_file=tls.get("ca_file"), cert_file=tls.get("cert_file"),
                      key_file=tls.get("key_file"),
                      key_password=Secret(**(tls.get("key_password") or {})),
                      insecure=tls.get("insecure", False)),
        keepalive=m["keepalive"], batch_size=m["batch_size"], max_inflight=m["max_inflight"],
        reconnect_min=m["reconnect_min"], reconnect_max=m["reconnect_max"],
    )


_BUS_LINK = {"modbus_rtu": "modbus", "modbus_tcp": "modbus", "serial": "serial"}


def _build_buses(buses: dict[str, Any], doc: Any, drivers: Mapping[str, type[Driver]],
                 failures: list[LoadFailure], ctx: Ctx) -> list[BusConfig]:
    out = []
    quarantined = {f.name: f for f in failures}
    raw_buses = doc.get("buses", {}) if isinstance(doc, dict) else {}
    for bus_name, bus in buses.items():
        devices = []
        raw_devs = (raw_buses.get(bus_name) or {}).get("devices") or {}
        for dev_name, raw in bus.get("devices", {}).items():
            path = f"buses.{bus_name}.devices.{dev_name}"
            line = getattr(raw_devs, "key_lines", {}).get(dev_name)
            before = len(ctx.problems)
            dev = DEVICE.check(raw, path, line, ctx)
            if not isinstance(dev, dict) or "driver" not in dev:
                continue
            dlines = getattr(raw, "key_lines", {})
            drv = drivers.get(dev["driver"])
            if drv is None:
                if dev["driver"] in quarantined:
                    f = quarantined[dev["driver"]]
                    ctx.add(join(path, "driver"), f"driver {dev['driver']!r} failed to load: "
                            f"{f.error}", dlines.get("driver"), "see `daq drivers`")
                else:
                    import difflib
                    close = difflib.get_close_matches(dev["driver"], list(drivers), 1)
                    ctx.add(join(path, "driver"), f"no driver named {dev['driver']!r}",
                            dlines.get("driver"),
                            f"did you mean {close[0]!r}?" if close else
                            "installed: " + ", ".join(sorted(drivers)))
                continue
            want = _BUS_LINK[bus["protocol"]] if "protocol" in bus else None
            if want and drv.link_kind != want:
                ctx.add(join(path, "driver"), f"driver {dev['driver']!r} needs a "
                        f"{drv.link_kind} bus, this bus is {bus['protocol']}",
                        dlines.get("driver"))
                continue
            opts = drv.options_schema.check(raw.get("options") or {}, join(path, "options"),
                                            dlines.get("options", line), ctx)
            address = _address(dev.get("address"), drv, join(path, "address"),
                                dlines.get("address", line), ctx)
            if not isinstance(opts, dict) or len(ctx.problems) > before:
                continue
            cfg = DeviceConfig(name=dev_name, bus=bus_name, driver=dev["driver"],
                               address=address, interval=dev["interval"],
                               timeout=dev.get("timeout"), lane=dev["lane"],
                               options=opts, backoff_max=dev["backoff_max"])
            try:
                instantiate(cfg, drivers)
            except ConfigError as err:
                for p in err.problems:
                    # a driver may object to the address too (SDI-12 '0'-'z', text ids)
                    where = (join(path, p.path) if p.path == "address"
                             else join(join(path, "options"), p.path) if p.path
                             else join(path, "options"))
                    ctx.add(where, p.message, p.line or dlines.get(p.path.split(".")[0])
                            or dlines.get("options"), p.hint)
                continue
            except Exception as err:  # a third-party driver that blows up when configured
                ctx.add(path, f"driver {dev['driver']!r} rejected the device: "
                        f"{type(err).__name__}: {err}", line)
                continue
            devices.append(cfg)
        if "protocol" in bus and "url" in bus:
            out.append(BusConfig(name=bus_name, protocol=bus["protocol"], url=bus["url"],
                                 baudrate=bus["baudrate"], bytesize=bus["bytesize"],
                                 parity=bus["parity"], stopbits=bus["stopbits"],
                                 timeout=bus["timeout"], retries=bus["retries"],
                                 devices=tuple(devices)))
    return out


def _address(value: Any, drv: type[Driver], path: str, line: int | None,
             ctx: Ctx) -> int | None:
    if value is None:
        if drv.link_kind == "modbus":
            ctx.add(path, "a Modbus device needs its unit address (1-247)", line)
        return None
    if drv.link_kind == "modbus":
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 247:
            ctx.add(path, f"{value!r} is not a Modbus unit address (0-247)", line)
            return None
        return value
    return value  # serial protocols define their own addressing (SDI-12 '0'-'z', text ids)


def instantiate(dev: DeviceConfig, drivers: Mapping[str, type[Driver]] | None = None) -> Driver:
    """A fresh driver object for a checked device (drivers raise ConfigError for bad options)."""
    if drivers is None:
        drivers, _ = discover()
    return drivers[dev.driver](dev.name, dev.address, dict(dev.options))



def with_mqtt_url(cfg: Config, url: str) -> Config:
    """The configuration with its broker replaced by ``url`` (``daq run --mqtt-url``)."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ConfigError([ConfigProblem("--mqtt-url", f"{url!r} is not mqtt://host:port")])
    base = cfg.mqtt or _build_mqtt(MQTT.check({}, "", None, Ctx()), cfg.rtu)
    tls = parts.scheme == "mqtts"
    return replace(cfg, mqtt=replace(base, host=parts.hostname,
                                     port=parts.port or (8883 if tls else 1883),
                                     tls_enabled=tls))
