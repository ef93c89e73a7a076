"""Where a replayed receiver goes: a pseudo-terminal, any pyserial URL, or a TCP server.

- :func:`open_pty` → ``(master_fd, slave_path)``: the slave is in raw mode (no echo, no
  line editing, no XON/XOFF), so RTCM/UBX bytes pass unchanged; the daemon opens
  ``slave_path`` like a serial port. Bytes written while no one has it open are lost on
  open (pyserial flushes its input), as with a real receiver on a cable.
- :class:`PtyWriter`: writes to the master; when nobody has the slave open for
  ``timeout`` seconds the rest of the chunk is dropped and counted in ``dropped`` (a real
  receiver does not wait either). A reader that is there but slow (a loaded machine) is
  waited for, up to ``stall`` seconds without progress: nothing it would read is lost.
- :func:`drain_pty`: before the master closes (which discards what the slave has not read
  yet), wait while the reader makes progress; what is left is returned, and reported.
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


QUIET_S = 2.0   # drain_pty: how long the reader's queue must stay empty


def drain_pty(master_fd: int, slave_path: str, stall: float = 30.0) -> int:
    """Wait for the reader to take what is queued on the slave side (closing the master
    drops it), as long as it makes progress within ``stall`` s; returns the bytes still
    queued (0: all delivered, or nobody was reading)."""
    try:
        termios.tcdrain(master_fd)          # what the master still holds goes out first
    except termios.error:
        pass
    if not pty_has_reader(master_fd):
        return 0                            # nobody reads: nothing to wait for
    try:
        fd = os.open(slave_path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError:
        return -1                           # cannot look: unknown
    try:
        last, since = -1, time.monotonic()
        empty_since: float | None = None
        while True:
            # FIONREAD sees only the line discipline's 4 kB; up to 64 kB more wait in the
            # kernel's flip buffer until a worker moves them, late on a loaded machine: so
            # "empty" means empty for QUIET_S, not for one look
            left = int(struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0" * 4))[0])
            now = time.monotonic()
            empty_since = None if left else (empty_since or now)
            if empty_since is not None and now - empty_since >= QUIET_S:
                return 0
            if left != last:
                last, since = left, time.monotonic()
            elif time.monotonic() - since > stall:
                return left                 # the reader stopped reading
            time.sleep(0.02)
    finally:
        os.close(fd)


class PtyWriter:
    """``write(data)`` to a pty master; drops (and counts) what waits over ``timeout`` s."""

    def __init__(self, master_fd: int, timeout: float = 1.0, stall: float = 30.0) -> None:
        self.fd = master_fd
        self.timeout, self.stall = timeout, stall
        self.dropped = 0
        os.set_blocking(master_fd, False)

    def __call__(self, data: bytes) -> None:
        self.write(data)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        since = time.monotonic()
        while view:
            try:
                n = os.write(self.fd, view)
            except BlockingIOError:
                n = 0
            if n:
                since = time.monotonic()
            view = view[n:]
            if view and not select.select([], [self.fd], [], self.timeout)[1]:
                if pty_has_reader(self.fd) and time.monotonic() - since < self.stall:
                    continue                # a slow reader, not an absent one: wait
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
    """An opened destination: ``write(bytes)``, ``close()`` (→ bytes left unread, 0 when
    all were delivered), ``where`` (what to open)."""

    write: Callable[[bytes], object]
    close: Callable[[], int]
    where: str


def open_output(to: str) -> Output:
    """``pty``, ``tcpsvr://[HOST]:PORT`` or a serial device / pyserial URL."""
    if to == "pty":
        master, path = open_pty()

        def close() -> int:
            try:
                return drain_pty(master, path)
            finally:
                os.close(master)
        return Output(PtyWriter(master), close, path)
    if to.startswith("tcpsvr://"):
        host, _, port = to[len("tcpsvr://"):].rpartition(":")
        server = TcpServer(host, int(port))

        def close_server() -> int:
            server.close()
            return 0
        return Output(server, close_server, f"tcp://{host or '0.0.0.0'}:{server.port}")
    import serial  # pyserial: devices and URLs (socket://, rfc2217://, loop:// …)
    port_ = serial.serial_for_url(to, baudrate=115200, write_timeout=2.0)

    def close_port() -> int:
        port_.flush()                       # tcdrain: every byte out before the close
        port_.close()
        return 0
    return Output(port_.write, close_port, to)
