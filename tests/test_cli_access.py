"""The technician's commands run as a user who may not use the daemon's files.

The daemon runs as root (as the tests do); the commands run as ``nobody`` (``setpriv``, else
``runuser``) against its real control socket (0660 root:root), its state directory and
outbox. Each must say what it could not open, which part of the path stops this user, who
owns it and the way out (the group to join, or ``sudo``), exit 1 (a runtime failure, as
documented) and print no traceback.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from daq.localbroker import LocalBroker
from daq.testing import ModbusTestServer

from .clitools import NO_BROKER, daq, write_config
from .conftest import REPO, wait_for

NOBODY = "nobody"
MANUAL = """\
manual:
  sensors:
    LEVEL: {quantity: water_level, unit: m, range: [60, 95], tolerance: 0.05}
"""


def _switch_prefix() -> list[str] | str:
    """The command prefix that runs a program as ``nobody``, or why there is none."""
    if os.geteuid() != 0:
        return "the tests do not run as root, so they cannot switch to an unprivileged user"
    try:
        user = pwd.getpwnam(NOBODY)
    except KeyError:
        return f"there is no user {NOBODY!r} on this machine"
    group = grp.getgrgid(user.pw_gid).gr_name
    candidates = []
    if shutil.which("setpriv"):
        candidates.append(["setpriv", f"--reuid={NOBODY}", f"--regid={group}",
                           "--clear-groups"])
    if shutil.which("runuser"):
        candidates.append(["runuser", "-u", NOBODY, "--"])
    why = "neither setpriv nor runuser is installed"
    for prefix in candidates:
        probe = subprocess.run([*prefix, sys.executable, "-m", "daq", "--version"],
                               cwd=REPO, capture_output=True, text=True, timeout=60,
                               env=_env())
        if probe.returncode == 0:
            return prefix
        why = (f"{prefix[0]} cannot run this Python as {NOBODY} (the checkout or the "
               f"interpreter is not readable by others?): {probe.stderr.strip()[-300:]}")
    return why


def _env() -> dict[str, str]:
    return {**os.environ, "HOME": "/tmp", "PYTHONDONTWRITEBYTECODE": "1"}


@pytest.fixture(scope="module")
def as_nobody() -> list[str]:
    prefix = _switch_prefix()
    if isinstance(prefix, str):
        pytest.skip(prefix)
    return prefix


@pytest.fixture
def shared() -> Iterator[Path]:
    """A directory ``nobody`` may enter (pytest's tmp_path is root's alone)."""
    d = Path(tempfile.mkdtemp(prefix="daq-access-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def other_group() -> grp.struct_group:
    """A group ``nobody`` is not in, standing for the daemon's group (daq)."""
    mine = pwd.getpwnam(NOBODY).pw_gid
    for g in grp.getgrall():
        if g.gr_gid not in (0, mine) and NOBODY not in g.gr_mem:
            return g
    pytest.skip("no group without nobody in it to give the socket to")


def started(run_daemon: Any, shared: Path, url: str) -> tuple[Path, Path]:
    """(configuration, state directory) of a running daemon, as root."""
    cfg = write_config(shared / "site.yaml", url, "modbus_tcp", units=(1,),
                       interval="500ms", state_dir=shared / "state")
    d = run_daemon(cfg, NO_BROKER, state_dir=shared / "state")
    wait_for(lambda: (s := d.status()) and s["outbox"]["accepted"] >= 2
             and (shared / "state" / "control.sock").exists(), 60, "the daemon's first polls")
    return cfg, shared / "state"


def denied(prefix: list[str], *args: str, code: int = 1) -> str:
    """Run ``daq ARGS`` as nobody; it must fail with ``code`` and no traceback: its stderr
    (its stdout too for a command that reports on stdout, such as ``mqtt check``)."""
    res = subprocess.run([*prefix, sys.executable, "-m", "daq", *args], cwd=REPO,
                         capture_output=True, text=True, timeout=90, env=_env())
    assert "Traceback" not in res.stderr, res.stderr
    assert res.returncode == code, (args, res.returncode, res.stdout, res.stderr)
    return res.stderr + res.stdout


def test_control_socket_of_root_says_who_may(as_nobody: list[str], run_daemon: Any,
                                             shared: Path) -> None:
    with ModbusTestServer.tcp(units=(1,)) as srv:
        srv.set_value(1, 0, 12.25, "float32")
        cfg, state = started(run_daemon, shared, srv.url)
        sock = state / "control.sock"
        assert (sock.stat().st_mode & 0o777, sock.stat().st_uid) == (0o660, 0)
        read = denied(as_nobody, "read", "unit1", "--config", str(cfg), "--state-dir",
                      str(state))
        tail = denied(as_nobody, "tail", "--state-dir", str(state))
        alarm = denied(as_nobody, "alarm", "list", "--state-dir", str(state))
        group = other_group()
        os.chown(sock, 0, group.gr_gid)  # as the service's group (daq) owns it in the field
        grouped = denied(as_nobody, "read", "unit1", "--config", str(cfg))
        as_root = daq("read", "unit1", "--config", str(cfg), "--json")
    for err in (read, tail, alarm):
        assert f"not allowed to use the daemon's control socket {sock}" in err, err
        assert (f"the socket {sock} is srw-rw---- root:root and you are nobody; only root "
                "may: run the command with sudo") in err, err
    assert read.startswith("daq read: ") and tail.startswith("daq tail: ")
    assert (f"members of group {group.gr_name} may: `sudo usermod -aG {group.gr_name} "
            "nobody`, then log in again, or run the command with sudo") in grouped, grouped
    assert as_root.returncode == 0, as_root.stderr  # the same socket serves its owner
    assert '"served_by"' in as_root.stdout and "this command" not in as_root.stdout


