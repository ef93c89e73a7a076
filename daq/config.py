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

from .config_schema import DEVICE, MQTT, OUTBOX, mqtt_url_problem, top_schema
from .driver import Driver, LoadFailure, discover, lazy_drivers
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


MAX_CONFIG_BYTES = 1 << 20  # a real configuration is a few kB; refuse what is not one
# Parsing holds every node in memory: 200 000 took 1.3 s and 144 MB (the demo has 1 600).
MAX_YAML_MARKS = 200_000


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
    pause: float = 0.0  # s of extra quiet before each of this device's requests


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
    settle: float = 0.1  # s the line is watched after a Modbus RTU timeout
    frame_gap: float | None = None  # s of idle line between RTU frames; None: the spec's t3.5


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
    alarms: Any = None  # daq.alarms.alarm_config.AlarmsConfig when `alarms:` is given
    manual: Any = None  # daq.manual.manual_config.ManualConfig when `manual:` is given
    processing: Mapping[str, Any] | None = None  # chains per channel (daq/processing)

    @property
    def devices(self) -> list[DeviceConfig]:
        return [d for b in self.buses for d in b.devices]


# ---- loading ------------------------------------------------------------------------------

def load(path: str | os.PathLike[str], *, drivers: Mapping[str, type[Driver]] | None = None,
         failures: list[LoadFailure] | None = None, quarantine: bool = False) -> Config:
    """Read and check a configuration file; raises :class:`ConfigError` with every problem."""
    source = str(path)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
    except PermissionError as err:
        from .access import denied

        raise ConfigError([ConfigProblem("", f"cannot read file: {denied(path)}")],
                          source) from err
    except OSError as err:
        raise ConfigError([ConfigProblem("", f"cannot read file: {err.strerror}")], source) \
            from err
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError([ConfigProblem("", f"the file is larger than {MAX_CONFIG_BYTES} "
                                         "bytes: that is not a configuration (wrong file?)")],
                          source)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise ConfigError([ConfigProblem("", f"not UTF-8 text: byte 0x{data[err.start]:02x} "
                                         f"at offset {err.start}", line,
                                         "save the file as UTF-8")], source) from err
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

    marks = sum(text.count(c) for c in ",:[{-\n")  # an upper bound of the YAML nodes
    if marks > MAX_YAML_MARKS:
        raise ConfigError([ConfigProblem("", f"about {marks} values: far more than a "
                                         "configuration holds (wrong file?)")], source)
    try:
        doc = load_yaml(text)
    except yaml.YAMLError as err:
        raise ConfigError([yaml_problem(err, text)], source) from err
    except RecursionError as err:
        raise ConfigError([ConfigProblem("", "values are nested too deeply to be a "
                                         "configuration")], source) from err
    try:
        return _loads(doc, source, drivers, failures, quarantine)
    except RecursionError as err:
        raise ConfigError([ConfigProblem("", "values are nested too deeply to be a "
                                         "configuration")], source) from err


def yaml_problem(err: Exception, text: str) -> ConfigProblem:
    """A YAML syntax error as file line, column, what is wrong and the offending line."""
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    what = getattr(err, "problem", None) or str(err).splitlines()[0]
    context = getattr(err, "context", None)
    if mark is None:
        return ConfigProblem("", f"YAML syntax: {what}")
    lines = text.splitlines()
    shown = lines[mark.line][:120] if mark.line < len(lines) else ""
    hint = (f"line {mark.line + 1} reads: {shown!r}" if shown.strip() else
            "the file ends there")
    start = getattr(err, "context_mark", None)
    if context and start is not None and start.line < len(lines) and start is not mark:
        hint += f"; {context} that started on line {start.line + 1}: " \
                f"{lines[start.line][:120]!r}"
    elif context:
        hint += f" ({context})"
    return ConfigProblem("", f"YAML syntax, column {mark.column + 1}: {what}", mark.line + 1,
                         hint)


