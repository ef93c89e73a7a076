"""The daemon's configuration: YAML in, immutable typed objects out.

Everything is checked before the first poll, and every problem is reported at once with
its dotted path, line and hint. Driver options are checked by the driver's own schema, so a
misspelt register option is caught here too. Secrets never live in the YAML: the MQTT
password and the TLS key passphrase come from a file path or an environment variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from .config_schema import DEVICE, MQTT, OUTBOX, top_schema
from .driver import Driver, LoadFailure, discover
from .errors import ConfigError, ConfigProblem
from .gnss.gnss_config import GNSS
from .gnss.gnss_config import build as build_gnss
from .schema import Ctx, Field, Schema, join
from .sensors import SENSORS_FIELD, SensorSet

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
    allow_plain_password: bool = False  # said in words: credentials may go without TLS


@dataclass(frozen=True)
class OutboxConfig:
    max_days: float
    max_mb: float | None
    commit_interval: float
    commit_batch: int
    sync_interval: float = 5.0


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
        # only the drivers the configuration names: a plugin's heavy imports (NumPy for
        # the GNSS ones) cost nothing to an RTU that does not use it; all of them when a
        # name is unknown, for the "did you mean" hint
        wanted = _driver_names(doc)
        found, failed = discover(wanted)
        if not wanted <= set(found) | {f.name for f in failed}:
            found, failed = discover()
        drivers, failures = found, failed
    ctx = Ctx()
    checked = top_schema(SENSORS_FIELD, Field(GNSS)).check(doc, "", 1, ctx)
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


def _check_sensors(sensors: dict[str, Any], buses: list[BusConfig],
                   drivers: Mapping[str, type[Driver]], ctx: Ctx) -> None:
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
        allow_plain_password=m.get("allow_plain_password", False),
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


def secret_file_problems(cfg: Config) -> list[ConfigProblem]:
    """`daq check`: the CA, certificate, key and password files must be readable. Not a
    load error: `daq run` starts without them (acquisition never waits for the broker),
    and its publisher shows the error and retries."""
    m = cfg.mqtt
    if m is None:
        return []
    files = {"mqtt.password": m.password.file if m.username else None,
             "mqtt.tls.key_password": m.tls.key_password.file,
             **({"mqtt.tls.ca_file": m.tls.ca_file, "mqtt.tls.cert_file": m.tls.cert_file,
                 "mqtt.tls.key_file": m.tls.key_file} if m.tls_enabled else {})}
    return [ConfigProblem(path, f"{name} does not exist or cannot be read", None,
                          "`daq run` starts anyway and retries the broker until it can")
            for path, name in files.items() if name and not os.access(name, os.R_OK)]


def _driver_names(doc: Any) -> set[str]:
    out: set[str] = set()
    buses = doc.get("buses") if isinstance(doc, dict) else None
    for bus in (buses or {}).values() if isinstance(buses, dict) else ():
        devices = bus.get("devices") if isinstance(bus, dict) else None
        for dev in (devices or {}).values() if isinstance(devices, dict) else ():
            if isinstance(dev, dict) and isinstance(dev.get("driver"), str):
                out.add(dev["driver"])
    return out


def instantiate(dev: DeviceConfig, drivers: Mapping[str, type[Driver]] | None = None) -> Driver:
    """A fresh driver object for a checked device (drivers raise ConfigError for bad options)."""
    if drivers is None:
        drivers, _ = discover({dev.driver})
    return drivers[dev.driver](dev.name, dev.address, dict(dev.options))



def with_mqtt_url(cfg: Config, url: str, *, insecure: bool = False) -> Config:
    """The configuration with its broker replaced by ``url`` (``daq run --mqtt-url``).

    Never weaker than configured: ``mqtt://`` over a configuration with TLS or a password
    is refused unless ``insecure`` (``--insecure``) says so.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ConfigError([ConfigProblem("--mqtt-url", f"{url!r} is not mqtt://host:port")])
    base = cfg.mqtt or _build_mqtt(MQTT.check({}, "", None, Ctx()), cfg.rtu)
    tls = parts.scheme == "mqtts"
    if not tls and (base.tls_enabled or base.username) and not insecure:
        raise ConfigError([ConfigProblem(
            "--mqtt-url", f"{url!r} is plain MQTT but the configuration has "
            f"{'TLS' if base.tls_enabled else 'a username and password'}: refused",
            hint="use mqtts://, or add --insecure to accept a plain connection")])
    return replace(cfg, mqtt=replace(base, host=parts.hostname,
                                     port=parts.port or (8883 if tls else 1883),
                                     tls_enabled=tls,
                                     allow_plain_password=base.allow_plain_password
                                     or insecure))
