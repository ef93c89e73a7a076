"""Hostile and broken Modbus peers for tests: an RTU slave on a pty, a TCP server.

Both answer read requests (functions 1–4) from a fixed register map: holding register
``a`` of unit ``u`` holds ``1000 + a``, input register ``a`` holds ``2000 + a``, coil /
discrete input ``a`` is ``a % 2``. ``rules`` maps a request's first address to a
:class:`Behaviour` saying how to misbehave::

    with ScriptedRtuSlave(units=(6,), rules={0: Behaviour("ok", delay=0.35)}) as slave:
        bus_url = slave.path          # /dev/pts/N, the master's end
        ...
        slave.requests                # [(unit, function, address, count), ...]

Modes: ``ok`` (after ``delay``), ``exception`` (``code``), ``wrong_fc`` (the other register
function), ``wrong_count`` (one register too many), ``wrong_unit``, ``bad_crc`` (RTU),
``garbage`` (random bytes), ``truncate`` (half a frame), ``silent``; TCP adds
``wrong_tid``, ``absurd_length`` and ``close`` (the connection is closed mid-frame).
"""

from __future__ import annotations

import os
import random
import select
import socket
import struct
import threading
import time
import tty
from dataclasses import dataclass
from typing import Any

from .modbus_frame import BIT_KINDS, crc16, with_crc

KIND_OF = {1: "coil", 2: "discrete", 3: "holding", 4: "input"}


@dataclass(frozen=True)
class Behaviour:
    mode: str = "ok"
    delay: float = 0.0
    code: int = 2


def item(kind: str, address: int) -> int:
    """The map's value of one register or bit."""
    return address % 2 if kind in BIT_KINDS else (1000 if kind == "holding" else 2000) + address


def reply_pdu(fc: int, address: int, count: int) -> bytes:
    kind = KIND_OF[fc]
    if kind in BIT_KINDS:
        data = bytearray((count + 7) // 8)
        for i in range(count):
            if item(kind, address + i):
                data[i // 8] |= 1 << (i % 8)
        return bytes([fc, len(data)]) + bytes(data)
    return bytes([fc, 2 * count]) + b"".join(
        (item(kind, address + i) & 0xFFFF).to_bytes(2, "big") for i in range(count))


def misbehave(b: Behaviour, fc: int, address: int, count: int) -> bytes | None:
    """The reply PDU for a behaviour (None: no reply; raw frames are handled by callers)."""
    if b.mode in ("ok", "bad_crc", "truncate", "wrong_unit", "wrong_tid", "absurd_length",
                  "close"):
        return reply_pdu(fc, address, count)
    if b.mode == "exception":
        return bytes([fc | 0x80, b.code])
    if b.mode == "wrong_fc":
        return reply_pdu(4 if fc == 3 else 3, address, count)
    if b.mode == "wrong_count":
        return reply_pdu(fc, address, count + 1)
    return None  # silent, garbage


class _Peer:
    def __init__(self, units: tuple[int, ...], rules: dict[int, Behaviour] | None) -> None:
        self.units = units
        self.rules = dict(rules or {})
        self.requests: list[tuple[int, int, int, int]] = []
        self.times: list[float] = []  # time.monotonic() each request was complete
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=type(self).__name__)

    def _run(self) -> None:
        raise NotImplementedError

    def rule(self, address: int) -> Behaviour:
        return self.rules.get(address, Behaviour())

    def __enter__(self) -> Any:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._halt.set()
        self._thread.join(5)


class ScriptedRtuSlave(_Peer):
    """An RTU slave on the far end of a pty pair; :attr:`path` is the master's port."""

    def __init__(self, units: tuple[int, ...] = (1,),
                 rules: dict[int, Behaviour] | None = None) -> None:
        super().__init__(units, rules)
        self._fd, self._slave = os.openpty()
        tty.setraw(self._slave)
        tty.setraw(self._fd)
        self.path = os.ttyname(self._slave)

    def close(self) -> None:
        super().close()
        for fd in (self._fd, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def _run(self) -> None:
        buf = b""
        while not self._halt.is_set():
            ready, _, _ = select.select([self._fd], [], [], 0.05)
            if not ready:
                buf = b""  # a pause ends a frame
                continue
            try:
                buf += os.read(self._fd, 256)
            except OSError:
                return
            while len(buf) >= 8:
                frame, buf = buf[:8], buf[8:]
                if crc16(frame[:6]) != int.from_bytes(frame[6:], "little"):
                    buf = b""
                    break
                self._answer(frame)

    def _answer(self, frame: bytes) -> None:
        unit, fc, address, count = struct.unpack(">BBHH", frame[:6])
        self.times.append(time.monotonic())
        self.requests.append((unit, fc, address, count))
        if unit not in self.units or fc not in KIND_OF:
            return
        b = self.rule(address)
        time.sleep(b.delay)
        if b.mode == "garbage":
            out = bytes(random.Random(address).randrange(256) for _ in range(11))
        else:
            pdu = misbehave(b, fc, address, count)
            if pdu is None:
                return
            out = with_crc(bytes([unit + 1 if b.mode == "wrong_unit" else unit]) + pdu)
            if b.mode == "bad_crc":
                out = out[:-1] + bytes([out[-1] ^ 0xFF])
            elif b.mode == "truncate":
                out = out[:len(out) // 2]
        os.write(self._fd, out)


class ScriptedTcpSlave(_Peer):
    """A Modbus TCP server on a free loopback port (:attr:`port`), one client at a time."""

    def __init__(self, units: tuple[int, ...] = (1,),
                 rules: dict[int, Behaviour] | None = None, port: int = 0) -> None:
        super().__init__(units, rules)
        self._listener = socket.create_server(("127.0.0.1", port))
        self._listener.settimeout(0.05)
        self.port = self._listener.getsockname()[1]
        self.connections = 0

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def close(self) -> None:
        super().close()
        self._listener.close()

    def _run(self) -> None:
        while not self._halt.is_set():
            try:
                conn, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            with conn:
                self._serve(conn)

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(0.05)
        buf = b""
        while not self._halt.is_set():
            try:
                data = conn.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            buf += data
            while len(buf) >= 12:
                frame, buf = buf[:12], buf[12:]
                if not self._answer(conn, frame):
                    return

    def _answer(self, conn: socket.socket, frame: bytes) -> bool:
        tid, _, _, unit, fc, address, count = struct.unpack(">HHHBBHH", frame)
        self.requests.append((unit, fc, address, count))
        if unit not in self.units or fc not in KIND_OF:
            return True
        b = self.rule(address)
        time.sleep(b.delay)
        if b.mode == "garbage":
            conn.sendall(bytes(random.Random(address).randrange(256) for _ in range(11)))
            return True
        pdu = misbehave(b, fc, address, count)
        if pdu is None:
            return True
        length = 999 if b.mode == "absurd_length" else len(pdu) + 1
        out = struct.pack(">HHHB", tid + 7 if b.mode == "wrong_tid" else tid, 0, length,
                          unit + 1 if b.mode == "wrong_unit" else unit) + pdu
        if b.mode in ("truncate", "close"):
            conn.sendall(out[:len(out) // 2])
            return b.mode != "close"
        conn.sendall(out)
        return True
