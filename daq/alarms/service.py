"""The daemon's alarm service: accepted readings in, durable transitions out.

It sees every reading or result the outbox accepts (sensor values, summaries, GNSS
displacements alike: rules are keyed on sensor and quantity), runs the engine, commits
each transition with the alarm's state (:mod:`.store`), then queues the event on the
outbox's alarm lane, which the publisher sends ahead of any backlog. The current state of
each alarm goes out as a retained message whenever it changes and on every connect.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog

from ..model import Lane, Quality, Reading
from .alarm_config import AlarmsConfig
from .engine import HOUR, Alarm, CommandError, State, Transition

log = structlog.get_logger("daq.alarms")

TOPIC = "alarm"  # events: alarm/{sensor}/{alarm}; state (retained): alarm/{sensor}/{alarm}/state


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def event_reading(payload: dict[str, Any]) -> tuple[str, Reading]:
    """The outbox item of one event (its payload: ``schemas/alarm-event.json``)."""
    rid = payload["alarm"]
    return f"{TOPIC}/{rid}", Reading(
        device=payload["sensor"], channel=f"{TOPIC}/{rid}",
        quantity=payload.get("quantity") or "fault", value=payload.get("value"),
        unit=payload.get("unit", ""), quality=Quality.GOOD, ts=_dt(payload["at"]),
        lane=Lane.ALARM, sensor=payload["sensor"],
        extra={k: v for k, v in payload.items() if k not in ("value", "unit", "at")})


class AlarmService(threading.Thread):
    def __init__(self, cfg: AlarmsConfig, outbox: Any, *,
                 on_event: Callable[[], None] | None = None,
                 clock: Callable[[], float] = time.time, workers: list[Any] | None = None,
                 uplink: Callable[[], bool] = lambda: False) -> None:
        super().__init__(name="alarms", daemon=True)
        from .store import AlarmStore

        self.cfg = cfg
        self.outbox = outbox
        self.store = AlarmStore(outbox.path)
        self.on_event = on_event
        self.clock = clock
        self._lock = threading.RLock()
        self._halt = threading.Event()
        saved = self.store.load()
        self.alarms = {r.id: Alarm(r, State.from_dict(saved[r.id]) if r.id in saved else None)
                       for r in cfg.rules}
        self._by_sensor: dict[str, list[Alarm]] = {}
        for a in self.alarms.values():
            self._by_sensor.setdefault(a.rule.sensor, []).append(a)
        self._changed: set[str] = set()
        self._unsaved: list[tuple[Alarm, list[Transition]]] = []
        self._units: dict[str, str] = {}
        self.errors = 0
        self.heartbeat = time.monotonic()
        from .actions import ActionRunner

        self.runner = ActionRunner(dict(cfg.actions or {}), workers or [], uplink,
                                   self.record_action)
        self._requeue()

    # -- the hook: every accepted reading -------------------------------------------------

    def watch(self, outbox: Any) -> None:
        """Wrap ``outbox.add`` so that every committed reading reaches :meth:`accepted`."""
        add = outbox.add

        def tapped(items: Any, **kw: Any) -> list[int]:
            seqs: list[int] = add(items, **kw)
            try:
                self.accepted(items)
            except Exception as err:  # an alarm bug must never cost a commit
                self.errors += 1
                log.error("alarm_evaluation_failed", error=f"{type(err).__name__}: {err}")
            return seqs

        outbox.add = tapped

    def accepted(self, items: Any) -> None:
        work = [r for _, r in items if (r.lane != Lane.ALARM or
                not r.channel.startswith(f"{TOPIC}/")) and r.extra.get("source") != "annotation"]
        if not work:
            return
        with self._lock:
            out: list[tuple[Alarm, list[Transition]]] = []
            for r in work:
                source = "manual" if r.extra.get("source") == "manual" else None
                for key in {r.sensor, r.channel} - {None}:
                    for a in self._by_sensor.get(str(key), ()):
                        q = a.rule.quantity
                        if (q is not None and q != r.quantity) or a.rule.source != source:
                            continue
                        if r.unit:
                            self._units[a.rule.id] = r.unit
                        out.append((a, a.update(r.value, r.quality.value, tuple(r.flags),
                                                r.ts.timestamp())))
            self._apply(out)

    def tick(self) -> None:
        now = self.clock()
        with self._lock:
            self._apply([(a, a.tick(now)) for a in self.alarms.values()])

    def record_action(self, alarm: str, detail: dict[str, Any]) -> None:
        """The outcome of an action: an ``action`` event of its alarm (audited, published)."""
        with self._lock:
            a = self.alarms[alarm]
            self._apply([(a, [Transition("action", self.clock(), None, detail)])])

    def run(self) -> None:
        if self.runner.actions:
            self.runner.start()
        while not self._halt.wait(1.0):
            self.heartbeat = time.monotonic()
            try:
                self.tick()
            except Exception as err:  # keep ticking: a failing disk is retried next second
                self.errors += 1
                log.error("alarm_tick_failed", error=f"{type(err).__name__}: {err}")

    def stop(self) -> None:
        self.runner.stop()
        self._halt.set()
        if self.is_alive():
            self.join(5.0)
        self.store.close()

    # -- durable transitions --------------------------------------------------------------

    def _payload(self, a: Alarm, t: Transition) -> dict[str, Any]:
        r = a.rule
        return {"alarm": r.id, "sensor": r.sensor, "quantity": r.quantity, "name": r.name,
                "kind": r.kind, "class": r.klass, "severity": r.severity, "event": t.event,
                "at": t.ts, "value": a.state.value, "unit": self._units.get(r.id, ""),
                "by": t.by, "detail": t.detail,
                "suppressed": a.state.shelved is not None or a.state.oos,
                "state": a.view(t.ts)}

    def _apply(self, out: list[tuple[Alarm, list[Transition]]]) -> None:
        if self._unsaved:  # transitions whose commit failed: first, in their order
            out, self._unsaved = [*self._unsaved, *out], []
        touched = {a.rule.id: a for a, trs in out if trs or a.dirty}
        if not touched:
            return
        events = [(t.ts, a.rule.id, t.event, t.by, self._payload(a, t))
                  for a, trs in out for t in trs]
        try:
            ids = self.store.commit({i: a.state.to_dict() for i, a in touched.items()},
                                    events)
        except sqlite3.Error as err:  # disk full, I/O error: kept, tried again next tick
            self.errors += 1
            log.error("alarm_state_commit_failed", error=str(err), events=len(events))
            for a in touched.values():
                a.dirty = True
            self._unsaved = [(a, trs) for a, trs in out if trs] or [
                (a, []) for a in touched.values()]
            return
        for a in touched.values():
            a.dirty = False
        for _, alarm, event, by, _p in events:
            log.info("alarm_transition", alarm=alarm, transition=event, by=by)
        self._changed.update(touched)
        self._queue([(i, e[4]) for i, e in zip(ids, events, strict=True)])
        for _, alarm, _e, _b, payload in events:
            self.runner.offer(self.alarms[alarm].rule, payload)

    def _queue(self, events: list[tuple[int, dict[str, Any]]]) -> None:
        if not events:
            if self.on_event is not None:
                self.on_event()  # a state change without an event: the retained message
            return
        try:
            self.outbox.add([event_reading(p) for _, p in events])
        except (sqlite3.Error, OSError) as err:  # stays unqueued: tried again at start
            self.errors += 1
            log.error("alarm_event_not_queued", error=str(err), events=len(events))
            return
        self.store.mark_queued([i for i, _ in events])
        if self.on_event is not None:
            self.on_event()

    def _requeue(self) -> None:
        """Events committed with their state but not yet in the outbox (a crash between)."""
        left = self.store.unqueued()
        if left:
            log.warning("alarm_events_requeued", count=len(left))
            self._queue(left)
        self._changed.update(self.alarms)  # every state goes out again after a start

    # -- commands (the control socket) ----------------------------------------------------

    def command(self, name: str, alarm: str, by: str, **kw: Any) -> dict[str, Any]:
        with self._lock:
            a = self.alarms.get(alarm)
            if a is None:
                raise CommandError("unknown_alarm", f"no alarm {alarm!r}")
            now = self.clock()
            if name == "ack":
                trs = a.ack(now, by, kw.get("comment"))
            elif name == "shelve":
                trs = a.shelve(now, by, kw.get("duration"), self.cfg.max_shelve,
                               kw.get("comment"))
            elif name == "unshelve":
                trs = a.unshelve(now, by)
            elif name == "reset":
                trs = a.reset(now, by)
            elif name == "oos":
                trs = a.out_of_service(now, by, bool(kw.get("oos", True)), kw.get("comment"))
            else:
                raise CommandError("unknown_command", f"no alarm command {name!r}")
            self._apply([(a, trs)])
            return a.view(now)

    def register(self, server: Any) -> None:
        """The alarm commands of the control socket (``daq alarm ...``)."""
        from ..control import RequestError

        def handler(name: str) -> Callable[[dict[str, Any]], Any]:
            def fn(args: dict[str, Any]) -> Any:
                extra = {k: v for k, v in args.items() if k not in ("alarm", "by")}
                try:
                    return self.command(name, args["alarm"], args.get("by") or "unknown",
                                        **extra)
                except CommandError as err:
                    raise RequestError(err.code, err.message) from None
            return fn

        base = {"alarm": str, "by": str, "comment": str}
        for name, more in (("ack", {}), ("shelve", {"duration": (int, float)}),
                           ("unshelve", {}), ("reset", {}), ("oos", {"oos": bool})):
            server.register(f"alarm_{name}", handler(name), params={**base, **more},
                            required=("alarm",))
        server.register("alarm_list", lambda a: {"alarms": self.views(a.get("sensor"))},
                        params={"sensor": str})
        server.register("alarm_history", lambda a: {"events": self.store.history(
            a.get("alarm"), int(a.get("limit", 50)))}, params={"alarm": str, "limit": int})

    def views(self, sensor: str | None = None) -> list[dict[str, Any]]:
        now = self.clock()
        with self._lock:
            return [a.view(now) for a in self.alarms.values()
                    if sensor is None or a.rule.sensor == sensor]

    # -- publishing and health ------------------------------------------------------------

    def retained(self, everything: bool) -> list[tuple[str, dict[str, Any]]]:
        """(topic, body) of the states changed since the last call (all of them on a new
        connection); the publisher sends them retained."""
        now = self.clock()
        with self._lock:
            ids = set(self.alarms) if everything else self._changed
            self._changed = set()
            return [(f"{TOPIC}/{i}/state", self.alarms[i].view(now)) for i in sorted(ids)]

    def health(self) -> dict[str, Any]:
        """Nuisance counters (ISA-18.2): chattering, stale, flood; per alarm transitions/h."""
        now = self.clock()
        with self._lock:
            views = [a.view(now) for a in self.alarms.values()]
            raised_10min = sum(1 for a in self.alarms.values()
                               for t in a.state.transitions if now - t <= 600)
            chattering = [a.rule.id for a in self.alarms.values()
                          if sum(1 for t in a.state.transitions if now - t <= 60) >= 3]
        return {
            "configured": len(views),
            "active": sum(v["active"] for v in views),
            "unacked": sum(v["active"] and not v["acked"] for v in views),
            "shelved": sum(v["shelved"] is not None for v in views),
            "out_of_service": sum(v["out_of_service"] for v in views),
            "chattering": chattering,
            "stale": [v["alarm"] for v in views
                      if v["active"] and v["raised_at"] and now - v["raised_at"] > 24 * HOUR],
            "flood": raised_10min > 10,
            "transitions_1h": {v["alarm"]: v["transitions_1h"] for v in views
                               if v["transitions_1h"]},
            "active_s": {v["alarm"]: v["active_s"] for v in views if v["active_s"]},
            "errors": self.errors,
        }
