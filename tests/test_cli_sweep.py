"""Every technician command, swept: never a traceback when the user lacks rights or no
daemon runs.

The commands come from the CLI's own parser (every leaf of ``daq …``), so a command is swept
as soon as it is registered. The few that cannot be (the daemon itself, a player that serves
until stopped) are listed with the reason, and the arguments a command cannot do without
come from a small table; a command that needs arguments and is in neither table fails
``test_every_command_is_swept``, and so does an entry for a command that is gone. Commands
that take ``--state-dir`` run once with it and once with ``--config`` only (whose state_dir
is the same directory), each in three situations:

(a) as ``nobody`` against a daemon run as root whose state directory is 0750 root:root (as
    ``StateDirectoryMode=0750`` under systemd), its control socket 0660 inside;
(b) no daemon, an empty state directory;
(c) the state directory missing.

Each must exit with a documented code (0 ok, 1 runtime failure, 2 bad input), print no
traceback, and say what is wrong when it fails: a command that uses the state directory
names it (or the path in it that stops it), and in (a) says "permission denied" and fails
(an unreadable state is never reported as an empty one). In (b) and (c) the state directory
is left as it was: no command creates one or writes in it.

The commands run in parallel, four at a time (each is a process: the user switch needs one).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from daq.cli import build_parser
from daq.testing import ModbusTestServer

from .clitools import NO_BROKER, write_config
from .conftest import REPO, SHARED, wait_for
from .test_cli_access import MANUAL, _switch_prefix

# Not swept, and why: each would start something that runs until stopped.
NOT_SWEPT = {
    "run": "the daemon itself",
    "demo": "starts a daemon and a broker of its own",
    "gnss replay": "plays a receiver log to a port until stopped",
}
SESSION = "P01/20220225T1200Z"
# The arguments a command cannot do without (besides --state-dir / --config, added for every
# command that takes them). A port or URL is the simulated line or pyserial's loopback.
ARGS: dict[str, list[str]] = {
    "convert": ["list"],
    "completion": ["bash"],
    "ports": ["/dev/ttyS0"],
    "modbus read": ["sim://sweep", "--unit", "1", "--kind", "input", "--address", "0",
                    "--count", "2"],
    "modbus scan": ["sim://sweep", "--ids", "1-2", "--timeout", "0.05"],
    "modbus trace": ["loop://", "--duration", "0.2"],
    "sdi12 scan": ["loop://", "--addresses", "01", "--timeout", "0.05"],
    "sdi12 identify": ["loop://", "--address", "0", "--timeout", "0.05"],
    "sdi12 measure": ["loop://", "--address", "0", "--timeout", "0.05"],
    "mqtt check": ["--mqtt-url", NO_BROKER, "--timeout", "2"],
    "read": ["unit1"],
    "alarm ack": ["LEVEL/level.h"],
    "alarm shelve": ["LEVEL/level.h", "--for", "1h"],
    "alarm unshelve": ["LEVEL/level.h"],
    "alarm reset": ["LEVEL/level.h"],
    "alarm oos": ["LEVEL/level.h"],
    "manual add": ["LEVEL", "80.5"],
    "manual import": ["{files}/readings.csv"],
    "manual report": ["LEVEL"],
    "calibrate": ["history", "LEVEL"],
    "gnss decode": [str(SHARED / "data/gnss/raw/rtklib_samples/testglo.rtcm3")],
    "gnss solve": ["--rover", "{files}/none.obs", "--base", "{files}/none.obs", "--nav",
                   "{files}/none.nav", "--base-xyz=-2267749.0,5009154.0,3221290.0"],
    "gnss export": [SESSION, "--rinex", "{files}/rinex"],
    "gnss series": ["P01"],
}
# Without a daemon these do their work themselves, without the state directory: their
# failure there names what they used instead (read polls the configuration's bus).
WITHOUT_DAEMON = {"read": "{bus}"}
BUS = "127.0.0.1:1"  # the bus of situations (b) and (c): nothing listens
WORKERS = 4


def leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
           ) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """(``"gnss sessions"``, its parser) for every command a person can run."""
    subs = [a for a in parser._actions  # argparse has no public walk of its tree
            if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield " ".join(path), parser
    for action in subs:
        for name, child in action.choices.items():
            yield from leaves(child, (*path, name))


def options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {s: a for a in parser._actions for s in a.option_strings}


def needs_arguments(parser: argparse.ArgumentParser) -> bool:
    """Whether the command cannot run without arguments other than --state-dir/--config."""
    for a in parser._actions:
        if a.option_strings:
            if a.required and a.dest not in ("config", "state_dir"):
                return True
        elif a.nargs not in ("?", "*") and not isinstance(a, argparse._SubParsersAction):
            return True
    return False


def command_table() -> dict[str, argparse.ArgumentParser]:
    return {name: p for name, p in leaves(build_parser()) if name not in NOT_SWEPT}


def variants(name: str, parser: argparse.ArgumentParser) -> list[list[str]]:
    """The command lines of one command, {state}, {config} and {files} still to fill in."""
    opts = options(parser)
    base = [*name.split(), *ARGS.get(name, [])]
    config_required = "--config" in opts and opts["--config"].required
    out = []
    if "--state-dir" in opts:
        out.append([*base, "--state-dir", "{state}",
                    *(["--config", "{config}"] if config_required else [])])
    if "--config" in opts:
        out.append([*base, "--config", "{config}"])
    return out or [base]


def uses_state(parser: argparse.ArgumentParser) -> bool:
    return "--state-dir" in options(parser)


def test_every_command_is_swept() -> None:
    table = {name: p for name, p in leaves(build_parser())}
    stale = sorted((set(ARGS) | set(NOT_SWEPT)) - set(table))
    assert not stale, f"tables name commands the CLI no longer has: {stale}"
    missing = sorted(n for n, p in table.items()
                     if n not in NOT_SWEPT and n not in ARGS and needs_arguments(p))
    assert not missing, (f"commands that need arguments to be swept: {missing}; give them "
                         "in ARGS (or say in NOT_SWEPT why they cannot be)")
    assert {"status", "gnss sessions", "buffer stats", "alarm list"} <= set(command_table())


@dataclass
class Situation:
    name: str
    state: Path           # the state directory the commands are given
    config: Path          # a configuration whose state_dir is ``state``
    files: Path           # a directory the commands may read and write
    prefix: list[str]     # runs a command as another user, or []


@dataclass
class Outcome:
    command: str
    argv: list[str]
    code: int | None
    stdout: str
    stderr: str


def _env(situation: Situation) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("STATE_DIRECTORY", "RUNTIME_DIRECTORY", "NOTIFY_SOCKET")}
    # A machine's own daemon under /run/daq is never looked at.
    return {**env, "HOME": "/tmp", "PYTHONDONTWRITEBYTECODE": "1", "NO_COLOR": "1",
            "RUNTIME_DIRECTORY": str(situation.files / "no-runtime-dir")}


def run_one(situation: Situation, command: str, line: list[str]) -> Outcome:
    argv = [a.format(state=situation.state, config=situation.config, files=situation.files)
            for a in line]
    try:
        res = subprocess.run([*situation.prefix, sys.executable, "-m", "daq", *argv],
                             cwd=REPO, capture_output=True, text=True, timeout=60,
                             env=_env(situation), stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as err:
        return Outcome(command, argv, None, str(err.stdout or ""), str(err.stderr or ""))
    return Outcome(command, argv, res.returncode, res.stdout, res.stderr)


def problems(situation: Situation, outcome: Outcome,
             parser: argparse.ArgumentParser) -> list[str]:
    """What is wrong with one command's answer in one situation (nothing: [])."""
    out = []
    text = outcome.stderr.strip() or outcome.stdout.strip()
    if outcome.code is None:
        out.append("did not finish within 60 s")
    elif outcome.code not in (0, 1, 2):
        out.append(f"exit {outcome.code}, not a documented code (0, 1, 2)")
    if "Traceback" in outcome.stderr + outcome.stdout:
        out.append("a traceback")
    elif outcome.code:
        own = situation.name != "nobody" and outcome.command in WITHOUT_DAEMON
        if not text:
            out.append("failed without a word")
        elif own and WITHOUT_DAEMON[outcome.command].format(bus=BUS) not in text:
            out.append(f"does not name {WITHOUT_DAEMON[outcome.command].format(bus=BUS)}")
        elif uses_state(parser) and not own:
            if str(situation.state) not in text:
                out.append(f"does not name the state directory {situation.state}")
            elif situation.name == "missing" and "does not exist" not in text:
                out.append("does not say the state directory does not exist")
    if uses_state(parser) and situation.name == "nobody":
        if outcome.code == 0:
            out.append("exit 0 on a state directory this user may not enter")
        elif "permission denied" not in text:
            out.append("does not say permission denied")
    return out


