"""The daemon's local control socket: a Unix socket the technician's commands talk to.

The socket lives in the daemon's runtime directory (``$RUNTIME_DIRECTORY``, else the state
directory) as ``control.sock``, mode 0660: the service user and its group (technicians)
only, never on the network. The protocol is JSON lines, one request and one reply per line:

    → {"v": 1, "id": 7, "cmd": "ping", "args": {}}
    ← {"v": 1, "id": 7, "ok": true, "result": {...}}
    ← {"v": 1, "id": 7, "ok": false, "error": {"code": "unknown_command", "message": "..."}}

A streaming command (``subscribe``) answers once, then sends ``{"v": 1, "event": ...}``
lines until the client goes away. A malformed, unknown or oversized request gets an error
reply; nothing a client sends can stop the daemon. Commands are handlers registered by
name (``server.register("shelve", fn, peer=True)``: the handler also learns who asks,
uid and pid from the kernel), so alarm acknowledgement plugs in the same way.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger("daq.control")

PROTOCOL_VERSION = 1
SOCKET_NAME = "control.sock"
MAX_REQUEST = 64 * 1024  # bytes in one request line
MAX_CLIENTS = 16
SOCKET_MODE = 0o660


class RequestError(Exception):
    """A request the daemon refuses; ``code`` is a stable word scripts can test."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Handler:
    fn: Callable[..., Any]  # fn(args), or fn(args, peer) when peer is True
    params: dict[str, type | tuple[type, ...]]  # name → accepted type(s); all optional
    required: tuple[str, ...] = ()
    stream: bool = False  # fn(args) returns an iterator of events after the reply
    peer: bool = False  # fn(args, peer): who asks (uid, gid, pid), for an audit trail


def socket_path(runtime_dir: str | os.PathLike[str]) -> Path:
    return Path(runtime_dir) / SOCKET_NAME


def validate(handler: Handler, args: Any) -> dict[str, Any]:
    if not isinstance(args, dict):
        raise RequestError("bad_request", "'args' must be an object")
    unknown = sorted(set(args) - set(handler.params))
    if unknown:
        raise RequestError("bad_request", f"unknown argument(s): {', '.join(unknown)}; "
                           f"accepted: {', '.join(sorted(handler.params)) or 'none'}")
    for name in handler.required:
        if name not in args:
            raise RequestError("bad_request", f"missing argument {name!r}")
    for name, value in args.items():
        kind = handler.params[name]
        if isinstance(value, bool) and kind is not bool and bool not in (
                kind if isinstance(kind, tuple) else (kind,)):
            raise RequestError("bad_request", f"argument {name!r} has the wrong type")
        if not isinstance(value, kind):
            raise RequestError("bad_request", f"argument {name!r} has the wrong type")
    return args


def parse_request(line: bytes, handlers: dict[str, Handler]) -> tuple[Any, Handler, dict]:
    """(id, handler, args) of one request line, or RequestError (with the id if known)."""
    try:
        req = json.loads(line)
    except (ValueError, UnicodeDecodeError) as err:
        raise RequestError("bad_json", f"not a JSON request: {err}") from None
    if not isinstance(req, dict):
        raise RequestError("bad_request", "a request is a JSON object")
    if req.get("v") != PROTOCOL_VERSION:
        raise RequestError("bad_version", f"protocol version {req.get('v')!r} not "
                           f"supported; this daemon speaks v{PROTOCOL_VERSION}")
    cmd = req.get("cmd")
    if not isinstance(cmd, str) or cmd not in handlers:
        raise RequestError("unknown_command", f"unknown command {cmd!r}; known: "
                           f"{', '.join(sorted(handlers))}")
    return req.get("id"), handlers[cmd], validate(handlers[cmd], req.get("args", {}))


def _reply(rid: Any, **body: Any) -> bytes:
    return (json.dumps({"v": PROTOCOL_VERSION, "id": rid, **body}, default=str,
                       separators=(",", ":"), allow_nan=False) + "\n").encode()


