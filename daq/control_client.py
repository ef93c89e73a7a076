"""The client side of the control socket (``daq read``, ``daq tail``; see daq/control.py)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .access import denied, present
from .control import PROTOCOL_VERSION, RequestError, socket_path


class ControlUnavailable(Exception):
    """No daemon answers on the control socket."""


class ControlDenied(Exception):
    """A daemon's socket is there, but this user may not use it."""


class Client:
    """``with Client(path) as c: c.call("ping")``; errors come back as RequestError."""

    def __init__(self, path: str | os.PathLike[str], timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(str(self.path))
        except PermissionError:
            self.sock.close()
            raise ControlDenied(f"not allowed to use the daemon's control socket "
                                f"{self.path}: {denied(self.path, os.R_OK | os.W_OK)}"
                                ) from None
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


def candidate_dirs(state_dir: str | None = None,
                   config_state_dir: str | None = None) -> list[Path]:
    """Where a running daemon keeps its socket and status file, most specific first: the
    given state dir, the runtime dir (``$RUNTIME_DIRECTORY`` or /run/daq, under systemd),
    the configuration's state dir."""
    dirs = [Path(state_dir)] if state_dir else []
    dirs.append(Path(os.environ.get("RUNTIME_DIRECTORY") or "/run/daq"))
    if config_state_dir:
        dirs.append(Path(config_state_dir))
    return dirs


def find_socket(state_dir: str | None = None, config_state_dir: str | None = None) -> Path:
    """The first of the candidate directories holding a socket (else the first one); one
    this user may not look into counts as holding it, so that connecting says who may."""
    dirs = candidate_dirs(state_dir, config_state_dir)
    return next((socket_path(d) for d in dirs if present(socket_path(d))),
                socket_path(dirs[0]))


def where(args: Any) -> tuple[str | None, str | None]:
    """(``--state-dir``, the state_dir of ``--config`` when no --state-dir is given): where
    a command looks for the daemon's socket. A bad configuration raises ConfigError."""
    if args.config and not args.state_dir:
        from . import config

        return None, config.load(args.config).state_dir
    return args.state_dir, None


def connect(state_dir: str | None = None, config_state_dir: str | None = None,
            timeout: float = 30.0) -> Client:
    """A client on the running daemon's socket, the first of :func:`candidate_dirs` that
    holds one; when none does, ControlUnavailable names every directory looked in, and
    says which of them do not exist (a wrong ``--state-dir``, a daemon never started)."""
    dirs = list(dict.fromkeys(candidate_dirs(state_dir, config_state_dir)))
    found = next((socket_path(d) for d in dirs if present(socket_path(d))), None)
    if found is None:
        where = " nor in ".join(str(d) + ("" if present(d) else " (which does not exist)")
                                for d in dirs)
        raise ControlUnavailable(f"no daemon answers: there is no control socket in {where}")
    return Client(found, timeout=timeout)


def running_daemon(state_dir: str | None = None,
                   config_state_dir: str | None = None) -> dict[str, Any] | None:
    """The status of a daemon that is running (fresh status file, live pid), if any."""
    from .status import read_status

    for d in candidate_dirs(state_dir, config_state_dir):
        st, _ = read_status(d)
        if st is not None and st.get("running"):
            return st
    return None
