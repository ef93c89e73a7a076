"""Helpers for the technician's CLI tests: a config on a real bus, the CLI as a subprocess,
and a real terminal (tmux) whose screen a test reads as a person would."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .conftest import REPO, wait_for

NO_BROKER = "mqtt://127.0.0.1:1"  # nothing listens: readings stay in the outbox


def write_config(path: Path, url: str, protocol: str = "modbus_rtu",
                 units: tuple[int, ...] = (1, 2), interval: str = "1s",
                 state_dir: Path | None = None) -> Path:
    """Radar level on each unit (register 0, float32 m), a sensor on unit 1 (LEVEL)."""
    devices = "\n".join(
        f"      unit{u}: {{driver: modbus, address: {u}, interval: {interval}, "
        f"backoff_max: 2s, options: {{registers: [{{name: distance, address: 0, "
        f"type: float32, unit: m, quantity: distance}}]}}}}" for u in units)
    state = f"state_dir: {state_dir}\n" if state_dir else ""
    path.write_text(f"""\
site: test-site
rtu: rtu-7
{state}mqtt:
  reconnect_min: 200ms
  reconnect_max: 1s
outbox:
  commit_interval: 200ms
buses:
  line1:
    protocol: {protocol}
    url: {url.removeprefix('tcp://')}
    baudrate: 115200
    timeout: 300ms
    devices:
{devices}
sensors:
  LEVEL:
    kind: water_level
    calibration: {{id: RADAR-1, date: 2026-01-01}}
    inputs: {{distance: unit1/distance}}
    method: radar
    distance_unit: m
    zero_elevation: 95.000
    limits: {{level: {{min: 60.0, max: 95.0}}}}
""")
    return path


def daq(*args: str, timeout: float = 90, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daq", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO, env=env)


class Tmux:
    """A detached tmux session on its own server socket; ``screen()`` is what a person
    sees (capture-pane), ``wait_screen`` waits for text to appear there."""

    def __init__(self, tmp: Path, command: list[str], width: int = 160,
                 height: int = 45) -> None:
        if shutil.which("tmux") is None:
            raise RuntimeError("tmux is not installed (scripts/_setup.sh installs it)")
        self.sock = str(tmp / "tmux.sock")
        # The shell stays (no exec) so the pane outlives a command that exits, such as
        # `daq status`; its INT trap lets Ctrl-C reach the command but not end the pane.
        env = f"cd {shlex.quote(str(REPO))} && trap true INT; " + " ".join(
            shlex.quote(c) for c in command)
        self._tmux("new-session", "-d", "-s", "t", "-x", str(width), "-y", str(height),
                   "sh", "-c", env + "; sleep 600")

    def _tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-S", self.sock, *args], capture_output=True,
                              text=True, timeout=30, check=True,
                              env={**os.environ, "TERM": "xterm-256color"}).stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "t")

    def wait_screen(self, text: str, timeout: float = 60) -> str:
        return str(wait_for(lambda: self.screen() if text in self.screen() else None,
                            timeout, f"{text!r} on the terminal"))

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "t", *keys)

    def close(self) -> None:
        subprocess.run(["tmux", "-S", self.sock, "kill-server"], capture_output=True,
                       timeout=30)
        time.sleep(0.1)