class ControlServer(threading.Thread):
    """Accepts local clients, one thread each (at most MAX_CLIENTS at once)."""

    def __init__(self, runtime_dir: str | os.PathLike[str]) -> None:
        super().__init__(name="control", daemon=True)
        self.path = socket_path(runtime_dir)
        self.handlers: dict[str, Handler] = {}
        self._halt = threading.Event()
        self._sock: socket.socket | None = None
        self._slots = threading.BoundedSemaphore(MAX_CLIENTS)
        self.requests = 0
        self.errors = 0
        self.register("ping", lambda args: {"pong": True, "commands": sorted(self.handlers)})

    def register(self, name: str, fn: Callable[..., Any], *,
                 params: dict[str, type | tuple[type, ...]] | None = None,
                 required: tuple[str, ...] = (), stream: bool = False,
                 peer: bool = False) -> None:
        """Add a command. ``peer=True`` hands the handler the client's credentials too
        (``fn(args, peer)``), e.g. who acknowledged an alarm."""
        self.handlers[name] = Handler(fn, params or {}, required, stream, peer)

    def bind(self) -> bool:
        """Create the socket; False (logged) when another live daemon already owns it."""
        if self.path.exists():
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(str(self.path))
            except OSError:
                self.path.unlink(missing_ok=True)  # stale, from a daemon that died
            else:
                log.error("control_socket_in_use", path=str(self.path))
                return False
            finally:
                probe.close()
        tmp = self.path.with_name(f".{SOCKET_NAME}.{os.getpid()}")
        tmp.unlink(missing_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(tmp))
        os.chmod(tmp, SOCKET_MODE)  # before it has its name: no window with wider rights
        os.replace(tmp, self.path)
        sock.listen(MAX_CLIENTS)
        sock.settimeout(0.5)
        self._sock = sock
        return True

    def run(self) -> None:
        assert self._sock is not None
        while not self._halt.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._halt.is_set():
                    break
                continue
            if not self._slots.acquire(blocking=False):
                with contextlib.suppress(OSError):
                    conn.sendall(_reply(None, ok=False, error={
                        "code": "busy", "message": f"{MAX_CLIENTS} clients connected"}))
                conn.close()
                continue
            threading.Thread(target=self._client, args=(conn,), name="control-client",
                             daemon=True).start()

    def stop(self) -> None:
        self._halt.set()
        if self._sock is not None:
            self._sock.close()
            self.path.unlink(missing_ok=True)

    # -- one client -----------------------------------------------------------------------

    def _client(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(None)
            reader = conn.makefile("rb")
            while not self._halt.is_set():
                line = reader.readline(MAX_REQUEST + 1)
                if not line:
                    break
                if len(line) > MAX_REQUEST and not line.endswith(b"\n"):
                    while line and not line.endswith(b"\n"):  # skip the rest of that line
                        line = reader.readline(MAX_REQUEST)
                    self.errors += 1
                    conn.sendall(_reply(None, ok=False, error={
                        "code": "too_large", "message": f"request over {MAX_REQUEST} bytes"}))
                    continue
                if not line.strip():
                    continue
                if not self._answer(conn, line, peer_of(conn)):
                    break
        except OSError:
            pass  # the client went away
        finally:
            self._slots.release()
            with contextlib.suppress(OSError):
                conn.close()

    def _answer(self, conn: socket.socket, line: bytes, peer: dict[str, int]) -> bool:
        """Serve one request; False when the connection should end (after a stream)."""
        self.requests += 1
        rid: Any = None
        try:
            rid, handler, args = parse_request(line, self.handlers)
            result = handler.fn(args, peer) if handler.peer else handler.fn(args)
        except RequestError as err:
            self.errors += 1
            conn.sendall(_reply(rid, ok=False, error={"code": err.code,
                                                       "message": err.message}))
            return True
        except Exception as err:  # a handler bug is the client's error reply, not a crash
            self.errors += 1
            log.error("control_handler_failed", error=f"{type(err).__name__}: {err}")
            conn.sendall(_reply(rid, ok=False, error={
                "code": "internal", "message": f"{type(err).__name__}: {err}"}))
            return True
        if not handler.stream:
            conn.sendall(_reply(rid, ok=True, result=result))
            return True
        events: Iterator[Any] = result
        try:
            conn.sendall(_reply(rid, ok=True, result={"streaming": True}))
            for event in events:
                if self._halt.is_set():
                    break
                conn.sendall(_reply(rid, event=event))
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()
        return False


def peer_of(conn: socket.socket) -> dict[str, int]:
    """The connecting process's pid, uid and gid, from the kernel (SO_PEERCRED)."""
    import struct

    try:
        raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except (OSError, AttributeError):
        return {}
    pid, uid, gid = struct.unpack("3i", raw)
    return {"pid": pid, "uid": uid, "gid": gid}
