"""Play a GNSS receiver back, in real time or N times faster: a simulated receiver for tests
and for technicians without one.

A source is a list of timed chunks ``(t, bytes)`` (``t`` in seconds, any origin): a raw log
cut at its observation epochs (:func:`raw_log_chunks`: RTCM 3 MSM / 1004, UBX RXM-RAWX /
RXM-RAW / NAV-PVT give the time; frames without a time go out with the preceding timed
frame, those before the first one with it, and bytes between frames are kept as they are),
or :func:`rinex_to_rtcm` (a RINEX session as a reference station's RTCM 3 stream, GPST
seconds). :class:`Replayer` writes chunk *k* at ``t_k − t_0`` seconds / ``speed`` after it
started, in its own thread. Outputs (pseudo-terminal, pyserial URL, TCP server) are in
:mod:`daq.gnss.replay.outputs`.

Usage::

    master, slave_path = open_pty()          # the daemon opens slave_path as its port
    chunks = rinex_to_rtcm(obs, [nav], (x, y, z))     # or a raw log's path / bytes
    ...                                      # start the daemon on slave_path
    wait_for_reader(master, timeout=10)      # bytes sent before it opens the port are lost
    with Replayer(chunks, PtyWriter(master), speed=600) as rep:
        rep.wait(timeout=60)                 # until the end; stop() on leaving the block
    os.close(master)
"""

from __future__ import annotations

import math
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType

from daq.gnss import obs
from daq.gnss.rinex import read_nav, read_obs
from daq.gnss.streams.bits import Bits
from daq.gnss.streams.framing import Frame, Framer
from daq.gnss.streams.rtcm3 import MSM_SYSTEMS, msm_gps_tow

from .outputs import PtyWriter, open_pty, wait_for_reader
from .rtcm3_encode import (
    EPH_SYSTEMS,
    MSM_NUMBER,
    EncodeError,
    Rtcm3Encoder,
    ephemeris_message,
)

__all__ = ["PtyWriter", "Replayer", "open_pty", "raw_log_chunks", "rinex_to_rtcm",
           "wait_for_reader"]

Chunk = tuple[float, bytes]
WEEK_S = 604800.0