def sweep(situation: Situation) -> tuple[list[Outcome], list[str]]:
    table = command_table()
    jobs = [(name, line) for name, p in table.items() for line in variants(name, p)]
    with ThreadPoolExecutor(WORKERS) as pool:
        outcomes = list(pool.map(lambda j: run_one(situation, *j), jobs))
    report = []
    for o in outcomes:
        for p in problems(situation, o, table[o.command]):
            report.append(f"daq {' '.join(o.argv)}: {p} (exit {o.code})\n"
                          f"    stderr: {o.stderr.strip()[-600:]!r}\n"
                          f"    stdout: {o.stdout.strip()[-300:]!r}")
    return outcomes, report


@pytest.fixture
def files() -> Iterator[Path]:
    """A directory every user may read and write (pytest's tmp_path is root's alone)."""
    d = Path(tempfile.mkdtemp(prefix="daq-sweep-"))
    d.chmod(0o777)
    (d / "readings.csv").write_text("sensor,value,time\nLEVEL,80.5,2026-11-30T08:00:00Z\n")
    (d / "readings.csv").chmod(0o644)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _config(files: Path, url: str, state: Path) -> Path:
    cfg = write_config(files / "site.yaml", url, "modbus_tcp", units=(1,),
                       interval="500ms", state_dir=state)
    cfg.write_text(cfg.read_text() + MANUAL)
    cfg.chmod(0o644)
    return cfg


