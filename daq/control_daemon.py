"""The daemon's side of the control socket: its commands and what ``daq status`` adds.

Commands: ``ping``, ``status`` (the status file's content, live), ``read`` (one poll run
on the bus worker between its own transactions, dry or ``publish``), ``subscribe`` (a
stream of accepted readings, after the last hour of per-minute means per channel). It also
keeps what the status file needs over time: completeness over the last 24 h per device,
the broker's "down since", the clock's sync state. Alarm commands register the same way.
"""

from __future__ import annotations

import collections
import contextlib
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict
from typing import Any

import structlog

from .clockstate import clock_state
from .control import ControlServer, RequestError
from .model import Lane, Reading, format_ts, utcnow

log = structlog.get_logger("daq.control")

WINDOW_S = 24 * 3600
SAMPLE_EVERY_S = 60.0
HISTORY_MINUTES = 60
SUBSCRIBER_QUEUE = 10_000


def reading_event(r: Reading, seq: int) -> dict[str, Any]:
    return {"channel": r.channel, "device": r.device, "sensor": r.sensor,
            "quantity": r.quantity, "value": r.value, "unit": r.unit,
            "quality": r.quality.value, "ts": format_ts(r.ts), "seq": seq,
            "flags": list(r.flags)}


class _Subscriber:
    def __init__(self, device: str | None, sensor: str | None) -> None:
        self.device, self.sensor = device, sensor
        self.queue: queue.Queue[dict[str, Any]] = queue.Queue(SUBSCRIBER_QUEUE)
        self.dropped = 0

    def wants(self, r: Reading) -> bool:
        return ((self.device is None or r.device == self.device)
                and (self.sensor is None or r.sensor == self.sensor
                     or r.channel.split(".")[0] == self.sensor))