def frame_time(frame: Frame, leap_seconds: int = 18) -> float | None:
    """GPS seconds of week of an observation frame's epoch, None for frames without one."""
    if frame.kind == "rtcm3" and isinstance(frame.msg, int) and len(frame.payload) >= 7:
        b = Bits(frame.payload, 24)
        if frame.msg // 10 in MSM_SYSTEMS and 1 <= frame.msg % 10 <= 7:
            return msm_gps_tow(MSM_SYSTEMS[frame.msg // 10], b, leap_seconds)[0]
        if frame.msg in (1001, 1002, 1003, 1004):
            return b.u(30) * 1e-3
    if frame.kind == "ubx" and len(frame.payload) >= 8:
        if frame.msg == (2, 0x15):                         # RXM-RAWX rcvTow, s
            return float(struct.unpack_from("<d", frame.payload)[0])
        if frame.msg in ((2, 0x10), (1, 7)):               # RXM-RAW / NAV-PVT iTOW, ms
            return int.from_bytes(frame.payload[:4], "little", signed=True) * 1e-3
    return None


def raw_log_chunks(data: bytes, leap_seconds: int = 18) -> list[Chunk]:
    """Cut a raw log into timed chunks (seconds of week, continued across week ends).

    The chunks joined give back ``data`` from its first frame on, byte for byte.
    """
    framer = Framer()
    frames = framer.feed(data) + framer.flush()
    chunks: list[Chunk] = []
    pos = cut = -1
    t_prev: float | None = None
    for fr in frames:
        pos = data.find(fr.raw, max(pos, 0))
        if cut < 0:
            cut = pos
        tow = frame_time(fr, leap_seconds)
        if tow is None or not math.isfinite(tow):
            continue
        t = tow if t_prev is None else tow + WEEK_S * round((t_prev - tow) / WEEK_S)
        if t_prev is None:
            t_prev = t
            continue
        if t != t_prev and pos > cut:
            chunks.append((t_prev, data[cut:pos]))
            cut = pos
        t_prev = t
    if cut >= 0 and t_prev is not None:
        chunks.append((t_prev, data[cut:]))
    elif cut >= 0:
        chunks.append((0.0, data[cut:]))
    return chunks


def _available(e: obs.KeplerEphemeris) -> float:
    """GPST seconds from which a receiver could have this ephemeris (its ``ttr``)."""
    toe = e.toe_time.gps_seconds
    dt = (e.ttr - e.toe + WEEK_S / 2) % WEEK_S - WEEK_S / 2
    return toe + dt if abs(dt) < 86400.0 else toe


def rinex_to_rtcm(obs_path: str | Path, nav_paths: str | Path | Sequence[str | Path],
                  station_xyz: Sequence[float], *, systems: str = "GEC", msm: int = 7,
                  station_id: int = 0, eph_repeat_s: float = 300.0,
                  station_repeat_s: float = 30.0, start: float | None = None,
                  end: float | None = None,
                  counts: Counter[str] | None = None) -> Iterator[Chunk]:
    """A RINEX session as a base station's RTCM 3: ``(GPST seconds, frames)`` per epoch.

    Each epoch's bytes are: 1005 (first epoch, then every ``station_repeat_s``), the
    ephemerides (1019/1042/1046) that became available since the last epoch (at their
    RINEX transmission time ``ttr``; at the first epoch the newest per satellite) or, every
    ``eph_repeat_s`` of data time, all current ones, then the MSM messages of ``systems``
    (G, E, C). ``start``/``end`` (GPST seconds) bound the epochs; event epochs are skipped.
    What could not be encoded is counted in ``counts`` if given (``ephemeris_<field>`` for
    a record left out, plus :attr:`Rtcm3Encoder.skipped`), never raised.
    """
    data = read_obs(obs_path)
    paths = [nav_paths] if isinstance(nav_paths, str | Path) else list(nav_paths)
    seen: set[tuple[object, ...]] = set()
    ephs: list[tuple[float, obs.KeplerEphemeris]] = []
    for nav in (read_nav(p) for p in paths):
        for e in nav.ephemerides:
            if not isinstance(e, obs.KeplerEphemeris) or e.system not in EPH_SYSTEMS \
                    or e.system not in systems:
                continue
            ident = (e.sat, e.week, e.toe, e.iode, e.codes)
            if ident not in seen:
                seen.add(ident)
                ephs.append((_available(e), e))
    ephs.sort(key=lambda item: item[0])
    enc = Rtcm3Encoder(station_id)
    current: dict[tuple[str, int], obs.KeplerEphemeris] = {}
    i, last_station, last_repeat = 0, -math.inf, -math.inf
    for epoch in data.epochs:
        t = epoch.time.gps_seconds
        if epoch.flag > 1 or (start is not None and t < start) or (end is not None and t > end):
            continue
        out = bytearray()
        if t - last_station >= station_repeat_s:
            out += enc.station(station_xyz)
            last_station = t
        changed: set[tuple[str, int]] = set()
        while i < len(ephs) and ephs[i][0] <= t:
            e = ephs[i][1]
            key = (e.sat, ephemeris_message(e)[0])
            old = current.get(key)
            if old is None or e.toe_time.gps_seconds >= old.toe_time.gps_seconds:
                current[key] = e
                changed.add(key)
            i += 1
        if t - last_repeat >= eph_repeat_s:
            changed, last_repeat = set(current), t
        for k in sorted(changed):
            try:
                out += enc.ephemeris(current[k])
            except EncodeError as err:
                enc.skipped[f"ephemeris_{err.field}"] += 1
        out += b"".join(enc.epoch(epoch, "".join(s for s in systems if s in MSM_NUMBER), msm))
        if counts is not None:
            counts.update(enc.skipped)
            enc.skipped.clear()
        yield t, bytes(out)


class Replayer:
    """Writes timed chunks to ``write`` at ``speed`` × their own pace, in a thread.

    ``source``: a raw log (path or bytes) or an iterable of ``(t, bytes)``; ``write``: a
    callable taking bytes (:class:`PtyWriter`, ``serial.write``, a socket's ``sendall``);
    ``speed``: 1 = real time, 60 = sixty times faster, ``math.inf`` = as fast as possible;
    ``start``: seconds of data time to skip from the beginning; ``loop``: start over at the
    end (the data's time then jumps back, as a real log played twice would). ``start()``
    runs it (or use it as a context manager); ``stop()`` ends it; ``done`` is set at the
    end; ``error`` holds the exception that ended it early (e.g. the port went away).
    """

    def __init__(self, source: str | Path | bytes | Iterable[Chunk],
                 write: Callable[[bytes], object], speed: float = 1.0, start: float = 0.0,
                 loop: bool = False, leap_seconds: int = 18) -> None:
        if not speed > 0:
            raise ValueError("speed must be > 0")
        if not callable(write):
            raise TypeError("write must be callable")
        if isinstance(source, str | Path):
            source = Path(source).read_bytes()
        self._chunks: Iterable[Chunk] = (raw_log_chunks(source, leap_seconds)
                                         if isinstance(source, bytes) else source)
        self._write = write
        self.speed = float(speed)
        self.start_offset = float(start)
        self.loop = loop
        self.bytes_written = 0
        self.chunks_written = 0
        self.error: BaseException | None = None
        self.done = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gnss-replay", daemon=True)

    def start(self) -> Replayer:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the replay has ended (True) or ``timeout`` passed (False)."""
        return self.done.wait(timeout)

    def __enter__(self) -> Replayer:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            self._play()
        except Exception as err:  # the output failed: keep it for the caller, end quietly
            self.error = err
        finally:
            self.done.set()

    def _play(self) -> None:
        cache: list[Chunk] | None = [] if self.loop else None
        chunks: Iterable[Chunk] = self._chunks
        wall0 = time.monotonic()
        first = True
        t0 = 0.0
        last_t, step = 0.0, 1.0
        while True:
            for t, data in chunks:
                if cache is not None and chunks is self._chunks:
                    cache.append((t, data))
                if first:
                    t0, first = t + self.start_offset, False
                if t < t0:
                    continue
                delay = wall0 + (t - t0) / self.speed - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    return
                if self._stop.is_set():
                    return
                self._write(data)
                self.bytes_written += len(data)
                self.chunks_written += 1
                step = t - last_t if t > last_t else step
                last_t = t
            if not self.loop or not cache or self._stop.is_set():
                return
            chunks = cache
            # the next pass starts one epoch interval after the last chunk
            wall0 += (last_t - t0 + step) / self.speed
            t0 = cache[0][0] + self.start_offset
            last_t = t0