def test_as_a_user_outside_the_daemons_group(run_daemon: Any, files: Path) -> None:
    prefix = _switch_prefix()
    if isinstance(prefix, str):
        pytest.skip(prefix)
    state = files / "state"
    with ModbusTestServer.tcp(units=(1,)) as srv:
        srv.set_value(1, 0, 12.25, "float32")
        cfg = _config(files, srv.url, state)
        d = run_daemon(cfg, NO_BROKER, state_dir=state)
        wait_for(lambda: (s := d.status()) and s["outbox"]["accepted"] >= 2
                 and (state / "control.sock").exists(), 60, "the daemon's first polls")
        state.chmod(0o750)  # StateDirectoryMode=0750, as under systemd
        outcomes, report = sweep(Situation("nobody", state, cfg, files, prefix))
        assert d.proc is not None and d.proc.poll() is None, "the daemon died"
    assert not report, f"{len(report)} of {len(outcomes)} answers wrong:\n" + "\n".join(report)


def test_no_daemon_and_an_empty_state_dir(files: Path) -> None:
    state = files / "state"
    state.mkdir()
    cfg = _config(files, BUS, state)
    outcomes, report = sweep(Situation("empty", state, cfg, files, []))
    assert not report, f"{len(report)} of {len(outcomes)} answers wrong:\n" + "\n".join(report)
    assert list(state.iterdir()) == []


def test_no_state_dir(files: Path) -> None:
    state = files / "state"
    cfg = _config(files, BUS, state)
    outcomes, report = sweep(Situation("missing", state, cfg, files, []))
    assert not report, f"{len(report)} of {len(outcomes)} answers wrong:\n" + "\n".join(report)
    assert not state.exists()
