"""Test helpers shipped in the package: a real pymodbus server in a background thread.

:class:`ModbusTestServer` runs pymodbus's own server (``ModbusTcpServer`` on a free
loopback port, or ``ModbusSerialServer`` with the RTU framer on a pseudo-terminal pair at
8N1) in a thread with its own asyncio loop. Tests set register values, make a unit stop
answering and answer again, and count the requests each unit received::

    with ModbusTestServer.tcp(units=(1, 2)) as srv:
        srv.set_value(1, 0, 81.99, "float32")            # holding 0-1 of unit 1
        srv.set_registers(2, 10, [1, 2, 3], kind="input")
        client = srv.client(timeout=0.3)                  # connected sync client
        srv.mute(2)                                       # unit 2 stops answering
        ...
        srv.unmute(2)

    with ModbusTestServer.rtu(units=(1,)) as srv:         # RTU over a pty pair
        client = srv.client()                             # ModbusSerialClient(srv.port)

Every unit has ``size`` holding and ``size`` input registers (0 … size−1, all 0); reading
beyond them gets an "illegal data address" exception reply. A unit that is not in
``units``, or that is muted, gets no reply at all, as on a real RS-485 line (the client
times out). The server uses the ``SimDevice``/``SimData`` datastore of pymodbus 3.16 (the
``ModbusDeviceContext`` classes warn as deprecated there).
"""

from __future__ import annotations

import asyncio
import logging
import os
import selectors
import threading
import tty
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from pymodbus.client import ModbusSerialClient, ModbusTcpClient
from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from .driver import Driver
from .errors import ConfigError
from .modbus import encode
from .schema import Ctx

_HOLDING_CODES = frozenset((3, 6, 16, 22, 23))


@dataclass(frozen=True)
class Request:
    """One request a server received: unit, function code, first address, register count."""

    unit: int
    function_code: int
    address: int
    count: int


def quiet_pymodbus() -> None:
    """pymodbus logs every timeout at ERROR with a frame dump; tests count outcomes instead."""
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)


def build_driver(driver_cls: type[Driver], options: Any, address: int | None = 1,
                 name: str = "dev") -> Driver:
    """Check ``options`` against the driver's schema, as the daemon does, and build it
    (raises :class:`~daq.errors.ConfigError` with every problem)."""
    ctx = Ctx()
    checked = driver_cls.options_schema.check(options, "options", None, ctx)
    if ctx.problems:
        raise ConfigError(ctx.problems)
    return driver_cls(name, address, checked)


class PtyPair:
    """Two pseudo-terminals joined back to back by a relay thread (a null-modem cable).

    ``a`` and ``b`` are device paths (``/dev/pts/N``); bytes written to one are read from
    the other. The relay forwards bytes as they come; it does not emulate baud-rate timing.
    """

    def __init__(self) -> None:
        self._m1, self._s1 = os.openpty()
        self._m2, self._s2 = os.openpty()
        for fd in (self._s1, self._s2):
            tty.setraw(fd)  # no echo, no line discipline before pyserial configures the port
        self.a = os.ttyname(self._s1)
        self.b = os.ttyname(self._s2)
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._relay, name="pty-relay", daemon=True)
        self._thread.start()

    def _relay(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._m1, selectors.EVENT_READ, self._m2)
        sel.register(self._m2, selectors.EVENT_READ, self._m1)
        sel.register(self._wake_r, selectors.EVENT_READ, None)
        try:
            while True:
                for key, _ in sel.select():
                    if key.data is None:
                        return
                    try:
                        data = os.read(key.fd, 4096)
                    except OSError:  # the other end closed the slave: keep relaying
                        continue
                    if data:
                        os.write(key.data, data)
        finally:
            sel.close()

    def close(self) -> None:
        os.write(self._wake_w, b"x")
        self._thread.join(timeout=2)
        for fd in (self._m1, self._s1, self._m2, self._s2, self._wake_r, self._wake_w):
            os.close(fd)


