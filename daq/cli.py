"""The ``daq`` command: run the daemon, check a configuration, and field diagnostics.

Exit codes: 0 ok, 1 runtime failure, 2 bad input or configuration. Human tables by
default, ``--json`` for scripts.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from . import __version__
from .errors import ConfigError, ConfigProblem
from .tables import render

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2

# Subcommands contributed by other modules: each has register(subparsers). These modules
# are imported to build every parser, so they must be light at import (argparse only; heavy
# imports inside the command function): tests/test_cli_startup.py checks it.
_PLUGGED = ["daq.convert.cli", "daq.tools.ports", "daq.tools.modbus", "daq.tools.sdi12",
            "daq.tools.mqtt_check", "daq.tools.completion",
            "daq.cli_read", "daq.cli_tail", "daq.cli_buffer",
            "daq.alarms.cli", "daq.manual.cli", "daq.fieldcal.cli"]
# `daq gnss …` commands import numpy/Numba at module level: they are imported only when the
# command line names `gnss` (or a full parser is asked for, e.g. for shell completion).
_PLUGGED_GNSS = ["daq.gnss.cli.decode", "daq.gnss.cli.sessions", "daq.gnss.cli.solve",
                 "daq.gnss.cli.replay", "daq.gnss.cli.series"]
GNSS_HELP = "GNSS sessions, raw logs and baseline solutions"


def _print_config_error(err: ConfigError) -> None:
    print(f"daq: {len(err.problems)} problem(s) in {err.source or 'configuration'}:",
          file=sys.stderr)
    for p in err.problems:
        print(f"  - {p}", file=sys.stderr)


def _load(args: argparse.Namespace, *, quarantine: bool = False) -> Any:
    from . import config

    cfg = config.load(args.config, quarantine=quarantine)
    url = getattr(args, "mqtt_url", None)
    if url:
        cfg = config.with_mqtt_url(cfg, url, insecure=getattr(args, "insecure", False))
    return cfg


def readings_per_second(cfg: Any) -> float:
    """daq.daemon.readings_per_second without importing the daemon (paho, the outbox)."""
    from .config import instantiate

    return sum(max(len(instantiate(d, cfg.drivers).channels), 1) / d.interval
               for d in cfg.devices)


def cmd_check(args: argparse.Namespace) -> int:
    from . import config

    problem: ConfigError | None = None
    try:
        cfg = _load(args)
        if problems := config.secret_file_problems(cfg):
            raise ConfigError(problems, args.config)
    except ConfigError as err:
        problem = err
    except Exception as bug:  # a checker bug must still end in words (tests/test_config_fuzz)
        problem = ConfigError([ConfigProblem("", f"the checker failed on this file "
                                             f"({type(bug).__name__}: {str(bug)[:200]}); "
                                             "please report it with the file")], args.config)
    if problem is not None:
        if args.json:
            print(json.dumps({"ok": False, "problems": [dataclasses.asdict(p)
                                                        for p in problem.problems]}, indent=1))
        else:
            _print_config_error(problem)
        return EXIT_BAD_INPUT
    from .budget import bus_budget

    budgets = [bus_budget(bus, cfg.drivers) for bus in cfg.buses]
    over = [b["bus"] for b in budgets if b["verdict"] == "over budget"]
    if args.json:
        print(json.dumps({"ok": not over, "devices": len(cfg.devices),
                          "readings_per_s": readings_per_second(cfg),
                          "buses": budgets}, indent=1))
        return EXIT_FAILURE if over else EXIT_OK
    gnss = (f", {len(cfg.gnss.streams)} GNSS stream(s), {len(cfg.gnss.points)} GNSS point(s)"
            if cfg.gnss is not None else "")
    verdict = "OVER BUDGET" if over else "OK"
    print(f"{args.config}: {verdict} — site {cfg.site}, rtu {cfg.rtu}, {len(cfg.buses)} bus(es), "
          f"{len(cfg.devices)} device(s), {len(cfg.sensors)} sensor(s){gnss}, "
          f"{readings_per_second(cfg):.1f} readings/s")
    print(render(["bus", "protocol", "devices", "load", "verdict"],
                 [[b["bus"], b["protocol"], b["devices"], f"{b['load'] * 100:.0f} %",
                   b["verdict"]] for b in budgets]))
    if over:
        print(f"problem: bus(es) {', '.join(over)} over budget: polls will be skipped "
              "(longer intervals, fewer devices per bus or a higher baud rate)")
        return EXIT_FAILURE
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from . import logs
    from .daemon import Daemon

    try:
        cfg = _load(args, quarantine=True)
    except ConfigError as err:
        _print_config_error(err)
        return EXIT_BAD_INPUT
    logs.configure(cfg.log_level, args.log_format or cfg.log_format)
    import structlog

    log = structlog.get_logger("daq.cli")
    for p in cfg.quarantined:
        log.error("config_quarantined", path=p.path, line=p.line, problem=p.message,
                  hint=p.hint)
    try:
        daemon = Daemon(cfg, state_dir=args.state_dir)
    except OSError as err:
        log.error("startup_failed", error=str(err))
        return EXIT_FAILURE
    daemon.install_signal_handlers()
    daemon.run_forever()
    return EXIT_OK


def cmd_drivers(args: argparse.Namespace) -> int:
    from .driver import discover

    found, failed = discover()
    rows = [{"name": n, "link": d.link_kind, "target": f"{d.__module__}.{d.__qualname__}",
             "status": "ok", "description": d.description or (d.__doc__ or "").strip()
             .splitlines()[0] if (d.description or d.__doc__) else ""}
            for n, d in sorted(found.items())]
    rows += [{"name": f.name, "link": "-", "target": f.target, "status": "quarantined",
              "description": f.error} for f in failed]
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print(render(["driver", "link", "status", "description"],
                     [[r["name"], r["link"], r["status"], r["description"]] for r in rows]))
    return EXIT_OK if not failed else EXIT_FAILURE


RUNTIME_DIR = Path("/run/daq")  # systemd RuntimeDirectory=daq: where the service's status is


def _state_dir(args: argparse.Namespace) -> Path:
    from .access import present

    if args.state_dir:
        return Path(args.state_dir)
    runtime = Path(os.environ.get("RUNTIME_DIRECTORY") or RUNTIME_DIR)
    if present(runtime / "status.json"):  # also one we may not read: read_status says who may
        return runtime
    if args.config:
        from . import config

        return Path(config.load(args.config).state_dir)
    return Path(os.environ.get("STATE_DIRECTORY", "/var/lib/daq"))


def cmd_status(args: argparse.Namespace) -> int:
    from .status import read_status
    from .status_view import show_status, unknown_name

    try:
        state_dir = _state_dir(args)
    except ConfigError as err:
        _print_config_error(err)
        return EXIT_BAD_INPUT
    status, problem = read_status(state_dir)
    if status is None:
        print(f"daq: {problem}", file=sys.stderr)
        return EXIT_FAILURE
    wrong = unknown_name(status, args.device, args.sensor)
    if wrong:
        print(f"daq status: {wrong}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.json:
        print(json.dumps(status, indent=1))
    else:
        print(show_status(status, device=args.device, sensor=args.sensor))
    return EXIT_OK if status.get("running") else EXIT_FAILURE


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(args)


EPILOG = """examples:
  daq check --config /etc/daq/site.yaml      validate a configuration (exit 2 on a problem)
  daq status                                 what the running daemon is doing
  daq ports                                  serial ports, their USB ids and who holds them
  daq modbus read /dev/ttyUSB0 --unit 7 --address 0 --count 4 --decode all
  daq modbus scan /dev/ttyUSB0 --baud 9600 --ids 1-30
  daq mqtt check --config /etc/daq/site.yaml test the broker link step by step
  daq completion bash > /etc/bash_completion.d/daq

