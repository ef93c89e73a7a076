"""The Modbus masters the bus worker hands to drivers: RTU on a serial line, TCP (MBAP).

Both do one thing, :meth:`read_items`, with the checks of :mod:`daq.modbus_frame` and
exact timing:

- **Drain first.** Bytes waiting on the line before a request belong to no request of
  ours (a late reply, noise): they are read and discarded and counted as ``late_reply``.
- **A timeout never stretches.** The reply must be complete ``timeout`` seconds after the
  request left; a reply that starts in time and ends later is ``garbled`` (truncated).
- **After a timeout, wait out the frame** (RTU): the line is watched for ``settle``
  seconds and then until it has been quiet for t3.5, so a late reply is counted as
  ``late_reply`` and never taken for the next request's answer.
- **Inter-frame gap** (RTU): the next request starts t3.5 after the line went quiet
  (3.5 characters at 19200 baud and below, 1.75 ms above), plus the device's ``pause``.
- **TCP**: every request has its own transaction id; a reply carrying an earlier id is a
  late reply (discarded, counted); a frame that cannot be parsed desynchronises the
  stream, so the connection is closed and opened again for the next request.

Events are counted in :attr:`events` (kind → count); the bus worker moves them into the
polled device's status after each poll.
"""

from __future__ import annotations

import os
import select
import socket
import time
from collections import Counter
from typing import Any, NoReturn

from . import modbus_frame as mf
from .modbus import ModbusNoResponse, ModbusProtocolError

MAX_FRAME = 256  # bytes: the longest RTU frame


def frame_gap(baudrate: int, char_bits: int) -> float:
    """t3.5 in seconds: 3.5 character times up to 19200 baud, 1.75 ms above (the spec)."""
    return 1.75e-3 if baudrate > 19200 else 3.5 * char_bits / baudrate


def _raise(err: mf.FrameError, unit: int, what: str) -> NoReturn:
    text = f"unit {unit} {what}: {err}"
    if err.kind in ("gateway_no_response", "gateway_path"):
        raise ModbusNoResponse(text, kind=err.kind) from err
    raise ModbusProtocolError(text, kind=err.kind, code=err.code) from err


class _Master:
    retries = 0  # the bus's ``retries``: repeats of a request that timed out

    def _transact(self, kind: str, address: int, count: int, unit: int) -> list[int]:
        raise NotImplementedError

    def read_items(self, kind: str, address: int, count: int, unit: int) -> list[int]:
        """Read ``count`` registers or bits; raises ModbusNoResponse / ModbusProtocolError
        (a timeout is repeated up to ``retries`` times; nothing else is)."""
        for attempt in range(self.retries + 1):
            try:
                return self._transact(kind, address, count, unit)
            except ModbusNoResponse as err:
                if err.kind != "timeout" or attempt == self.retries:
                    raise
        raise AssertionError("unreachable")

    def write_coil(self, address: int, value: bool, unit: int) -> None:
        """Write one coil (function 5); the reply must echo address and value. Never
        repeated: a write is not retried behind the caller's back."""
        want = [address, 0xFF00 if value else 0]
        got = self._transact(mf.WRITE_COIL, address, int(bool(value)), unit)
        if got != want:
            raise ModbusProtocolError(f"unit {unit} echoed {got} to a coil write of {want}",
                                      kind="garbled")


