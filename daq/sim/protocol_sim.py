"""pyserial URL handler ``sim://NAME?seed=N&dropout=P&spikes=P&time=T``: a simulated RS-485
line with the Modbus RTU slaves of :mod:`daq.sim.devices` on it.

``import daq.sim`` registers the handler, after which ``serial.serial_for_url("sim://x")``
and pymodbus's ``ModbusSerialClient("sim://x")`` both work. Parameters:

* ``seed`` (int, default 0): the reservoir model (:class:`~daq.sim.reservoir.Reservoir`);
* ``dropout`` (0…1, default 0): probability that a request gets no reply;
* ``spikes`` (0…1, default 0): probability that a quantity's 1 Hz sample is spiked;
* ``time`` (epoch seconds): freeze the model's clock (default: the system clock);
* ``units`` (e.g. ``1,2,5``): the units present on the line (default: all six).

Every port opened on one NAME shares a :class:`SimLine` (``daq.sim.line(NAME)``) that counts
requests, replies, dropouts and served spikes. Baud rate and framing settings are
accepted and ignored; a reply is in the input buffer as soon as the request is written.
"""

from __future__ import annotations

import random
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from serial.serialutil import PortNotOpenError, SerialBase, SerialException

from . import rtu
from .devices import DEVICES
from .reservoir import Reservoir


@dataclass
class SimLine:
    """The state of one simulated line (shared by all ports opened on its name)."""

    name: str
    reservoir: Reservoir
    dropout: float = 0.0
    spikes: float = 0.0
    units: frozenset[int] = frozenset(DEVICES)
    clock: Callable[[], float] = time.time
    requests: int = 0
    replies: int = 0
    dropouts: int = 0
    spikes_served: int = 0
    served: deque[tuple[int, float]] = field(default_factory=lambda: deque(maxlen=1000))
    _rng: random.Random = field(default_factory=random.Random)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, data: bytes) -> bytes | None:
        """One request frame in, the reply frame (or None: silence) out."""
        with self._lock:
            self.requests += 1
            req = rtu.parse_request(data)
            if req is None or req.unit not in self.units:
                return None
            if self.dropout > 0 and self._rng.random() < self.dropout:
                self.dropouts += 1
                return None
            t = self.clock()
            truth = self.reservoir.truth(t)

            def spiked(key: str) -> bool:
                hit = self.reservoir.spike(key, t, self.spikes)
                self.spikes_served += hit
                return hit

            tables = DEVICES[req.unit](truth, spiked)

            def source(kind: str, address: int, count: int) -> list[int] | None:
                table = tables[kind]
                return table[address:address + count] if address + count <= len(table) else None

            reply = rtu.answer(req, source)
            if reply is not None:
                self.replies += 1
                self.served.append((req.unit, truth.t))
            return reply


_LINES: dict[str, SimLine] = {}
_LINES_LOCK = threading.Lock()


def line(name: str) -> SimLine | None:
    """The line last opened under ``name`` (None if never opened)."""
    return _LINES.get(name)


def _line_from_url(url: str) -> SimLine:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "sim" or not parts.netloc:
        raise SerialException(f"expected sim://NAME[?seed=N&dropout=P&spikes=P], got {url!r}")
    known = {"seed", "dropout", "spikes", "time", "units"}
    opts = {k: v[-1] for k, v in urllib.parse.parse_qs(parts.query).items()}
    if unknown := set(opts) - known:
        raise SerialException(f"sim:// does not know {', '.join(sorted(unknown))} "
                              f"(known: {', '.join(sorted(known))})")
    try:
        seed = int(opts.get("seed", 0))
        dropout, spikes = float(opts.get("dropout", 0)), float(opts.get("spikes", 0))
        units = frozenset(int(u) for u in opts["units"].split(",")) if "units" in opts \
            else frozenset(DEVICES)
        frozen = float(opts["time"]) if "time" in opts else None
    except ValueError as err:
        raise SerialException(f"bad sim:// parameter in {url!r}: {err}") from err
    if not (0 <= dropout <= 1 and 0 <= spikes <= 1) or not units <= set(DEVICES):
        raise SerialException(f"sim:// dropout/spikes must be 0..1, units among "
                              f"{sorted(DEVICES)}: {url!r}")
    with _LINES_LOCK:
        existing = _LINES.get(parts.netloc)
        if existing is not None and (existing.reservoir.seed, existing.dropout,
                                     existing.spikes, existing.units) == (seed, dropout,
                                                                          spikes, units):
            sim = existing
        else:
            sim = SimLine(parts.netloc, Reservoir(seed), dropout, spikes, units)
            sim._rng.seed(seed)
            _LINES[parts.netloc] = sim
        if frozen is not None:
            sim.clock = lambda: frozen
    return sim


class Serial(SerialBase):
    """A pyserial port whose far end is the simulated line."""

    is_open: bool

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._rx = bytearray()
        self._tx = bytearray()
        self._cond = threading.Condition()
        self.sim: SimLine | None = None
        super().__init__(*args, **kwargs)

    def open(self) -> None:
        if self.is_open:
            raise SerialException("Port is already open.")
        if self._port is None:
            raise SerialException("Port must be configured before it can be used.")
        self.sim = _line_from_url(str(self.port))
        self.is_open = True
        self.reset_input_buffer()
        self.reset_output_buffer()

    def close(self) -> None:
        self.is_open = False
        with self._cond:
            self._cond.notify_all()

    def _reconfigure_port(self) -> None:
        pass  # baud rate, parity … mean nothing on a simulated line

    @property
    def in_waiting(self) -> int:
        if not self.is_open:
            raise PortNotOpenError()
        return len(self._rx)

    def read(self, size: int = 1) -> bytes:
        if not self.is_open:
            raise PortNotOpenError()
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        with self._cond:
            while len(self._rx) < size:
                left = None if deadline is None else deadline - time.monotonic()
                if (left is not None and left <= 0) or not self.is_open:
                    break
                self._cond.wait(left)
            data = bytes(self._rx[:size])
            del self._rx[:size]
        return data

    def write(self, data: Any) -> int:
        if not self.is_open or self.sim is None:
            raise PortNotOpenError()
        data = bytes(data)
        self._tx += data
        while (n := rtu.request_length(bytes(self._tx))) is not None and len(self._tx) >= n:
            request = bytes(self._tx[:n])
            del self._tx[:n]
            reply = self.sim.handle(request)
            if reply:
                with self._cond:
                    self._rx += reply
                    self._cond.notify_all()
        return len(data)

    def reset_input_buffer(self) -> None:
        with self._cond:
            self._rx.clear()

    def reset_output_buffer(self) -> None:
        self._tx.clear()

    @property
    def out_waiting(self) -> int:
        return 0

    def _update_break_state(self) -> None:
        pass

    def _update_rts_state(self) -> None:
        pass

    def _update_dtr_state(self) -> None:
        pass

    @property
    def cts(self) -> bool:
        return True

    @property
    def dsr(self) -> bool:
        return True

    @property
    def ri(self) -> bool:
        return False

    @property
    def cd(self) -> bool:
        return True
