"""``daq mqtt check``: is the broker reachable, and if not, why, step by step."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from . import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK, add_command, fail, positive_float

EXAMPLES = """Test the link to the broker step by step: DNS, TCP, TLS (certificate chain, host
name, days to expiry), login, and a publish/subscribe round trip with its latency. Each
step says what is wrong in words, with the likely cause.

examples:
  daq mqtt check --config /etc/daq/site.yaml
  daq mqtt check --mqtt-url mqtt://broker.example.org:1883
  daq mqtt check --config site.yaml --same-client-id     also detect a stolen session

By default the check logs in with its own client id, so it never throws the running
daemon off the broker; --same-client-id uses the configured one (and will disconnect a
daemon using it) to find out whether another client keeps taking that session.
Exit codes: 0 every step passed, 1 a step failed, 2 bad configuration."""


def register(sub: Any) -> None:
    m = sub.add_parser("mqtt", help="test the MQTT link", description="MQTT diagnostics.")
    msub = m.add_subparsers(dest="mqtt_command", required=True, metavar="MQTT_COMMAND")
    c = add_command(msub, "check", "DNS, TCP, TLS, login and a round trip, in words",
                    EXAMPLES)
    c.add_argument("--config", help="the daemon's configuration (its mqtt: section)")
    c.add_argument("--mqtt-url", help="the broker, e.g. mqtt://10.0.0.2:1883 or mqtts://…")
    c.add_argument("--client-id", help="log in with this client id")
    c.add_argument("--same-client-id", action="store_true",
                   help="log in with the configured client id (disconnects a daemon using it)")
    c.add_argument("--timeout", type=positive_float, default=5.0,
                   help="seconds per step (default 5)")
    c.add_argument("--json", action="store_true", help="machine-readable output")
    c.set_defaults(func=cmd_check)


def _settings(args: argparse.Namespace) -> tuple[Any, str, str]:
    """(MqttConfig, site, rtu); raises ConfigError."""
    from .. import config, config_schema
    from ..errors import ConfigError, ConfigProblem
    from ..schema import Ctx

    if args.config:
        cfg = config.load(args.config)
        if args.mqtt_url:
            cfg = config.with_mqtt_url(cfg, args.mqtt_url)
        if cfg.mqtt is None:
            raise ConfigError([ConfigProblem("mqtt", "no mqtt: section")], args.config)
        return cfg.mqtt, cfg.site, cfg.rtu
    if not args.mqtt_url:
        raise ConfigError([ConfigProblem("", "give --config FILE or --mqtt-url URL")])
    problem = config_schema.mqtt_url_problem(args.mqtt_url)
    if problem is not None:
        raise ConfigError([ConfigProblem("--mqtt-url", problem)])
    ctx = Ctx()
    checked = config_schema.MQTT.check({"url": args.mqtt_url}, "--mqtt-url", None, ctx)
    if ctx.problems:
        raise ConfigError(ctx.problems)
    return config._build_mqtt(checked, "check"), "check", "check"


def run_steps(cfg: Any, client_id: str, topic: str, timeout: float) -> list[Any]:
    from . import mqtt_steps as ms

    steps = [ms.credentials(cfg)]
    missing = steps[0].cause if steps[0].ok is False else ""
    dns_step, infos = ms.dns(cfg.host, cfg.port)
    steps.append(dns_step)
    if not dns_step.ok:
        return steps
    tcp_step, sock = ms.tcp(cfg.host, cfg.port, infos, timeout)
    steps.append(tcp_step)
    if not tcp_step.ok:
        return steps
    if cfg.tls_enabled:
        steps.append(ms.tls_step(cfg, sock, timeout))
        if not steps[-1].ok:
            return steps
    else:
        sock.close()
        steps.append(ms.Step("tls", None, "not used (mqtt://): the link is not encrypted"))
    steps.extend(ms.mqtt_round_trip(cfg, client_id, topic, timeout, missing))
    return steps


def cmd_check(args: argparse.Namespace) -> int:
    from ..errors import ConfigError

    try:
        cfg, site, rtu = _settings(args)
    except ConfigError as err:
        lines = [f"  - {p}" for p in err.problems]
        return fail("mqtt check", f"{len(err.problems)} problem(s) in "
                    f"{err.source or 'the arguments'}:\n" + "\n".join(lines), EXIT_BAD_INPUT)
    except OSError as err:
        return fail("mqtt check", f"cannot read {args.config}: {err.strerror}",
                    EXIT_BAD_INPUT)
    client_id = args.client_id or (cfg.client_id if args.same_client_id
                                   else f"{cfg.client_id.removesuffix('-check')}-check-"
                                   f"{os.getpid()}")
    steps = run_steps(cfg, client_id, f"{cfg.prefix}/{site}/{rtu}/check", args.timeout)
    ok = all(s.ok is not False for s in steps)
    if args.json:
        print(json.dumps({"broker": f"{cfg.host}:{cfg.port}", "tls": cfg.tls_enabled,
                          "ok": ok, "steps": [vars(s) for s in steps]}, indent=1))
        return EXIT_OK if ok else EXIT_FAILURE
    scheme = "mqtts" if cfg.tls_enabled else "mqtt"
    print(f"broker {scheme}://{cfg.host}:{cfg.port}, client id {client_id}")
    mark = {True: "ok", False: "FAILED", None: "-"}
    width = max(len(s.name) for s in steps)
    for s in steps:
        took = "" if s.ms is None else f"  ({s.ms} ms)"
        print(f"  {mark[s.ok]:<6}  {s.name:<{width}}  {s.verdict}{took}")
        if s.cause:
            print(f"  {'':<6}  {'':<{width}}  " + ("cause: " if s.ok is False else "note: ")
                  + s.cause)
    print("all steps passed" if ok else "the link is not usable: see the first FAILED step")
    return EXIT_OK if ok else EXIT_FAILURE
