"""One Modbus transaction at a time on any of the daemon's transports, with a frame log.

URLs: ``tcp://HOST:PORT`` is Modbus TCP (MBAP); anything else is RTU through
``serial.serial_for_url`` (a device such as ``/dev/ttyUSB0``, ``socket://HOST:PORT`` for an
RTU-over-TCP gateway, ``rfc2217://HOST:PORT``, ``sim://NAME``). Before each RTU request the
line is drained and kept silent for 3.5 characters; a reply ends when its announced length
is in, or after ``gap`` seconds without a byte. Every frame sent and received is kept in
:attr:`Link.frames` with its monotonic time, for ``--trace``.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import Any

from . import rtu


@dataclass(frozen=True)
class Frame:
    at: float  # time.monotonic() of the first byte
    direction: str  # "tx" or "rx"
    data: bytes
    end: float | None = None  # of the last byte (None: same as ``at``)

    @property
    def until(self) -> float:
        return self.at if self.end is None else self.end


@dataclass(frozen=True)
class LinkSettings:
    url: str
    baudrate: int = 9600
    bytesize: int = 8
    parity: str = "N"
    stopbits: int = 1
    timeout: float = 0.5


class Link:
    """An open transport; ``read()`` does one request and classifies the answer."""

    def __init__(self, settings: LinkSettings) -> None:
        self.settings = settings
        self.frames: list[Frame] = []
        self.tcp = settings.url.startswith("tcp://")
        self._transaction = 0
        self._last_activity = 0.0
        self._sock: socket.socket | None = None
        self._port: Any = None
        if self.tcp:
            host, _, port = settings.url.removeprefix("tcp://").rpartition(":")
            try:
                number = int(port)
            except ValueError:
                raise ValueError(f"{settings.url}: the port {port!r} is not a number") from None
            self._sock = socket.create_connection((host.strip("[]"), number),
                                                  timeout=settings.timeout)
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        else:
            import serial

            if settings.url.startswith("sim://"):
                import daq.sim  # noqa: F401  registers the sim:// handler
            self._port = serial.serial_for_url(
                settings.url, baudrate=settings.baudrate, bytesize=settings.bytesize,
                parity=settings.parity, stopbits=settings.stopbits, timeout=settings.timeout)
        # A reply is over after this much silence: 3.5 characters, but USB adapters deliver
        # in bursts (FTDI latency timer 16 ms), so never less than 20 ms.
        self.gap = max(rtu.t35(settings.baudrate), 0.020)

    def close(self) -> None:
        for thing in (self._sock, self._port):
            if thing is not None:
                try:
                    thing.close()
                except OSError:
                    pass

    def __enter__(self) -> Link:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read(self, unit: int, function: int, address: int, count: int) -> rtu.Answer:
        if self.tcp:
            return self._read_tcp(unit, function, address, count)
        return self._read_rtu(unit, function, address, count)

    # -- RTU ----------------------------------------------------------------------------
    def _read_rtu(self, unit: int, function: int, address: int, count: int) -> rtu.Answer:
        request = rtu.rtu_request(unit, function, address, count)
        port = self._port
        quiet = self._last_activity + rtu.t35(self.settings.baudrate) - time.monotonic()
        if quiet > 0:
            time.sleep(quiet)
        stale = port.read(port.in_waiting) if port.in_waiting else b""
        if stale:  # a late reply to an earlier request: never take it for this one
            self.frames.append(Frame(time.monotonic(), "rx", stale))
        self.frames.append(Frame(time.monotonic(), "tx", request))
        port.write(request)
        port.flush()
        reply = self._receive(lambda buf: rtu.rtu_reply_length(buf, function))
        return rtu.classify_rtu(reply, unit, function, count)

    def _receive(self, expected: Any) -> bytes:
        port = self._port
        start = time.monotonic()
        deadline = start + self.settings.timeout
        buf = bytearray()
        last = first = start
        while True:
            now = time.monotonic()
            want = expected(bytes(buf))
            if want is not None and len(buf) >= want:
                break
            if buf and now - last >= self.gap:
                break
            if not buf and now >= deadline:
                break
            port.timeout = max(0.001, min(self.gap if buf else deadline - now, 0.05))
            chunk = port.read(max(1, port.in_waiting))
            if chunk:
                if not buf:
                    first = time.monotonic()
                buf += chunk
                last = time.monotonic()
        self._last_activity = time.monotonic()
        if buf:
            self.frames.append(Frame(first, "rx", bytes(buf), last))
        return bytes(buf)

    # -- Modbus TCP ---------------------------------------------------------------------
    def _read_tcp(self, unit: int, function: int, address: int, count: int) -> rtu.Answer:
        assert self._sock is not None
        self._transaction = (self._transaction + 1) & 0xFFFF
        request = rtu.mbap_request(self._transaction, unit, function, address, count)
        self.frames.append(Frame(time.monotonic(), "tx", request))
        self._sock.sendall(request)
        self._sock.settimeout(self.settings.timeout)
        reply = b""
        try:
            header = self._recv_exactly(6)
            length = int.from_bytes(header[4:6], "big")
            reply = header + self._recv_exactly(min(length, 260))
        except TimeoutError:
            reply = b""
        except ConnectionError as err:
            raise OSError(f"{self.settings.url}: the connection closed ({err})") from err
        if reply:
            self.frames.append(Frame(time.monotonic(), "rx", reply))
        return rtu.classify_mbap(reply, self._transaction, unit, function, count)

    def _recv_exactly(self, n: int) -> bytes:
        assert self._sock is not None
        buf = b""
        while len(buf) < n:
            chunk = self._sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed by the peer")
            buf += chunk
        return buf


def open_link(settings: LinkSettings) -> Link:
    """Open the transport, or raise OSError/ValueError with the reason in words."""
    try:
        return Link(settings)
    except (OSError, ValueError):
        raise
    except Exception as err:  # pyserial raises SerialException (an OSError) or ValueError
        raise OSError(f"cannot open {settings.url}: {err}") from err
