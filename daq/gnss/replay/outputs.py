"""Where a replayed receiver goes: a pseudo-terminal, any pyserial URL, or a TCP server.

- :func:`open_pty` → ``(master_fd, slave_path)``: the slave is in raw mode (no echo, no
  line editing, no XON/XOFF), so RTCM/UBX bytes pass unchanged; the daemon opens
  ``slave_path`` like a serial port. Bytes written while no one has it open are lost on
  open (pyserial flushes its input), as with a real receiver on a cable.
- :class:`PtyWriter`: writes to the master without ever blocking for long: when the
  reader does not keep up for ``timeout`` seconds the rest of the chunk is dropped and
  counted in ``dropped`` (a real receiver does not wait either).
- :class:`TcpServer` (``tcpsvr://HOST:PORT``, as RTKLIB's str2str): every client that
  connects gets the stream from then on.
- :func:`open_output` turns ``pty`` / ``tcpsvr://…`` / a device or pyserial URL into an
  :class:`Output` (``write``, ``close``, ``where``).
"""

from __future__ import annotations

import fcntl
import os
import select
import socket
import struct
import termios
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass


def open_pty() -> tuple[int, str]:
    """A pseudo-terminal pair in raw mode: ``(master_fd, slave_path)``."""
    master, slave = os.openpty()
    path = os.ttyname(slave)
    tty.setraw(slave)
    os.close(slave)
    os.set_blocking(master, False)
    return master, path


def pty_has_reader(master_fd: int) -> bool:
    """True while some process has the slave side open (no hang-up on the master)."""
    poller = select.poll()
    poller.register(master_fd, select.POLLHUP)
    return not any(ev & select.POLLHUP for _fd, ev in poller.poll(0))


def wait_for_reader(master_fd: int, timeout: float, settle: float = 0.2) -> bool:
    """Wait up to ``timeout`` s for the slave to be opened; then ``settle`` s more, so the
    reader's own input flush on open (pyserial does one) is over before bytes flow."""
    deadline = time.monotonic() + timeout
    while not pty_has_reader(master_fd):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    time.sleep(settle)
    return True


def drain_pty(slave_path: str, timeout: float = 5.0) -> int:
    """Wait up to ``timeout`` s for the reader to take what is queued on the slave side
    (closing the master drops it); returns the bytes still queued."""
    try:
        fd = os.open(slave_path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError:
        return 0
    try:
        deadline = time.monotonic() + timeout
        empty = 0
        while True:   # empty several times in a row: the kernel's flip buffer is out too
            left = struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0" * 4))[0]
            empty = 0 if left else empty + 1
            if empty >= 10 or time.monotonic() >= deadline:
                return int(left)
            time.sleep(0.02)
    finally:
        os.close(fd)


class PtyWriter:
    """``write(data)`` to a pty master; drops (and counts) what waits over ``timeout`` s."""

    def __init__(self, master_fd: int, timeout: float = 1.0) -> None:
        self.fd = master_fd
        self.timeout = timeout
        self.dropped = 0
        os.set_blocking(master_fd, False)

    def __call__(self, data: bytes) -> None:
        self.write(data)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.fd, view)
            except BlockingIOError:
                n = 0
            view = view[n:]
            if view and not select.select([], [self.fd], [], self.timeout)[1]:
                self.dropped += len(view)
                return


class TcpServer:
    """A TCP listener that sends every written chunk to all connected clients."""

    def __init__(self, host: str = "", port: int = 0) -> None:
        self._sock = socket.create_server((host, port))
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self._clients: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        threading.Thread(target=self._accept, name="gnss-replay-tcp", daemon=True).start()

    @property
    def clients(self) -> int:
        with self._lock:
            return len(self._clients)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _addr = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(2.0)
            with self._lock:
                self._clients.append(conn)

    def __call__(self, data: bytes) -> None:
        self.write(data)

    def write(self, data: bytes) -> None:
        with self._lock:
            for conn in list(self._clients):
                try:
                    conn.sendall(data)
                except OSError:           # the client went away or stalled: forget it
                    self._clients.remove(conn)
                    conn.close()

    def close(self) -> None:
        self._closed.set()
        self._sock.close()
        with self._lock:
            for conn in self._clients:
                conn.close()
            self._clients.clear()


@dataclass
class Output:
    """An opened destination: ``write(bytes)``, ``close()``, ``where`` (what to open)."""

    write: Callable[[bytes], object]
    close: Callable[[], None]
    where: str


def open_output(to: str) -> Output:
    """``pty``, ``tcpsvr://[HOST]:PORT`` or a serial device / pyserial URL."""
    if to == "pty":
        master, path = open_pty()

        def close() -> None:
            drain_pty(path)
            os.close(master)
        return Output(PtyWriter(master), close, path)
    if to.startswith("tcpsvr://"):
        host, _, port = to[len("tcpsvr://"):].rpartition(":")
        server = TcpServer(host, int(port))
        return Output(server, server.close, f"tcp://{host or '0.0.0.0'}:{server.port}")
    import serial  # pyserial: devices and URLs (socket://, rfc2217://, loop:// …)
    port_ = serial.serial_for_url(to, baudrate=115200, write_timeout=2.0)
    return Output(port_.write, port_.close, to)
