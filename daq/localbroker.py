"""A throw-away mosquitto on a free loopback port, for the demo and the tests.

Never the machine's own broker: the port is picked free, the configuration and the
persistence file live in a directory of the caller's.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_mosquitto() -> str | None:
    exe = shutil.which("mosquitto")
    if exe:
        return exe
    return "/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None


class LocalBroker:
    """``start()`` launches mosquitto, ``stop()`` ends it (SIGTERM: sessions are saved, so a
    persistent subscriber's QoS 1 queue survives a restart on the same port)."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        exe = find_mosquitto()
        if exe is None:
            raise FileNotFoundError("mosquitto is not installed (apt-get install -y mosquitto)")
        self.exe = exe
        self.port = port or free_port()
        self.workdir = workdir
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(self.common() + f"listener {self.port} 127.0.0.1\n"
                             "allow_anonymous true\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def common(self) -> str:
        """Settings for any configuration of this broker (write listeners after them)."""
        # as root, mosquitto drops to its own user, which cannot read the caller's 0700
        # working directory (persistence, test keys): stay the caller instead
        user = "user root\n" if os.geteuid() == 0 else ""
        return (f"{user}persistence true\npersistence_location {self.workdir}/\n"
                "autosave_interval 1\nmax_queued_messages 0\nmax_inflight_messages 0\n")

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def accepting(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def start(self, timeout: float = 10.0) -> LocalBroker:
        self.proc = subprocess.Popen([self.exe, "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not self.accepting():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not start on port {self.port}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
            self.proc = None
