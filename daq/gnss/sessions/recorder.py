"""GNSS inside the daemon: one recording thread per receiver, one solver thread.

:class:`GnssService` is what :class:`daq.daemon.Daemon` creates, starts, stops and asks for
its status. Each :class:`StreamRecorder` owns one port (a pyserial URL: ``/dev/ttyACM0``,
``socket://host:port``, ``rfc2217://…`` or a pseudo-terminal path), reads it with a short
timeout and hands the bytes to its :class:`~daq.gnss.sessions.ingest.StreamIngest`, which appends
epochs and ephemerides to the session store. A port that fails or disappears is closed and
reopened with a doubling backoff (0.5 s up to 30 s), logged once when it goes and once
when it comes back. A port silent for ``silence_s`` (60 s) is reopened too: a half-open TCP
connection (a serial-to-Ethernet converter power-cycled) never reports an error, only
silence; "gnss_port_silent" is logged once, "gnss_port_restored" when bytes flow again.
Sessions live under ``<state dir>/gnss/`` (``daq gnss sessions``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import serial
import structlog

from daq.gnss.gnss_config import GnssConfig, StreamConfig
from daq.gnss.obs import GNSSTime
from daq.outbox import Outbox

from .info import STAMP, UNIX0
from .ingest import StreamIngest
from .solving import SessionSolver
from .store import SessionStore

log = structlog.get_logger("daq.gnss.sessions.recorder")

READ_TIMEOUT_S = 0.2
SILENCE_S = 60.0           # receivers send every second; a minute of nothing is a dead link
BACKOFF_MIN_S, BACKOFF_MAX_S = 0.5, 30.0

Opener = Callable[[StreamConfig], Any]


def open_port(cfg: StreamConfig) -> Any:
    return serial.serial_for_url(cfg.url, baudrate=cfg.baudrate, timeout=READ_TIMEOUT_S)


class StreamRecorder(threading.Thread):
    """Reads one receiver port into its ingest until stopped."""

    def __init__(self, cfg: StreamConfig, ingest: StreamIngest,
                 opener: Opener = open_port, *, silence_s: float = SILENCE_S) -> None:
        super().__init__(name=f"gnss-{cfg.name}", daemon=True)
        self.cfg, self.ingest, self.opener = cfg, ingest, opener
        self.silence_s = silence_s
        self.port: Any = None
        self.error: str | None = None
        self.silent = False               # reopened for silence, no byte since
        self.last_data = time.monotonic()
        self.reopens = 0
        self.heartbeat = time.monotonic()
        self._halt = threading.Event()

    def run(self) -> None:
        backoff = BACKOFF_MIN_S
        while not self._halt.is_set():
            self.heartbeat = time.monotonic()
            if self.port is None:
                if not self._open():
                    self._halt.wait(backoff)
                    backoff = min(backoff * 2, BACKOFF_MAX_S)
                    continue
                backoff = BACKOFF_MIN_S
            try:
                data = self.port.read(4096)
            except (serial.SerialException, OSError) as err:
                if self._halt.is_set():
                    break
                self._lost(err)
                self._halt.wait(backoff)   # a pause before the first reopen too
                continue
            if data:
                self.last_data = time.monotonic()
                if self.silent:
                    self._speaks_again()
                self.ingest.feed(data)
            elif time.monotonic() - self.last_data > self.silence_s:
                self._gone_silent()
        self._close()

    def _open(self) -> bool:
        try:
            self.port = self.opener(self.cfg)
        except (serial.SerialException, OSError, ValueError) as err:
            if self.error is None:
                log.error("gnss_port_unavailable", stream=self.cfg.name, url=self.cfg.url,
                          error=str(err))
            self.error = str(err)
            return False
        self.last_data = time.monotonic()
        if self.silent:   # "restored" is logged when bytes flow again
            return True
        if self.error is not None:
            self.reopens += 1
            log.info("gnss_port_restored", stream=self.cfg.name, url=self.cfg.url)
        else:
            log.info("gnss_port_open", stream=self.cfg.name, url=self.cfg.url)
        self.error = None
        return True

    def _lost(self, err: Exception) -> None:
        log.error("gnss_port_lost", stream=self.cfg.name, url=self.cfg.url, error=str(err))
        self.error = str(err) or type(err).__name__
        self._close()

    def _gone_silent(self) -> None:
        if not self.silent:
            log.warning("gnss_port_silent", stream=self.cfg.name, url=self.cfg.url,
                        seconds=self.silence_s)
        self.silent = True
        self.error = f"no data for {self.silence_s:g} s"
        self._close()

    def _speaks_again(self) -> None:
        self.silent, self.error = False, None
        self.reopens += 1
        log.info("gnss_port_restored", stream=self.cfg.name, url=self.cfg.url)

    def _close(self) -> None:
        if self.port is not None:
            try:
                self.port.close()
            except (serial.SerialException, OSError):
                pass
            self.port = None

    def stop(self) -> None:
        self._halt.set()

    def status(self, session_seconds: int) -> dict[str, Any]:
        c = self.ingest.counters
        session = None
        if c.last_epoch_gps is not None:
            utc = GNSSTime.from_seconds(c.last_epoch_gps).to_utc()
            secs = (utc - UNIX0).total_seconds() // session_seconds * session_seconds
            session = f"{self.cfg.point}/{UNIX0 + timedelta(seconds=secs):{STAMP}}"
        return {"name": self.cfg.name, "url": self.cfg.url, "point": self.cfg.point,
                "format": self.cfg.format, "open": self.port is not None,
                "error": self.error, "reopens": self.reopens, "session": session,
                **c.to_json()}


class GnssService:
    """The recorders, the session store and the solver of one daemon."""

    def __init__(self, cfg: GnssConfig, state_dir: Path, outbox: Outbox, *,
                 on_commit: Callable[[], None] | None = None,
                 opener: Opener = open_port) -> None:
        self.cfg = cfg
        s = cfg.sessions
        self.store = SessionStore(
            state_dir / "gnss", session_hours=s.hours, retention_days=s.retention_days,
            max_total_bytes=None if s.max_mb is None else int(s.max_mb * 2**20))
        self._newest: float | None = None       # newest epoch of any stream, GPST s
        self._newest_mono: float | None = None
        self._lock = threading.Lock()
        self.ingests = {st.name: StreamIngest(st.name, st.point, self.store, fmt=st.format,
                                              leap_seconds=st.leap_seconds)
                        for st in cfg.streams}
        for ing in self.ingests.values():
            ing.on_epoch = self._saw_epoch
        self.recorders = [StreamRecorder(st, self.ingests[st.name], opener)
                          for st in cfg.streams]
        self.solver = SessionSolver(cfg, self.store, state_dir, outbox,
                                    devices={st.point: st.name for st in cfg.streams},
                                    data_clock=self._data_clock,
                                    base_positions=self._station_of, on_commit=on_commit)
        self.store.on_close = self.solver.on_close

    def _saw_epoch(self, gps_seconds: float) -> None:
        with self._lock:
            self._newest = max(self._newest or gps_seconds, gps_seconds)
            self._newest_mono = time.monotonic()

    def _data_clock(self) -> tuple[float | None, float | None]:
        with self._lock:
            return self._newest, self._newest_mono

    def _station_of(self, point: str) -> tuple[float, float, float] | None:
        for ing in self.ingests.values():
            if ing.point == point and ing.station is not None:
                return ing.station.x, ing.station.y, ing.station.z
        return None

    def start(self) -> None:
        self.solver.start()
        for r in self.recorders:
            r.start()
        log.info("gnss_started", streams=len(self.recorders), points=len(self.cfg.points),
                 session_hours=self.cfg.sessions.hours, root=str(self.store.root))

    def alive(self) -> bool:
        return self.solver.is_alive() and all(r.is_alive() for r in self.recorders)

    def stop(self) -> None:
        for r in self.recorders:
            r.stop()
        for r in self.recorders:
            r.join(5.0)
        self.solver.stop()
        self.store.close()   # open sessions stay open on disk and resume after a restart

    def status(self) -> dict[str, Any]:
        length = self.store.length
        return {"streams": [r.status(length) for r in self.recorders],
                "open_sessions": sorted(f"{p.parent.name}/{p.stem}"
                                        for p in self.store.root.glob("*/*.part")),
                "store": dict(self.store.counters), **self.solver.status()}