class DaemonControl:
    """Owns the ControlServer of one Daemon; ``status()`` goes into the status file."""

    def __init__(self, daemon: Any) -> None:
        self.daemon = daemon
        # the runtime directory under systemd, else the state directory (where `daq` looks);
        # not the status file's tmpfs folder, which only the daemon's own state dir names
        runtime = os.environ.get("RUNTIME_DIRECTORY")
        self.server = ControlServer(runtime or daemon.state_dir)
        self._subs: list[_Subscriber] = []
        self._lock = threading.Lock()
        # channel -> deque of [minute (epoch s), sum, n]
        self._history: dict[str, collections.deque[list[float]]] = {}
        self._samples: collections.deque[tuple[float, dict[str, tuple[int, int]]]] = (
            collections.deque())
        self._next_sample = 0.0
        self._broker_down_since: str | None = format_ts(utcnow())
        self._reader: Any = None
        self._status_lock = threading.Lock()
        self._tap(daemon.outbox)
        # per device: scheduled slots that gave a reading / a gap record (a poll in flight
        # or a `daq read` is neither), for completeness
        self._slots: dict[str, tuple[int, int]] = {}
        for w in daemon.workers:
            self._slots.update(dict.fromkeys(w.devices, (0, 0)))
            w.sink = self._counting(w.sink)
        s = self.server
        s.register("status", lambda a: daemon.status())
        s.register("read", self._read, params={"device": str, "publish": bool,
                                               "timeout": (int, float)},
                   required=("device",))
        s.register("subscribe", self._subscribe, params={"device": str, "sensor": str},
                   stream=True)

    # -- life cycle -----------------------------------------------------------------------

    def start(self) -> None:
        try:
            ok = self.server.bind()
        except OSError as err:  # a read-only runtime dir must not stop acquisition
            log.error("control_socket_failed", path=str(self.server.path), error=str(err))
            return
        if ok:
            self.server.start()
            log.info("control_socket_ready", path=str(self.server.path))

    def stop(self) -> None:
        self.server.stop()
        if self._reader is not None:
            self._reader.close()
        with self._lock:
            for sub in self._subs:
                with contextlib.suppress(queue.Full):
                    sub.queue.put_nowait({"end": "daemon stopping"})

    def _counting(self, sink: Any) -> Any:
        def counted(res: Any) -> None:
            ok, gaps = self._slots.get(res.device.name, (0, 0))
            self._slots[res.device.name] = (ok + 1, gaps) if res.ok else (ok, gaps + 1)
            sink(res)

        return counted

    def _skipped(self, device: str) -> int:
        return next((w.states[device].skipped for w in self.daemon.workers
                     if device in w.states), 0)

    # -- accepted readings: a tap on the outbox's commit -------------------------------------

    def _tap(self, outbox: Any) -> None:
        add = outbox.add

        def tapped(items: Any, **kw: Any) -> list[int]:
            seqs: list[int] = add(items, **kw)
            try:
                self._accepted(items, seqs)
            except Exception as err:  # the live view must never cost a commit
                log.error("control_tap_failed", error=f"{type(err).__name__}: {err}")
            return seqs

        outbox.add = tapped

    def _accepted(self, items: Any, seqs: list[int]) -> None:
        with self._lock:
            subs = list(self._subs)
            for (_, r), seq in zip(items, seqs, strict=False):
                if r.value is not None:
                    self._remember(r)
                for sub in subs:
                    if sub.wants(r):
                        try:
                            sub.queue.put_nowait(reading_event(r, seq))
                        except queue.Full:
                            sub.dropped += 1

    def _remember(self, r: Reading) -> None:
        minute = float(int(r.ts.timestamp() // 60) * 60)
        h = self._history.get(r.channel)
        if h is None:
            h = self._history[r.channel] = collections.deque(maxlen=HISTORY_MINUTES)
        if h and h[-1][0] == minute:
            h[-1][1] += float(r.value or 0.0)
            h[-1][2] += 1
        else:
            h.append([minute, float(r.value or 0.0), 1])

    def history(self, sub: _Subscriber) -> dict[str, Any]:
        cutoff = time.time() - HISTORY_MINUTES * 60
        out = {}
        for ch, h in self._history.items():
            if sub.device is not None and not ch.startswith(f"{sub.device}/"):
                continue
            if sub.sensor is not None and ch.split(".")[0] != sub.sensor:
                continue
            out[ch] = [[format_ts_epoch(m), s / n] for m, s, n in h if m >= cutoff]
        return out

    def _subscribe(self, args: dict[str, Any]) -> Iterator[dict[str, Any]]:
        sub = _Subscriber(args.get("device"), args.get("sensor"))
        self._check_names(sub.device, sub.sensor)
        with self._lock:
            history = self.history(sub)
            self._subs.append(sub)
        return self._events(sub, history)

    def _events(self, sub: _Subscriber, history: dict[str, Any]) -> Iterator[dict[str, Any]]:
        try:
            yield {"history": history}
            while True:
                try:
                    ev = sub.queue.get(timeout=5.0)
                except queue.Empty:
                    yield {"keepalive": format_ts(utcnow()), "dropped": sub.dropped}
                    continue
                yield ev
                if "end" in ev:
                    return
        finally:
            with self._lock:
                if sub in self._subs:
                    self._subs.remove(sub)

    def _check_names(self, device: str | None, sensor: str | None) -> None:
        cfg = self.daemon.cfg
        for what, name, known in (("device", device, {d.name for d in cfg.devices}),
                                  ("sensor", sensor, set(cfg.sensors))):
            if name is not None and name not in known:
                raise RequestError(f"unknown_{what}", unknown(what, name, known))

    # -- read: one poll on the bus worker, between its own polls ---------------------------

    def _read(self, args: dict[str, Any]) -> dict[str, Any]:
        from .readout import PollFailed, describe, dry_readings, probe

        name = args["device"]
        worker = next((w for w in self.daemon.workers if name in w.devices), None)
        if worker is None:
            raise RequestError("unknown_device", unknown(
                "device", name, {d for w in self.daemon.workers for d in w.devices}))
        fut = worker.request(lambda w: probe(w, name))
        try:
            res = fut.result(timeout=float(args.get("timeout", 30.0)))
        except FutureTimeout:
            fut.cancel()
            raise RequestError("timeout", f"bus {worker.bus.name} did not run the poll "
                               "in time") from None
        except PollFailed as err:
            return {"device": name, "bus": worker.bus.name, "ok": False,
                    "error_kind": err.kind, "error": err.text, "served_by": "daemon"}
        pipeline = self.daemon.pipeline
        out = describe(self.daemon.cfg, res, dry_readings(pipeline, res),
                       self.daemon.outbox.last_seq)
        out["served_by"] = "daemon"
        if args.get("publish"):
            pipeline.submit(res)  # the ordinary path: sensor layer, outbox, publisher
            out["published"] = "queued in the daemon's pipeline (outbox, then broker)"
        return out

    # -- status ---------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Fields the daemon adds to its status file (called every 2 s)."""
        with self._status_lock:  # the supervisor and a control client may ask at once
            return self._status()

    def _status(self) -> dict[str, Any]:
        now = time.monotonic()
        counts = {name: (ok, ok + gaps + self._skipped(name))
                  for name, (ok, gaps) in self._slots.items()}
        if now >= self._next_sample:
            self._samples.append((now, counts))
            self._next_sample = now + SAMPLE_EVERY_S
        while self._samples and now - self._samples[0][0] > WINDOW_S:
            self._samples.popleft()
        first_t, first = self._samples[0] if self._samples else (now, {})
        completeness = {}
        for dev, (ok, expected) in counts.items():
            ok0, exp0 = first.get(dev, (0, 0))
            if first_t == now or (ok0, exp0) == (0, 0):  # since start: count from zero
                ok0, exp0 = 0, 0
            n = expected - exp0
            completeness[dev] = {"ok": ok - ok0, "expected": n,
                                 "ratio": round((ok - ok0) / n, 4) if n else None}
        pub = self.daemon.publisher
        if pub is not None:
            if pub.state.connected:
                self._broker_down_since = None
            elif self._broker_down_since is None:
                self._broker_down_since = pub.state.extra.get("disconnected_at") or \
                    format_ts(utcnow())
        cfg = self.daemon.cfg
        return {
            "completeness_24h": completeness,
            "outbox_oldest_unsent": self._oldest_unsent(),
            "sensor_ids": sorted(cfg.sensors),
            "broker_down_since": self._broker_down_since if pub is not None else None,
            "quarantined": [asdict(p) for p in cfg.quarantined],
            "clock": clock_state(),
            "control": {"socket": str(self.server.path), "requests": self.server.requests,
                        "errors": self.server.errors,
                        "running": self.server.is_alive()},
        }

    def _oldest_unsent(self) -> str | None:
        """Measurement time of the oldest reading not yet acknowledged (a read-only look
        at the outbox's first row per lane: an index lookup, not a scan)."""
        from .outbox_read import OutboxReader, OutboxUnreadable

        try:
            if self._reader is None:
                self._reader = OutboxReader(self.daemon.outbox.path)
            st = [self._reader.oldest(lane) for lane in Lane]
        except (OutboxUnreadable, sqlite3.Error):
            return None
        found = [t for t in st if t is not None]
        return format_ts(min(found)) if found else None


def format_ts_epoch(t: float) -> str:
    from datetime import UTC, datetime

    return format_ts(datetime.fromtimestamp(t, UTC))


def unknown(what: str, name: str, known: set[str]) -> str:
    """"no sensor 'P7' in this daemon; did you mean 'P07'?" (or the list when short)."""
    import difflib

    close = difflib.get_close_matches(name, sorted(known), 3, 0.5)
    if close:
        hint = "did you mean " + " or ".join(repr(c) for c in close) + "?"
    else:
        hint = f"{what}s: " + (", ".join(sorted(known)[:20]) or "none")
    return f"no {what} {name!r} in this daemon; {hint}"