exit codes: 0 ok, 1 runtime failure, 2 bad input or configuration.
Every command takes --help; most take --json for scripts."""


def _command_of(argv: list[str]) -> str | None:
    """The sub-command named on a command line (top-level options take no value)."""
    return next((a for a in argv if not a.startswith("-")), None)


def _seconds(text: str) -> float:
    """A number of seconds ≥ 0 (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} s: give 0 (run until Ctrl-C) or more")
    return value


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with ``argv``, only the parts that command line needs are imported."""
    full = argv is None or _command_of(argv) in ("gnss", "completion")
    p = argparse.ArgumentParser(
        prog="daq", description="damwatch-daq: dam-safety data acquisition.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"damwatch-daq {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("run", help="run the daemon")
    r.add_argument("--config", required=True, help="YAML configuration file")
    r.add_argument("--mqtt-url", help="override mqtt.url, e.g. mqtt://127.0.0.1:1883")
    r.add_argument("--insecure", action="store_true",
                   help="let --mqtt-url mqtt:// replace the configuration's TLS or password")
    r.add_argument("--state-dir", help="override state_dir (outbox, status file)")
    r.add_argument("--log-format", choices=("json", "console"), help="override log.format")
    r.set_defaults(func=cmd_run)

    c = sub.add_parser("check", help="validate a configuration; exit 2 on any problem")
    c.add_argument("--config", required=True)
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_check)

    d = sub.add_parser("drivers", help="list installed drivers (and quarantined ones)")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=cmd_drivers)

    s = sub.add_parser("status", help="state of the running daemon")
    s.add_argument("--config", help="find the state directory from this configuration")
    s.add_argument("--state-dir", help="the daemon's state directory")
    s.add_argument("--device", help="show only this device (and its last values)")
    s.add_argument("--sensor", help="the latest engineering values of one sensor, e.g. P07")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_status)

    m = sub.add_parser("demo", help="run the bundled demo with a local broker and watch it")
    m.add_argument("--config", default=None, help="default: the bundled configs/demo.yaml")
    m.add_argument("--mqtt-url", help="use this broker instead of starting a mosquitto")
    m.add_argument("--state-dir", help="default: a temporary directory")
    m.add_argument("--duration", type=_seconds, default=0,
                   help="stop after N seconds (0: never)")
    m.set_defaults(func=cmd_demo)

    for name in _PLUGGED:
        _plug(name, sub)
    g = sub.add_parser("gnss", help=GNSS_HELP, description=GNSS_HELP + ".")
    gsub = g.add_subparsers(dest="gnss_command", required=True, metavar="GNSS_COMMAND")
    if full:
        for name in _PLUGGED_GNSS:
            _plug(name, gsub)
    for name, text in CORE_EXAMPLES.items():
        if name in sub.choices and not sub.choices[name].description:
            sub.choices[name].description = text
    _plain_help(p)
    return p


CORE_EXAMPLES = {
    "run": "Run the daemon (systemd runs this).\n\nexamples:\n"
           "  daq run --config /etc/daq/site.yaml\n"
           "  daq run --config site.yaml --mqtt-url mqtt://127.0.0.1:1883 --state-dir /tmp/s",
    "check": "Validate a configuration: every problem with its path and line, and the wire "
             "budget\nof each bus. Exit 2 on any problem.\n\nexamples:\n"
             "  daq check --config /etc/daq/site.yaml\n"
             "  daq check --config site.yaml --json",
    "drivers": "The installed drivers, and those that failed to load with the reason.\n\n"
               "examples:\n  daq drivers\n  daq drivers --json",
    "status": "What the running daemon is doing.\n\nexamples:\n  daq status\n"
              "  daq status --device vw_a\n  daq status --sensor P07 --json",
    "demo": "The bundled demo: simulated instruments, a local broker and a live view.\n\n"
            "examples:\n  daq demo\n  daq demo --duration 60",
}


def _plain_help(parser: argparse.ArgumentParser) -> None:
    """Help texts for a terminal: no reST markup (``x``, :class:`x`), examples kept laid out.

    Sub-command modules often pass their docstring as the description; this keeps the
    docstring good for Sphinx and the help good for a person.
    """
    import re

    for action in parser._actions:  # argparse has no public walk of its tree
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for child in action.choices.values():
            text = child.description or ""
            if "``" in text or ":" in text:
                text = re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", text).replace("``", "")
                child.description = re.sub(r"::\n", ":\n", text)
            if "example" in (child.description or "").lower():
                child.formatter_class = argparse.RawDescriptionHelpFormatter
            _plain_help(child)


def _plug(module: str, sub: Any) -> None:
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name != module:
            raise  # the module exists but is broken: say so loudly
        return  # that part is not in this build
    mod.register(sub)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if args.command != "run":  # run configures logging from its configuration
        from . import logs

        logs.configure("warning")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return EXIT_FAILURE
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