class RtuMaster(_Master):
    """A Modbus RTU master on an open pyserial port (any URL: device, ``sim://``, ...)."""

    def __init__(self, port: Any, *, baudrate: int, char_bits: int = 10,
                 timeout: float = 0.5, settle: float = 0.1, gap: float | None = None) -> None:
        self.port = port
        self.timeout = timeout
        self.settle = settle
        self.pause = 0.0
        self.t35 = frame_gap(baudrate, char_bits) if gap is None else gap
        self.char_time = char_bits / baudrate
        self.events: Counter[str] = Counter()
        self._quiet_since = 0.0
        self._fd: int | None = None
        try:
            import serial.serialposix as sp

            if isinstance(port, sp.Serial):
                self._fd = port.fileno()
        except (ImportError, AttributeError):  # not POSIX: pyserial's own read path
            self._fd = None

    def close(self) -> None:
        self.port.close()

    def take_events(self) -> Counter[str]:
        out, self.events = self.events, Counter()
        return out

    # -- I/O --------------------------------------------------------------------------
    def _read(self, n: int, wait: float) -> bytes:
        """Up to ``n`` bytes, returning as soon as some arrived or ``wait`` passed."""
        if self._fd is not None:
            ready, _, _ = select.select([self._fd], [], [], max(wait, 0.0))
            if not ready:
                return b""
            data = os.read(self._fd, n)
            if not data:
                raise OSError("serial device disconnected (end of file)")
            return data
        self.port.timeout = max(wait, 0.0)
        return bytes(self.port.read(max(1, min(n, self.port.in_waiting or 1))))

    def _read_exact(self, n: int, deadline: float) -> bytes:
        buf = b""
        while len(buf) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            buf += self._read(n - len(buf), remaining)
        return buf

    def _wait_quiet(self, minimum: float) -> int:
        """Read and discard until ``minimum`` s passed and the line was quiet for t3.5."""
        start = time.monotonic()
        end = start + minimum
        cap = end + MAX_FRAME * self.char_time + 0.05  # a babbling unit cannot hold us
        got = 0
        quiet_until = start + self.t35
        while True:
            now = time.monotonic()
            until = min(max(end, quiet_until), cap)
            if now >= until:
                break
            data = self._read(MAX_FRAME, until - now)
            if data:
                got += len(data)
                quiet_until = time.monotonic() + self.t35
        self._quiet_since = time.monotonic()
        return got

    def _drain(self) -> None:
        stale = b""
        while len(stale) < 16 * MAX_FRAME and (data := self._read(MAX_FRAME, 0.0)):
            stale += data  # bounded: a babbling unit must not hold the bus thread
        if stale:
            self.events["late_reply"] += 1
            self._quiet_since = time.monotonic()

    # -- the transaction --------------------------------------------------------------
    def _transact(self, kind: str, address: int, count: int, unit: int) -> list[int]:
        what = f"{kind} {address}+{count}"
        request = mf.rtu_request(unit, kind, address, count)
        self._drain()
        idle = self._quiet_since + self.t35 + self.pause - time.monotonic()
        if idle > 0:
            time.sleep(idle)
        self.port.write(request)
        self.port.flush()
        deadline = time.monotonic() + self.timeout
        frame = self._read_exact(3, deadline)
        if not frame:
            if self._wait_quiet(self.settle):
                self.events["late_reply"] += 1
            raise ModbusNoResponse(f"no answer from unit {unit} to {what} within "
                                   f"{self.timeout:g} s", kind="timeout")
        try:
            if len(frame) < 3:
                raise mf.FrameError("garbled", f"{len(frame)} stray byte(s), then silence")
            mf.check_rtu_header(frame, unit, kind, count)
            need = mf.rtu_expected(frame, kind, count)
            # the rest cannot arrive sooner than its wire time: sleep through most of it
            # instead of waking for every few bytes (less CPU, less GIL for other threads)
            rest = (need - 3) * self.char_time - 0.5e-3
            if rest > 1e-3:
                time.sleep(min(rest, max(deadline - time.monotonic(), 0.0)))
            frame += self._read_exact(need - 3, deadline)
            self._quiet_since = time.monotonic()
            if len(frame) < need:
                raise mf.FrameError("garbled", f"truncated: {len(frame)} of {need} bytes "
                                               f"within {self.timeout:g} s")
            data = mf.check_rtu(frame, unit, kind, count)
        except mf.FrameError as err:
            if err.kind not in ("exception", "gateway_path", "gateway_no_response"):
                self._wait_quiet(0.0)  # the rest of a bad frame is not a late reply
            _raise(err, unit, what)
        return mf.values(data, kind, count)


class TcpMaster(_Master):
    """A Modbus TCP client over one socket, reconnecting lazily after a broken stream."""

    def __init__(self, host: str, port: int, *, timeout: float = 0.5) -> None:
        self.host, self.port = host, port
        self.timeout = timeout
        self.pause = 0.0
        self.events: Counter[str] = Counter()
        self._tid = 0
        self._sock: socket.socket | None = None
        self._connect()

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=max(self.timeout, 1))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        return sock

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def take_events(self) -> Counter[str]:
        out, self.events = self.events, Counter()
        return out

    def _recv(self, sock: socket.socket, n: int, deadline: float) -> bytes:
        buf = b""
        while len(buf) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            sock.settimeout(remaining)
            try:
                data = sock.recv(n - len(buf))
            except TimeoutError:
                break
            if not data:
                self.close()
                raise ConnectionError(f"{self.host}:{self.port} closed the connection"
                                      + (" mid-frame" if buf else ""))
            buf += data
        return buf

    def _drain(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        stale = b""
        try:
            while True:
                data = sock.recv(4096)
                if not data:
                    self.close()
                    raise ConnectionError(f"{self.host}:{self.port} closed the connection")
                stale += data
        except BlockingIOError:
            pass
        finally:
            sock.setblocking(True)
        if stale:
            self.events["late_reply"] += 1

    def _transact(self, kind: str, address: int, count: int, unit: int) -> list[int]:
        what = f"{kind} {address}+{count}"
        sock = self._sock or self._connect()
        self._drain(sock)
        if self.pause > 0:
            time.sleep(self.pause)
        self._tid = (self._tid + 1) & 0xFFFF
        tid = self._tid
        sock.sendall(mf.tcp_request(tid, unit, kind, address, count))
        deadline = time.monotonic() + self.timeout
        try:
            while True:
                header = self._recv(sock, mf.MBAP_HEADER, deadline)
                if not header:
                    raise ModbusNoResponse(f"no answer from unit {unit} to {what} within "
                                           f"{self.timeout:g} s", kind="timeout")
                if len(header) < mf.MBAP_HEADER:
                    raise mf.FrameError("garbled", f"truncated MBAP header ({len(header)} B)")
                old = (tid - int.from_bytes(header[:2], "big")) & 0xFFFF
                if 0 < old < 64 and header[2:4] == b"\0\0" and \
                        2 <= int.from_bytes(header[4:6], "big") <= 254:
                    # the answer to an earlier request that timed out: skip it
                    self._recv(sock, int.from_bytes(header[4:6], "big") - 1, deadline)
                    self.events["late_reply"] += 1
                    continue
                length = mf.check_mbap(header, tid, unit)
                pdu = self._recv(sock, length, deadline)
                if len(pdu) < length:
                    raise mf.FrameError("garbled", f"truncated: {len(pdu)} of {length} "
                                                   f"PDU bytes within {self.timeout:g} s")
                data = mf.check_pdu(pdu, kind, count)
                return mf.values(data, kind, count)
        except mf.FrameError as err:
            if err.kind == "garbled":
                self.close()  # the stream lost its framing: start a fresh connection
            _raise(err, unit, what)
