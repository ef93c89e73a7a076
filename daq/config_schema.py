"""The configuration's schema: every key, its type, default, range and cross-checks.

Kept apart from :mod:`daq.config`, which turns the checked document into typed objects.
Driver options are not here: each driver declares its own ``options_schema``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from .alarms.alarm_config import ALARMS
from .manual.manual_config import MANUAL
from .processing.config import PROCESSING
from .schema import Ctx, Field, MapOf, Schema, join

BUS_PROTOCOLS = ("modbus_rtu", "modbus_tcp", "serial")


SECRET = Schema({
    "file": Field("str", doc="path of a file holding the secret"),
    "env": Field("str", doc="name of an environment variable holding the secret"),
})

TLS = Schema({
    "ca_file": Field("str"), "cert_file": Field("str"), "key_file": Field("str"),
    "key_password": Field(SECRET), "insecure": Field("bool", default=False),
})


def mqtt_url_problem(url: str) -> str | None:
    """Why ``url`` is not a usable broker URL (``mqtt://host:port``), or None."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:  # a port that is not a number, or out of range; bad IPv6
        tail = url.rpartition(":")[2]
        return (f"{url!r}: the port {tail!r} is not a number from 1 to 65535"
                if "port" in str(err).lower() else f"{url!r} is not a URL ({err})")
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        return f"{url!r} is not an mqtt:// or mqtts:// URL"
    if port == 0:
        return f"{url!r}: port 0 is not a port a broker listens on"
    if parts.password:
        return "a password in the URL would be logged"
    return None


def _check_mqtt(out: dict[str, Any], path: str, lines: Mapping[str, Any], ctx: Ctx) -> None:
    url = out.get("url")
    if url is not None:
        problem = mqtt_url_problem(url)
        if problem is not None:
            ctx.add(join(path, "url"), problem, lines.get("url"),
                    "use mqtt.password: {file: ...} or {env: ...}" if "password" in problem
                    else "e.g. mqtt://broker.example:1883, or mqtts://…:8883 with TLS")
    if "password" in out and not out.get("username"):
        ctx.add(join(path, "password"), "a password needs a username", lines.get("password"))
    pw = out.get("password") or {}
    if "file" in pw and "env" in pw:
        ctx.add(join(path, "password"), "give either file or env, not both", lines.get("password"))
    tls_on = "tls" in out or (url is not None and urlsplit(url).scheme == "mqtts")
    if out.get("username") and not tls_on and not out.get("allow_plain_password"):
        ctx.add(join(path, "username"), "the username and password would cross the network "
                "in clear over mqtt://", lines.get("username"),
                "use mqtts:// (mqtt.tls), or say allow_plain_password: true")


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
    "allow_plain_password": Field("bool", default=False,
                                  doc="send username and password over mqtt:// (no TLS)"),
}, validator=_check_mqtt)

OUTBOX = Schema({
    "max_days": Field("float", default=30.0, min=0.01,
                      doc="size cap in days of autonomy at the configured poll rates"),
    "max_mb": Field("float", min=1, doc="optional hard cap in MiB"),
    "commit_interval": Field("duration", default=1.0, min=0.05, max=60),
    "commit_batch": Field("int", default=200, min=1, max=10000),
    "sync_interval": Field("duration", default=5.0, min=0, max=60,
                           doc="fsync the outbox this often; only synced rows are sent"),
})

DEVICE = Schema({
    "driver": Field("str", required=True),
    "address": Field("any"),
    "interval": Field("duration", required=True, min=0.1, max=86400),
    "timeout": Field("duration", min=0.01, max=60),
    "lane": Field("str", default="raw", choices=("raw", "result", "alarm")),
    "backoff_max": Field("duration", default=300.0, min=1, max=86400),
    "pause": Field("duration", default=0.0, min=0, max=10,
                   doc="extra quiet before each request to this device (slow Modbus units)"),
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
    "settle": Field("duration", default=0.1, min=0, max=5,
                    doc="Modbus RTU: after a timeout, watch the line this long (and until "
                        "quiet for 3.5 characters) so a late reply is never taken for the "
                        "next request's"),
    "frame_gap": Field("duration", min=0, max=0.1,
                       doc="Modbus RTU idle time between frames; default the spec's t3.5: "
                           "3.5 characters up to 19200 baud, 1.75 ms above"),
    "devices": Field(MapOf(Field("any")), required=True),
}, validator=_check_bus)

LOG = Schema({
    "level": Field("str", default="info", choices=("debug", "info", "warning", "error")),
    "format": Field("str", default="auto", choices=("auto", "json", "console")),
})


def top_schema(sensors_field: Field, gnss_field: Field) -> Schema:
    return Schema({
        "site": Field("str", required=True),
        "rtu": Field("str", required=True),
        "state_dir": Field("str", default="/var/lib/daq"),
        "mqtt": Field(MQTT),
        "outbox": Field(OUTBOX),
        "log": Field(LOG),
        "buses": Field(MapOf(Field(BUS)), default=dict),  # a GNSS-only RTU has none
        "sensors": sensors_field,
        "gnss": gnss_field,
        "alarms": Field(ALARMS),
        "manual": Field(MANUAL),
        "processing": Field(PROCESSING),  # chains per channel (daq/processing/config.py)
    })