def _loads(doc: Any, source: str | None, drivers: Mapping[str, type[Driver]] | None,
           failures: list[LoadFailure] | None, quarantine: bool) -> Config:
    if drivers is None:
        drivers, failures = lazy_drivers()  # imports only the drivers the file names
    ctx = Ctx()
    checked = top_schema(SENSORS_FIELD, Field(GNSS)).check(doc, "", 1, ctx)
    if not isinstance(checked, dict):
        raise ConfigError(ctx.problems, source)
    buses = _build_buses(checked.get("buses", {}), doc, drivers,
                         failures if failures is not None else [], ctx)
    sensors = dict(checked.get("sensors") or {})
    if sensors:
        built = {dev.name for bus in buses for dev in bus.devices}
        broken = {name for bus in (checked.get("buses") or {}).values()
                  for name in (bus.get("devices") or {}) if name not in built}
        _check_sensors(sensors, buses, drivers, ctx, broken)
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
    if checked.get("processing") and checked["processing"].get("chains"):
        _check_processing(checked["processing"], sensors, buses, drivers, ctx,
                          doc.get("processing"))
        if quarantine:  # a chain of a quarantined sensor goes with it; the rest runs
            for p in [p for p in ctx.problems if p.path.startswith("processing.chains.")]:
                ctx.problems.remove(p)
                quarantined.append(p)
                name = p.path[len("processing.chains."):]
                for ch in list(checked["processing"]["chains"]):
                    if name == ch or name.startswith(ch + "."):
                        checked["processing"]["chains"].pop(ch)
    names: dict[str, str] = {}
    for bus in buses:
        for dev in bus.devices:
            if dev.name in names:
                ctx.add(f"buses.{bus.name}.devices.{dev.name}",
                        f"device name already used on bus {names[dev.name]!r}")
            names[dev.name] = bus.name
    keys = [(sect, sub, k) for sect, sub in (("alarms", "rules"), ("manual", "sensors"))
            for k in (checked.get(sect) or {}).get(sub, {})]
    if keys and checked.get("gnss") is None:  # a typo never alarms (GNSS names its own)
        known = set(sensors) | _channel_names(buses, drivers)
        for sect, sub, k in keys:
            if k not in known:
                lines = getattr((doc.get(sect) or {}).get(sub), "key_lines", {})
                ctx.add(f"{sect}.{sub}.{k}", "no such sensor or channel", lines.get(k),
                        "name a sensor id or a device channel such as weir_logger/ch1")
    if ctx.problems:
        raise ConfigError(ctx.problems, source)
    return Config(
        site=checked["site"], rtu=checked["rtu"], state_dir=checked["state_dir"],
        mqtt=_build_mqtt(checked["mqtt"], checked["rtu"]) if "mqtt" in checked else None,
        outbox=OutboxConfig(**_defaults(OUTBOX, checked.get("outbox"))),
        buses=tuple(buses), sensors=sensors,
        log_level=(checked.get("log") or {}).get("level", "info"),
        log_format=(checked.get("log") or {}).get("format", "auto"),
        source=source, drivers=drivers, quarantined=tuple(quarantined),
        gnss=build_gnss(checked["gnss"]) if checked.get("gnss") is not None else None,
        alarms=_build_alarms(checked.get("alarms")),
        manual=_build_manual(checked.get("manual")),
        processing=(checked["processing"] if (checked.get("processing") or {}).get("chains")
                    else None),
    )


def _build_alarms(checked: Any) -> Any:
    if checked is None:
        return None
    from .alarms.alarm_config import build

    return build(checked)


def _build_manual(checked: Any) -> Any:
    if checked is None:
        return None
    from .manual.manual_config import build

    return build(checked)


def _isolable(path: str) -> bool:
    parts = path.split(".")
    return (len(parts) >= 4 and parts[0] == "buses" and parts[2] == "devices") or (
        len(parts) >= 2 and parts[0] == "sensors")


