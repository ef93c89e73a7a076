"""The client side of the control socket (``daq read``, ``daq tail``; see daq/control.py)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .control import PROTOCOL_VERSION, RequestError, socket_path


class ControlUnavailable(Exception):
    """No daemon answers on the control socket."""


class Client:
    """``with Client(path) as c: c.call("ping")``; errors come back as RequestError."""

    def __init__(self, path: str | os.PathLike[str], timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(str(self.path))
        except OSError as err:
            self.sock.close()
            raise ControlUnavailable(f"no daemon answers on {self.path}: "
                                     f"{err.strerror or err}") from None
        self.reader = self.sock.makefile("rb")
        self._id = 0

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.reader.close()
            self.sock.close()

    def _send(self, cmd: str, args: dict[str, Any]) -> Any:
        self._id += 1
        self.sock.sendall((json.dumps({"v": PROTOCOL_VERSION, "id": self._id, "cmd": cmd,
                                       "args": args}) + "\n").encode())
        return self._receive()

    def _receive(self) -> dict[str, Any]:
        line = self.reader.readline()
        if not line:
            raise ControlUnavailable(f"the daemon closed {self.path}")
        reply: dict[str, Any] = json.loads(line)
        if reply.get("ok") is False:
            e = reply.get("error") or {}
            raise RequestError(str(e.get("code")), str(e.get("message")))
        return reply

    def call(self, cmd: str, **args: Any) -> Any:
        return self._send(cmd, args).get("result")

    def stream(self, cmd: str, **args: Any) -> Iterator[Any]:
        self._send(cmd, args)
        self.sock.settimeout(None)
        while True:
            yield self._receive().get("event")


def find_socket(state_dir: str | None = None, config_state_dir: str | None = None) -> Path:
    """Where the running daemon's socket is: the given state dir, else the runtime dir
    (``$RUNTIME_DIRECTORY`` or /run/daq), else the configuration's state dir."""
    if state_dir:
        return socket_path(state_dir)
    candidates = [socket_path(os.environ.get("RUNTIME_DIRECTORY") or "/run/daq")]
    if config_state_dir:
        candidates.append(socket_path(config_state_dir))
    return next((c for c in candidates if c.exists()), candidates[-1])