def test_state_dir_nobody_may_enter(as_nobody: list[str], run_daemon: Any,
                                    shared: Path) -> None:
    with ModbusTestServer.tcp(units=(1,)) as srv:
        srv.set_value(1, 0, 12.25, "float32")
        cfg, state = started(run_daemon, shared, srv.url)
        state.chmod(0o750)  # StateDirectoryMode=0750, as under systemd
        way = (f"the directory {state} (on the way to {{}}) is drwxr-x--- root:root and you "
               "are nobody; only root may: run the command with sudo")
        status = denied(as_nobody, "status", "--state-dir", str(state))
        status_cfg = denied(as_nobody, "status", "--config", str(cfg))
        stats = denied(as_nobody, "buffer", "stats", "--state-dir", str(state))
        export = denied(as_nobody, "buffer", "export", "--config", str(cfg), "--since", "1h")
        read = denied(as_nobody, "read", "unit1", "--config", str(cfg))
        tail = denied(as_nobody, "tail", "--config", str(cfg))
        manual_cfg = shared / "manual.yaml"
        manual_cfg.write_text(cfg.read_text() + MANUAL)
        manual = denied(as_nobody, "manual", "report", "LEVEL", "--config",
                        str(manual_cfg), code=2)
        state.chmod(0o755)
        output = denied(as_nobody, "buffer", "export", "--state-dir", str(state),
                        "-o", str(shared / "out.csv"), code=2)
        outbox = state / "outbox.sqlite3"
        group = other_group()
        os.chown(outbox, 0, group.gr_gid)
        outbox.chmod(0o640)  # UMask=0027 under systemd: the daq group may read it
        unreadable = denied(as_nobody, "buffer", "stats", "--state-dir", str(state))
    assert status.startswith(f"daq: cannot read the daemon's status {state}/status.json: ")
    assert way.format(f"{state}/status.json") in status, status
    assert way.format(f"{state}/status.json") in status_cfg, status_cfg
    for err in (stats, export):
        assert err.startswith(f"daq buffer: cannot read the outbox {state}/outbox.sqlite3: ")
        assert way.format(f"{state}/outbox.sqlite3") in err, err
    for err in (read, tail):
        assert way.format(f"{state}/control.sock") in err, err
    assert manual.startswith(f"daq manual: cannot read {state}/outbox.sqlite3: ")
    assert way.format(f"{state}/outbox.sqlite3") in manual, manual
    assert (f"daq buffer: cannot write {shared}/out.csv: permission denied: the directory "
            f"{shared} (to write {shared}/out.csv in) is drwxr-xr-x root:root and you are "
            "nobody; only root may") in output, output
    assert (f"the file {outbox} is -rw-r----- root:{group.gr_name} and you are nobody; "
            f"members of group {group.gr_name} may") in unreadable, unreadable


def test_files_a_technician_names_that_are_not_theirs(as_nobody: list[str],
                                                      shared: Path) -> None:
    """The configuration, the broker's password file and TLS key."""
    broker = LocalBroker(shared).start()  # only listens: the checks stop before MQTT
    try:
        secret = shared / "secret.yaml"
        secret.write_text("site: s\nrtu: r\nbuses: {}\n")
        secret.chmod(0o600)  # /etc/daq/daq.yaml is 0640 root:daq
        password = shared / "password"
        password.write_text("pw\n")
        password.chmod(0o600)
        pw_cfg = shared / "pw.yaml"
        pw_cfg.write_text(f"site: s\nrtu: r\nbuses: {{}}\nmqtt:\n  url: {broker.url}\n"
                          f"  username: rtu-7\n  password: {{file: {password}}}\n"
                          "  allow_plain_password: true\n")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "3", "-subj",
                        "/CN=rtu-7", "-keyout", "rtu.key", "-out", "rtu.crt"], cwd=shared,
                       check=True, capture_output=True, timeout=60)
        (shared / "rtu.crt").chmod(0o644)
        (shared / "rtu.key").chmod(0o600)
        tls_cfg = shared / "tls.yaml"
        tls_cfg.write_text(f"site: s\nrtu: r\nbuses: {{}}\nmqtt:\n"
                           f"  url: mqtts://127.0.0.1:{broker.port}\n  tls: {{ca_file: "
                           f"{shared}/rtu.crt, cert_file: {shared}/rtu.crt, key_file: "
                           f"{shared}/rtu.key}}\n")
        config = denied(as_nobody, "check", "--config", str(secret), code=2)
        pw = denied(as_nobody, "mqtt", "check", "--config", str(pw_cfg))
        key = denied(as_nobody, "mqtt", "check", "--config", str(tls_cfg))
    finally:
        broker.stop()
    only_root = "and you are nobody; only root may: run the command with sudo"
    assert (f"cannot read file: permission denied: the file {secret} is -rw------- "
            f"root:root {only_root}") in config, config
    assert f"cannot read the password file {password}" in pw
    assert f"the file {password} is -rw------- root:root {only_root}" in pw, pw
    assert (f"tls.key_file: cannot read {shared}/rtu.key: permission denied: the file "
            f"{shared}/rtu.key is -rw------- root:root {only_root}") in key, key
