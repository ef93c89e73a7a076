"""The control socket: a real Unix socket, garbage thrown at it, the daemon unharmed."""

from __future__ import annotations

import json
import os
import random
import socket
import stat
from pathlib import Path
from typing import Any

import pytest

from daq.control import MAX_REQUEST, ControlServer, RequestError
from daq.control_client import Client
from daq.testing import ModbusTestServer

from .clitools import NO_BROKER, write_config
from .conftest import wait_for


def _raw(path: Path, data: bytes) -> list[dict[str, Any]]:
    """Send bytes, half-close, read every reply line."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect(str(path))
    try:
        s.sendall(data)
    except BrokenPipeError:
        pass
    s.shutdown(socket.SHUT_WR)
    buf = b""
    while chunk := s.recv(65536):
        buf += chunk
    s.close()
    return [json.loads(line) for line in buf.splitlines() if line.strip()]


@pytest.fixture
def server(tmp_path: Path) -> Any:
    srv = ControlServer(tmp_path)
    srv.register("echo", lambda a: a, params={"text": str, "n": int}, required=("text",))
    srv.register("boom", lambda a: 1 / 0)
    srv.register("whoami", lambda a, peer: peer, peer=True)
    assert srv.bind()
    srv.start()
    yield srv
    srv.stop()


def test_socket_is_group_only_and_answers(server: ControlServer) -> None:
    mode = stat.S_IMODE(os.stat(server.path).st_mode)
    assert mode == 0o660
    assert stat.S_ISSOCK(os.stat(server.path).st_mode)
    with Client(server.path) as c:
        assert c.call("ping")["pong"] is True
        assert c.call("echo", text="hi", n=3) == {"text": "hi", "n": 3}
        assert c.call("whoami") == {"pid": os.getpid(), "uid": os.getuid(),
                                    "gid": os.getgid()}


@pytest.mark.parametrize(("data", "code"), [
    (b"not json\n", "bad_json"),
    (b"\xff\xfe\x00garbage\n", "bad_json"),
    (b"[1, 2]\n", "bad_request"),
    (b'{"v": 2, "cmd": "ping"}\n', "bad_version"),
    (b'{"v": 1, "cmd": "reboot"}\n', "unknown_command"),
    (b'{"v": 1, "cmd": ["ping"]}\n', "unknown_command"),
    (b'{"v": 1, "cmd": "echo", "args": {"text": 5}}\n', "bad_request"),
    (b'{"v": 1, "cmd": "echo", "args": {"text": "a", "n": true}}\n', "bad_request"),
    (b'{"v": 1, "cmd": "echo", "args": {}}\n', "bad_request"),
    (b'{"v": 1, "cmd": "echo", "args": {"text": "a", "rm": "-rf"}}\n', "bad_request"),
    (b'{"v": 1, "cmd": "echo", "args": "text"}\n', "bad_request"),
    (b'{"v": 1, "cmd": "boom"}\n', "internal"),
    (b"[" * 100_000 + b"\n", "too_large"),
    (b'{"v": 1, "cmd": "ping", "id": "' + b"x" * (MAX_REQUEST + 10) + b'"}\n', "too_large"),
], ids=lambda x: x[:30].decode("latin-1") if isinstance(x, bytes) else x)
def test_bad_requests_get_an_error_reply(server: ControlServer, data: bytes,
                                         code: str) -> None:
    replies = _raw(server.path, data)
    assert replies and replies[0]["ok"] is False and replies[0]["error"]["code"] == code
    assert replies[0]["error"]["message"]
    with Client(server.path) as c:  # and the server still serves
        assert c.call("ping")["pong"] is True


def test_random_garbage_never_stops_the_server(server: ControlServer) -> None:
    rng = random.Random(12)
    for _ in range(200):
        blob = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))
        _raw(server.path, blob + b"\n" + blob)
    deep = b'{"v": 1, "cmd": "ping", "args": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5001 + b"\n"
    assert _raw(server.path, deep)[0]["ok"] is False
    with Client(server.path) as c:
        assert c.call("ping")["pong"] is True
        with pytest.raises(RequestError) as err:
            c.call("echo")
        assert err.value.code == "bad_request"
        assert c.call("echo", text="still here")["text"] == "still here"
    assert server.is_alive()


def test_a_second_daemon_does_not_steal_a_live_socket(server: ControlServer,
                                                      tmp_path: Path) -> None:
    other = ControlServer(tmp_path)
    assert other.bind() is False
    with Client(server.path) as c:
        assert c.call("ping")["pong"] is True


def test_a_stale_socket_is_replaced(tmp_path: Path) -> None:
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(tmp_path / "control.sock"))
    stale.close()  # a daemon killed with -9 leaves this behind
    srv = ControlServer(tmp_path)
    assert srv.bind()
    srv.start()
    try:
        with Client(srv.path) as c:
            assert c.call("ping")["pong"] is True
    finally:
        srv.stop()
    assert not srv.path.exists()


@pytest.mark.slow
def test_the_running_daemon_survives_garbage_on_its_socket(run_daemon: Any,
                                                           tmp_path: Path) -> None:
    with ModbusTestServer.tcp(units=(1, 2)) as srv:
        srv.set_value(1, 0, 10.0, "float32")
        cfg = write_config(tmp_path / "c.yaml", srv.url, "modbus_tcp")
        runtime = tmp_path / "run"
        d = run_daemon(cfg, NO_BROKER, env={**os.environ, "RUNTIME_DIRECTORY": str(runtime)})
        sock = runtime / "control.sock"
        wait_for(sock.exists, 60, "the control socket")
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o660
        rng = random.Random(3)
        for _ in range(50):
            _raw(sock, bytes(rng.randrange(256) for _ in range(300)) + b"\n")
        _raw(sock, b"x" * (MAX_REQUEST * 3))
        replies = _raw(sock, b'{"v":1,"cmd":"read","args":{"device":"nope"}}\n'
                             b'{"v":1,"cmd":"read","args":{"device":1}}\n'
                             b'{"v":1,"id":9,"cmd":"status"}\n')
        assert [r.get("error", {}).get("code") for r in replies[:2]] == [
            "unknown_device", "bad_request"]
        assert replies[2]["id"] == 9 and replies[2]["result"]["rtu"] == "rtu-7"
        with Client(sock) as c:
            assert c.call("read", device="unit1")["ok"] is True
        assert d.proc is not None and d.proc.poll() is None
        assert d.stop() == 0
    assert not sock.exists()