def _check_sensors(sensors: dict[str, Any], buses: list[BusConfig],
                   drivers: Mapping[str, type[Driver]], ctx: Ctx,
                   broken: set[str] | frozenset[str] = frozenset()) -> None:
    """``broken``: devices whose own section has a problem (already reported): inputs from
    them are not reported again, so one misspelt driver name is one problem, not twenty."""
    channels = _channel_names(buses, drivers)
    channels |= {ref for cfg in sensors.values() if isinstance(cfg, dict)
                 for ref in (cfg.get("inputs") or {}).values()
                 if isinstance(ref, str) and ref.partition("/")[0] in broken}
    try:
        SensorSet.build(sensors, channels)
    except ConfigError as err:
        ctx.problems.extend(err.problems)


def _check_processing(processing: dict[str, Any], sensors: dict[str, Any],
                      buses: list[BusConfig], drivers: Mapping[str, type[Driver]],
                      ctx: Ctx, raw: Any = None) -> None:
    """``raw``: the section as read (its mappings know each key's line)."""
    from .processing.config import check_channels
    from .sensors.config import KIND_OUTPUTS

    channels = _channel_names(buses, drivers) | {
        f"{sid}.{q}" for sid, s in sensors.items() for q in KIND_OUTPUTS.get(s["kind"], ())}
    check_channels(processing, channels, ctx, raw)


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
                f = next((f for f in failures if f.name == dev["driver"]), None)
                if f is not None:
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
                                dlines.get("address", line), ctx, bus.get("protocol"))
            if not isinstance(opts, dict) or len(ctx.problems) > before:
                continue
            cfg = DeviceConfig(name=dev_name, bus=bus_name, driver=dev["driver"],
                               address=address, interval=dev["interval"],
                               timeout=dev.get("timeout"), lane=dev["lane"],
                               options=opts, backoff_max=dev["backoff_max"],
                               pause=dev.get("pause", 0.0))
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
                                 devices=tuple(devices), settle=bus["settle"],
                                 frame_gap=bus.get("frame_gap")))
    return out


def _address(value: Any, drv: type[Driver], path: str, line: int | None,
             ctx: Ctx, protocol: str | None = None) -> int | None:
    # RTU: 1-247 (0 is broadcast, which never answers; 248-255 are reserved). TCP: 0-255,
    # 255 being what the spec recommends for a device addressed by its IP alone.
    low, high = (0, 255) if protocol == "modbus_tcp" else (1, 247)
    if value is None:
        if drv.link_kind == "modbus":
            ctx.add(path, f"a Modbus device needs its unit address ({low}-{high})", line)
        return None
    if drv.link_kind == "modbus":
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            hint = "0 is broadcast: no unit ever answers it" if value == 0 else None
            ctx.add(path, f"{value!r} is not a Modbus unit address ({low}-{high} on "
                    f"{protocol or 'a Modbus bus'})", line, hint)
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
    problem = mqtt_url_problem(url)
    if problem is not None:
        raise ConfigError([ConfigProblem("--mqtt-url", problem, None,
                                         "e.g. mqtt://127.0.0.1:1883")])
    parts = urlsplit(url)
    base = cfg.mqtt or _build_mqtt(MQTT.check({}, "", None, Ctx()), cfg.rtu)
    tls = parts.scheme == "mqtts"
    if not tls and (base.tls_enabled or base.username) and not insecure:
        raise ConfigError([ConfigProblem(
            "--mqtt-url", f"{url!r} is plain MQTT but the configuration has "
            f"{'TLS' if base.tls_enabled else 'a username and password'}: refused",
            hint="use mqtts://, or add --insecure to accept a plain connection")])
    return replace(cfg, mqtt=replace(base, host=parts.hostname or "127.0.0.1",
                                     port=parts.port or (8883 if tls else 1883),
                                     tls_enabled=tls,
                                     allow_plain_password=base.allow_plain_password
                                     or insecure))