class ModbusTestServer:
    """A real pymodbus server (TCP or RTU) serving ``units`` from a background thread."""

    def __init__(self, units: Iterable[int] = (1,), *, transport: str = "tcp",
                 size: int = 1000) -> None:
        if transport not in ("tcp", "rtu"):
            raise ValueError("transport is 'tcp' or 'rtu'")
        self.units = tuple(units)
        self.transport = transport
        self.size = size
        self.requests: list[Request] = []
        self.muted: set[int] = set()
        self._store = {(u, k): [0] * size for u in self.units for k in ("holding", "input")}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._pty: PtyPair | None = None
        self.host = "127.0.0.1"
        self.port: Any = None  # TCP: the port number; RTU: the client-side pty path

    # -- construction -----------------------------------------------------------------
    @classmethod
    def tcp(cls, units: Iterable[int] = (1,), size: int = 1000) -> ModbusTestServer:
        """A started TCP server on a free loopback port (``.host``, ``.port``, ``.url``)."""
        return cls(units, transport="tcp", size=size).start()

    @classmethod
    def rtu(cls, units: Iterable[int] = (1,), size: int = 1000) -> ModbusTestServer:
        """A started RTU server on one end of a pty pair; ``.port`` is the other end."""
        return cls(units, transport="rtu", size=size).start()

    @property
    def url(self) -> str:
        """``tcp://127.0.0.1:PORT`` or the pty path: what a bus ``url`` would hold."""
        return f"tcp://{self.host}:{self.port}" if self.transport == "tcp" else str(self.port)

    # -- registers --------------------------------------------------------------------
    def set_registers(self, unit: int, address: int, words: Sequence[int],
                      kind: str = "holding") -> None:
        """Set raw 16-bit words starting at ``address`` (0-based)."""
        regs = self._store[(unit, kind)]
        if address < 0 or address + len(words) > len(regs):
            raise IndexError(f"registers {address}..{address + len(words) - 1} outside 0.."
                             f"{len(regs) - 1}")
        regs[address:address + len(words)] = [int(w) & 0xFFFF for w in words]

    def set_value(self, unit: int, address: int, value: float, data_type: str = "uint16",
                  word_order: str = "big", kind: str = "holding") -> None:
        """Encode ``value`` (see :func:`daq.modbus.encode`) and set its registers."""
        self.set_registers(unit, address, encode(value, data_type, word_order), kind)

    def get_registers(self, unit: int, address: int, count: int,
                      kind: str = "holding") -> list[int]:
        return list(self._store[(unit, kind)][address:address + count])

    def mute(self, unit: int) -> None:
        """The unit stops answering (requests are still counted)."""
        self.muted.add(unit)

    def unmute(self, unit: int) -> None:
        self.muted.discard(unit)

    def requests_for(self, unit: int) -> list[Request]:
        return [r for r in self.requests if r.unit == unit]

    # -- client -----------------------------------------------------------------------
    def client(self, timeout: float = 0.5, retries: int = 0) -> Any:
        """A connected pymodbus sync client for this server (caller closes it)."""
        client: Any
        if self.transport == "tcp":
            client = ModbusTcpClient(self.host, port=self.port, timeout=timeout,
                                     retries=retries)
        else:
            client = ModbusSerialClient(str(self.port), framer=FramerType.RTU,
                                        baudrate=115200, bytesize=8, parity="N", stopbits=1,
                                        timeout=timeout, retries=retries)
        if not client.connect():
            raise ConnectionError(f"cannot connect to {self.url}")
        return client

    # -- server internals -------------------------------------------------------------
    async def _action(self, unit: int, function_code: int, start: int, address: int,
                      count: int, current: list[int], values: Any) -> None:
        kind = "holding" if function_code in _HOLDING_CODES else "input"
        regs = self._store[(unit, kind)]
        if values is None:
            current[address - start:address - start + count] = regs[address:address + count]
        else:
            regs[address:address + len(values)] = [int(v) for v in values]

    def _devices(self) -> list[SimDevice]:
        def block(kind: str) -> list[SimData]:
            return [SimData(0, count=self.size, values=0, datatype=DataType.REGISTERS)]
        bits = [SimData(0, values=[False] * 16, datatype=DataType.BITS)]
        return [SimDevice(id=u, simdata=(bits, list(bits), block("holding"), block("input")),
                          action=partial(self._action, u)) for u in self.units]

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        if not sending or not data:
            return data
        unit = data[0] if self.transport == "rtu" else (data[6] if len(data) > 6 else -1)
        if unit in self.muted or unit not in self.units:
            return b""  # no reply: the client times out, as with a dead slave on RS-485
        return data

    def _trace_pdu(self, sending: bool, pdu: Any) -> Any:
        if not sending:
            self.requests.append(Request(pdu.dev_id, pdu.function_code,
                                         getattr(pdu, "address", 0), getattr(pdu, "count", 0)))
        return pdu

    async def _serve(self, started: threading.Event, failure: list[BaseException]) -> None:
        try:
            kwargs: dict[str, Any] = {"trace_packet": self._trace_packet,
                                      "trace_pdu": self._trace_pdu}
            if self.transport == "tcp":
                self._server = ModbusTcpServer(self._devices(), framer=FramerType.SOCKET,
                                               address=(self.host, 0), **kwargs)
            else:
                assert self._pty is not None
                self._server = ModbusSerialServer(self._devices(), framer=FramerType.RTU,
                                                  port=self._pty.a, baudrate=115200,
                                                  bytesize=8, parity="N", stopbits=1, **kwargs)
            await self._server.serve_forever(background=True)
            if self.transport == "tcp":
                self.port = self._server.transport.sockets[0].getsockname()[1]
        except BaseException as err:  # reported to the starting thread
            failure.append(err)
            started.set()
            return
        started.set()
        await self._server.serving

    def start(self) -> ModbusTestServer:
        quiet_pymodbus()
        if self.transport == "rtu":
            self._pty = PtyPair()
            self.port = self._pty.b
        started = threading.Event()
        failure: list[BaseException] = []
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._serve(started, failure))

        self._thread = threading.Thread(target=run, name=f"modbus-{self.transport}-server",
                                        daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise TimeoutError("Modbus test server did not start")
        if failure:
            self.stop()
            raise RuntimeError(f"Modbus test server failed: {failure[0]!r}") from failure[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._server is not None and self._thread is not None:
            fut = asyncio.run_coroutine_threadsafe(self._server.shutdown(), self._loop)
            try:
                fut.result(timeout=5)
            except Exception:  # already stopping: the thread join below still bounds it
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._loop is not None and not self._loop.is_running():
            self._loop.close()
        if self._pty is not None:
            self._pty.close()
        self._server = self._thread = self._loop = self._pty = None

    def __enter__(self) -> ModbusTestServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
