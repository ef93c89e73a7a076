"""Serial test fixtures shipped with the package: pty pairs and scripted serial devices.

Everything here runs on real pseudo-terminals (``os.openpty()``, raw mode): the driver
side is a real :class:`serial.Serial` on the slave end, exactly what the bus would hand a
driver; the device side is a thread reading and writing the master end.

Limits of a pty, and how the fixtures live with them:

- The kernel ignores the baud rate: bytes arrive at once. Wire time is not emulated.
- Even parity fails with EINVAL on recent kernels: ports here are 8N1 (the bus makes
  framing configurable; drivers do not care).
- A break (``tcsendbreak`` / ``TIOCSBRK``) is accepted on a pty but never reaches the other
  end. :class:`BreakMarkerSerial` therefore writes a marker byte (NUL, which no SDI-12
  command contains) in place of a break, and :class:`ScriptedSDI12Sensor` treats that byte
  as the break. The break's *length* cannot be checked this way.

Example::

    with pty_pair() as (port, fd), ScriptedSDI12Sensor(fd, "0", values=[1.5]) as sensor:
        SDI12Driver("s", 0, opts).poll(port)
"""

from __future__ import annotations

import os
import select
import threading
import time
import tty
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import serial

BREAK_MARKER = b"\x00"
SLEEP_AFTER = 0.100  # s of marking after which an SDI-12 sensor sleeps (v1.4, 4.2.2)


class BreakMarkerSerial(serial.Serial):
    """A pyserial port whose ``send_break`` writes :data:`BREAK_MARKER` (pty stand-in)."""

    break_marker: bytes = BREAK_MARKER

    def send_break(self, duration: float = 0.25) -> None:
        self.write(self.break_marker)


@contextmanager
def pty_pair(timeout: float = 0.5, port_class: type[serial.Serial] = BreakMarkerSerial,
             baudrate: int = 1200) -> Iterator[tuple[serial.Serial, int]]:
    """Yield ``(port, master_fd)``: an open 8N1 port on the slave end, the master fd raw."""
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    port = port_class(os.ttyname(slave), baudrate=baudrate, bytesize=8, parity="N",
                      stopbits=1, timeout=timeout)
    try:
        yield port, master
    finally:
        port.close()
        os.close(slave)
        os.close(master)


