"""systemd integration: the notify/watchdog protocol over a real Unix socket, and the unit."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from daq.sdnotify import Notifier
from daq.testing import ModbusTestServer

from .conftest import REPO
from .test_daemon_e2e import write_config


def test_notifier_is_silent_outside_systemd(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without $NOTIFY_SOCKET every call is a no-op that reports False."""
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    n = Notifier()
    assert not n.enabled and not n.ready() and not n.watchdog()


def test_notifier_abstract_socket_and_watchdog_period(monkeypatch: pytest.MonkeyPatch) -> None:
    """An '@' address means the abstract namespace; WATCHDOG_USEC gives a half-period ping."""
    name = f"daq-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as srv:
        srv.bind("\0" + name)
        monkeypatch.setenv("WATCHDOG_USEC", "4000000")
        monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
        n = Notifier("@" + name)
        assert n.watchdog_interval == 2.0
        assert n.ready("hello")
        assert srv.recv(4096) == b"READY=1\nSTATUS=hello"


def test_daemon_speaks_notify_protocol(tmp_path: Path) -> None:
    """Under a notify socket the daemon sends READY=1 once started, WATCHDOG=1 at half the
    WatchdogSec period while healthy, and STOPPING=1 on SIGTERM."""
    sock_path = tmp_path / "notify.sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(str(sock_path))
    srv.settimeout(20)
    with ModbusTestServer.tcp(units=(1,)) as modbus:
        cfg = write_config(tmp_path / "c.yaml", modbus.url, "modbus_tcp", {1: 1.0})
        runtime = tmp_path / "run"
        env = {**os.environ, "NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "1000000",
               "RUNTIME_DIRECTORY": str(runtime)}
        env.pop("WATCHDOG_PID", None)
        proc = subprocess.Popen([sys.executable, "-m", "daq", "run", "--config", str(cfg),
                                 "--state-dir", str(tmp_path / "state")], env=env, cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            got: list[tuple[float, bytes]] = []
            while not any(m == b"WATCHDOG=1" for _, m in got[1:]) or len(got) < 6:
                got.append((time.monotonic(), srv.recv(4096)))
            # under systemd the status file lives in RuntimeDirectory (tmpfs), not on flash
            shown = subprocess.run([sys.executable, "-m", "daq", "status"], env=env,
                                   capture_output=True, text=True, timeout=60)
            proc.send_signal(signal.SIGTERM)
            while b"STOPPING=1" not in got[-1][1]:
                got.append((time.monotonic(), srv.recv(4096)))
            assert proc.wait(20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            srv.close()
    assert (runtime / "status.json").exists()
    assert not (tmp_path / "state" / "status.json").exists()
    assert shown.returncode == 0 and "— running" in shown.stdout, shown.stdout + shown.stderr
    messages = [m for _, m in got]
    assert messages[0].startswith(b"READY=1\nSTATUS=acquiring from 1 devices")
    pings = [t for t, m in got if m == b"WATCHDOG=1"]
    assert len(pings) >= 4
    assert messages[-1] == b"STOPPING=1"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd not installed")
def test_unit_file_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """systemd-analyze verify accepts the shipped unit (paths pointed at this install)."""
    daq = shutil.which("daq")
    assert daq, "the daq console script is not installed"
    unit = (REPO / "systemd" / "daq.service").read_text().replace("/usr/local/bin/daq", daq)
    text = unit
    for key in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "StateDirectory=",
                "CacheDirectory=", "SupplementaryGroups=dialout", "ProtectSystem=strict",
                "NoNewPrivileges=yes", "PrivateTmp=yes", "RestrictAddressFamilies="):
        assert key in text, key
    path = tmp_path / "daq.service"
    path.write_text(unit)
    res = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True,
                         text=True, timeout=60)
    problems = [line for line in (res.stdout + res.stderr).splitlines()
                if "daq.service" in line]
    assert res.returncode == 0 and not problems, res.stdout + res.stderr
