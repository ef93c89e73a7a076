"""pyserial URL handler ``simgnss://NAME?seed=N&lat=..&lon=..&height=..&float=P&time=T``:
a simulated RTK receiver reporting NMEA at 1 Hz (:class:`daq.sim.rover.Rover`).

``import daq.sim`` registers it. Each whole second of the clock (``time``: frozen epoch
seconds, tests) puts that second's epoch into the input buffer, as a receiver does; the
epoch of the current second is there as soon as the port opens. Nothing is written back
(a port in receiver-RTK mode only listens); baud rate and framing are ignored.
"""

from __future__ import annotations

import math
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from serial.serialutil import PortNotOpenError, SerialBase, SerialException

from .rover import Rover

MAX_BACKLOG_S = 60  # a reader away longer gets the last minute, as a receiver's UART buffer


def rover_from_url(url: str) -> tuple[Rover, Callable[[], float]]:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "simgnss":
        raise SerialException(f"expected a simgnss:// URL, got {url!r}")
    q = {k: v[-1] for k, v in urllib.parse.parse_qs(parts.query).items()}
    try:
        ref = (float(q.get("lat", 36.1)), float(q.get("lon", 117.2)),
               float(q.get("height", 60.0)))
        rover = Rover(int(q.get("seed", 0)), ref, float(q.get("float", 0.0)))
        frozen = float(q["time"]) if "time" in q else None
    except ValueError as err:
        raise SerialException(f"bad simgnss:// parameter in {url!r}: {err}") from None
    return rover, (time.time if frozen is None else (lambda: frozen))


class Serial(SerialBase):
    """A pyserial port with a simulated receiver at its far end."""

    is_open: bool

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._rx = bytearray()
        self._lock = threading.Lock()
        self.rover: Rover | None = None
        self.clock: Callable[[], float] = time.time
        self._next = 0  # the next epoch second to put into the buffer
        super().__init__(*args, **kwargs)

    def open(self) -> None:
        if self.is_open:
            raise SerialException("Port is already open.")
        if self._port is None:
            raise SerialException("Port must be configured before it can be used.")
        self.rover, self.clock = rover_from_url(str(self.port))
        self._next = math.floor(self.clock())
        self.is_open = True

    def close(self) -> None:
        self.is_open = False

    def _reconfigure_port(self) -> None:
        pass

    def _receive(self) -> None:
        assert self.rover is not None
        now = math.floor(self.clock())
        self._next = max(self._next, now - MAX_BACKLOG_S + 1)
        while self._next <= now:
            self._rx += self.rover.nmea(self._next)
            self._next += 1

    @property
    def in_waiting(self) -> int:
        if not self.is_open:
            raise PortNotOpenError()
        with self._lock:
            self._receive()
            return len(self._rx)

    def read(self, size: int = 1) -> bytes:
        if not self.is_open:
            raise PortNotOpenError()
        with self._lock:
            self._receive()
            data = bytes(self._rx[:size])
            del self._rx[:size]
        return data

    def write(self, data: Any) -> int:
        if not self.is_open:
            raise PortNotOpenError()
        return len(bytes(data))  # the receiver ignores what it is sent

    def reset_input_buffer(self) -> None:
        with self._lock:
            self._rx.clear()

    def reset_output_buffer(self) -> None:
        pass