class _DeviceThread:
    """A thread serving the master end of a pty until stopped."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=type(self).__name__)

    def __enter__(self) -> Any:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.fd], [], [], self._poll_interval())
            now = time.monotonic()
            if ready:
                try:
                    data = os.read(self.fd, 1024)
                except OSError:  # the slave end closed
                    return
                for i in range(len(data)):
                    self._byte(data[i:i + 1], now)
            self._tick(time.monotonic())

    def _poll_interval(self) -> float:
        return 0.005

    def _write(self, data: bytes) -> None:
        os.write(self.fd, data)

    def _byte(self, b: bytes, now: float) -> None:
        raise NotImplementedError

    def _tick(self, now: float) -> None:
        pass


def _sdi12_crc(data: bytes) -> bytes:
    # Written apart from the driver's own CRC code on purpose: the two check each other.
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc >> 1) ^ 0xA001) if (crc & 1) else (crc >> 1)
    return bytes((64 | crc >> 12, 64 | (crc >> 6) & 63, 64 | crc & 63))


class ScriptedSDI12Sensor(_DeviceThread):
    """An SDI-12 v1.4 sensor behind a pty, keeping the protocol's timing rules.

    - answers within ``reply_delay`` (default 5 ms; the standard allows 15 ms) after the
      ``!`` that ends a command addressed to it; ignores commands for other addresses and
      commands it does not know (as a real sensor does);
    - announces ``ttt`` = ``announce_seconds`` after M/C and has the data ready after
      ``ready_after`` seconds; after M it then sends its service request ``a<CR><LF>``
      (unless ``skip_service_request``); a break during an M measurement aborts it;
    - with ``require_break`` it sleeps after 100 ms of marking and ignores commands until
      a break (:data:`BREAK_MARKER`) wakes it;
    - packs values into D0…D9 replies of ≤ 35 characters (M) or ≤ 75 (C, R) and appends the
      CRC for MC/CC/RC; ``values_by_command`` (``{"M1": [...], "R0": [...]}``) overrides
      ``values`` per command (CRC variants share their plain command's values).

    Faults on demand: ``silent = True``; ``garble_once("D0", "flip")`` (modes ``flip`` a
    digit, ``truncate`` without <CR><LF>, ``noise``, ``wrong_address``) for the next reply to
    a command starting with that body. ``commands``/``ignored`` record what was received.
    """

    def __init__(self, fd: int, address: str = "0", *, values: Sequence[float | str] = (),
                 values_by_command: Mapping[str, Sequence[float | str]] | None = None,
                 decimals: int = 3, announce_seconds: int = 1, ready_after: float = 0.05,
                 require_break: bool = False, skip_service_request: bool = False,
                 reply_delay: float = 0.005,
                 identification: str = "14DAMWATCHSIMSDI100SN0001") -> None:
        super().__init__(fd)
        self.address = address
        self.values = list(values)
        self.values_by_command = dict(values_by_command or {})
        self.decimals = decimals
        self.announce_seconds = announce_seconds
        self.ready_after = ready_after
        self.require_break = require_break
        self.skip_service_request = skip_service_request
        self.reply_delay = reply_delay
        self.identification = identification
        self.silent = False
        self.commands: list[str] = []
        self.ignored: list[str] = []
        self.breaks = 0
        self.aborted = 0
        self._garble: dict[str, str] = {}
        self._buf = bytearray()
        self._awake = not require_break
        self._last = time.monotonic()
        self._pages: list[bytes] = []
        self._crc = False
        self._ready_at: float | None = None
        self._sr_due = False

    def garble_once(self, body_prefix: str, mode: str = "flip") -> None:
        self._garble[body_prefix] = mode

    # -- receiving ----------------------------------------------------------------------

    def _byte(self, b: bytes, now: float) -> None:
        if self.require_break and now - self._last > SLEEP_AFTER:
            self._awake = False
        self._last = now
        if b == BREAK_MARKER:
            self.breaks += 1
            self._awake = True
            self._buf.clear()
            if self._sr_due:  # a break aborts a pending M measurement
                self._sr_due, self._ready_at, self._pages = False, None, []
                self.aborted += 1
            return
        self._buf += b
        if b == b"!":
            text = self._buf.decode("ascii", "replace")
            self._buf.clear()
            if not self._awake:
                self.ignored.append(text)
            elif not self.silent:
                self._command(text)

    def _tick(self, now: float) -> None:
        if self._sr_due and self._ready_at is not None and now >= self._ready_at:
            self._sr_due = False
            self._reply("SR", self.address.encode())

    # -- answering ----------------------------------------------------------------------

    def _reply(self, body: str, line: bytes) -> None:
        mode = next((m for k, m in self._garble.items() if body.startswith(k)), None)
        if mode is not None:
            self._garble = {k: m for k, m in self._garble.items() if not body.startswith(k)}
            line = _garbled(line, mode)
        if mode != "truncate":
            line += b"\r\n"
        time.sleep(self.reply_delay)
        self._write(line)
        self._last = time.monotonic()

    def _command(self, text: str) -> None:
        a = self.address
        if text == "?!":
            self.commands.append(text)
            self._reply("?", a.encode())
            return
        if not text.startswith(a):
            return
        body = text[len(a):-1]
        self.commands.append(text)
        if body == "":
            self._reply(body, a.encode())
        elif body == "I":
            self._reply(body, (a + self.identification).encode())
        elif len(body) == 2 and body[0] == "A" and body[1].isalnum():
            self.address = body[1]
            self._reply(body, body[1].encode())
        elif body[:1] in ("M", "C") and body.rstrip("123456789") in ("M", "MC", "C", "CC"):
            self._start(body)
        elif len(body) == 2 and body[0] == "D" and body[1].isdigit():
            ready = self._ready_at is None or time.monotonic() >= self._ready_at
            i = int(body[1])
            page = self._pages[i] if ready and i < len(self._pages) else b""
            self._reply(body, self._crc_if(a.encode() + page))
        elif body.rstrip("0123456789") in ("R", "RC") and body[-1:].isdigit():
            self._crc = body.startswith("RC")
            vals = self._texts(body.replace("RC", "R"))
            self._reply(body, self._crc_if(a.encode() + b"".join(vals)))

    def _texts(self, key: str) -> list[bytes]:
        vals = self.values_by_command.get(key, self.values)
        return [(v if isinstance(v, str) else f"{v:+.{self.decimals}f}").encode()
                for v in vals]

    def _start(self, body: str) -> None:
        concurrent = body.startswith("C")
        self._crc = body[:2] in ("MC", "CC")
        key = body[0] + body[2:] if self._crc else body
        vals = self._texts(key)
        limit = 75 if concurrent else 35
        self._pages = []
        for v in vals:
            if self._pages and len(self._pages[-1]) + len(v) <= limit:
                self._pages[-1] += v
            else:
                self._pages.append(v)
        ttt = self.announce_seconds if vals else 0
        n = f"{len(vals):02d}" if concurrent else f"{len(vals)}"
        self._ready_at = time.monotonic() + self.ready_after if ttt else None
        self._sr_due = bool(ttt) and not concurrent and not self.skip_service_request
        self._reply(body, f"{self.address}{ttt:03d}{n}".encode())

    def _crc_if(self, line: bytes) -> bytes:
        return line + _sdi12_crc(line) if self._crc else line


def _garbled(line: bytes, mode: str) -> bytes:
    if mode == "flip":  # one digit changed: only a CRC can tell
        for i in range(len(line) - 1, 0, -1):
            if 48 <= line[i] <= 57:
                return line[:i] + bytes([48 + (line[i] - 47) % 10]) + line[i + 1:]
        return line + b"#"
    if mode == "truncate":
        return line[:max(1, len(line) // 2)]
    if mode == "noise":
        return b"\x7f#%&\x15"
    if mode == "wrong_address":
        return b"Z" + line[1:]
    raise ValueError(f"unknown garble mode {mode!r}")


class ScriptedLineDevice(_DeviceThread):
    """A text-protocol device behind a pty: answers each known request with canned bytes.

    ``script`` maps a request (the exact bytes, terminator included) to the reply bytes, or
    to a list of replies served in turn (the last one repeats); ``None`` means stay silent.
    ``echo`` repeats each received byte first, as a half-duplex RS-485 adapter does.
    ``stream`` (bytes) with ``period`` (s) makes it talk by itself, for listen-only drivers.
    ``requests`` records every complete request received.
    """

    def __init__(self, fd: int, script: Mapping[bytes, bytes | Sequence[bytes] | None] | None
                 = None, *, echo: bool = False, reply_delay: float = 0.005,
                 stream: bytes | None = None, period: float = 0.05,
                 on_request: Callable[[bytes], None] | None = None) -> None:
        super().__init__(fd)
        self.script = dict(script or {})
        self.echo = echo
        self.reply_delay = reply_delay
        self.stream = stream
        self.period = period
        self.on_request = on_request
        self.requests: list[bytes] = []
        self._served: dict[bytes, int] = {}
        self._buf = bytearray()
        self._next_stream = time.monotonic()

    def _byte(self, b: bytes, now: float) -> None:
        if self.echo:
            self._write(b)
        self._buf += b
        for request, reply in self.script.items():
            if self._buf.endswith(request):
                self._buf.clear()
                self.requests.append(request)
                if self.on_request is not None:
                    self.on_request(request)
                if reply is None:
                    return
                if not isinstance(reply, bytes):
                    k = self._served.get(request, 0)
                    self._served[request] = k + 1
                    reply = reply[min(k, len(reply) - 1)]
                time.sleep(self.reply_delay)
                self._write(reply)
                return

    def _tick(self, now: float) -> None:
        if self.stream is not None and now >= self._next_stream:
            self._write(self.stream)
            self._next_stream = now + self.period
