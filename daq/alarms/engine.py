"""The alarm state machine, sans I/O: values and commands in, transitions out.

Each alarm has a *condition* (the value past its limit, with the deadband as hysteresis)
and an annunciated state (after on-delay / off-delay, held by a latch until reset):
active or cleared, each acknowledged or not; plus shelved (one-shot: until it clears;
timed: until a time) and out of service. The model follows OPC UA Part 9 and ISA-18.2
(see PROCESSING.md §2). Every change of state is one event; the caller persists the state
with the event in one transaction and publishes the event.
"""

from __future__ import annotations

import collections
from dataclasses import asdict, dataclass, field
from typing import Any

from .alarm_config import Rule

HOUR = 3600.0
MEMORY_POINTS = 20  # a timer's persisted memory: at most this many writes per period
STALE_REFERENCE = 1.25  # a rate's oldest value older than this many periods: a gap


class CommandError(Exception):
    """A command that does not apply (``code`` is a stable word)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass
class State:
    """What survives a restart (persisted as JSON)."""

    cond: bool = False  # condition, with deadband, before delays
    cond_since: float | None = None
    active: bool = False
    acked: bool = True
    latched: bool = False  # active held by the latch after the condition went away
    shelved: str | None = None  # "oneshot" | "timed"
    shelved_until: float | None = None
    shelved_by: str | None = None
    oos: bool = False
    oos_by: str | None = None
    raised_at: float | None = None
    annunciated_at: float | None = None
    value: float | None = None
    value_ts: float | None = None
    transitions: list[float] = field(default_factory=list)  # raise/clear times, last hour
    active_s: float = 0.0  # time active, summed over clears
    raised: int = 0  # times raised, ever
    realarms: int = 0  # re-annunciations since the last raise
    # the timers' memory, so a restart continues them (written at a bounded rate: see
    # Alarm._remember and Alarm._stuck): a rate alarm's values within its period, thinned
    # to one per period/MEMORY_POINTS; a stuck detector's reference once it has held
    rate_memory: list[list[float]] = field(default_factory=list)
    stuck_since: float | None = None
    stuck_value: float | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> State:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Transition:
    event: str  # raised cleared returned acked shelved unshelved realarm reset oos in_service
    ts: float
    by: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


class Alarm:
    """One rule, its persisted state and (for a rate alarm) its recent values in memory.

    The rate window holds every value of the period in memory; the state keeps a thinned
    copy (one value per period/``MEMORY_POINTS``), so after a restart (even ``kill -9``)
    a rise that began before it is still measured over the whole period. The stuck
    detector's reference (since, value) goes to the state once it has held for
    stuck_after/``MEMORY_POINTS``, and is dropped from it when the signal moves: a moving
    signal costs no write, a restart loses at most that twentieth of the stuck time.
    """

    def __init__(self, rule: Rule, state: State | None = None) -> None:
        self.rule = rule
        self.state = state or State()
        st = self.state
        self.window: collections.deque[tuple[float, float]] = collections.deque(
            (float(t), float(v)) for t, v in st.rate_memory)
        self.dirty = False  # the condition or a timer's memory changed: persist it too
        self.stuck: tuple[float, float] | None = (  # (since, value) of a constant signal
            (st.stuck_since, st.stuck_value)
            if st.stuck_since is not None and st.stuck_value is not None else None)

    # -- values ---------------------------------------------------------------------------

    def update(self, value: float | None, quality: str, flags: tuple[str, ...],
               ts: float) -> list[Transition]:
        st = self.state
        if st.oos:
            return []
        cond = self._condition(value, quality, flags, ts)
        if value is not None:
            st.value, st.value_ts = value, ts
        if cond is not None and cond != st.cond:
            st.cond, st.cond_since = cond, ts
            self.dirty = True
        return self.tick(ts)

    def _condition(self, v: float | None, quality: str, flags: tuple[str, ...],
                   ts: float) -> bool | None:
        """True/False, or None: this value says nothing (bad value for a process alarm)."""
        r, prev = self.rule, self.state.cond
        if r.kind == "fault":
            return bool(set(flags) & set(r.flags)) or (
                r.bad_quality and quality in ("bad", "missing")) or self._stuck(v, ts)
        if v is None or quality in ("bad", "missing"):
            return None
        if r.kind in ("hh", "h"):
            return True if v >= r.limit else (False if v < r.limit - r.deadband else prev)
        if r.kind in ("l", "ll"):
            return True if v <= r.limit else (False if v > r.limit + r.deadband else prev)
        rate = self._rate(v, ts)
        if rate is None:
            return None
        if r.direction == "rise":
            mag = rate
        elif r.direction == "fall":
            mag = -rate
        else:
            mag = abs(rate)
        return True if mag >= r.limit else (False if mag < r.limit - r.deadband else prev)

    def _stuck(self, v: float | None, ts: float) -> bool:
        """Unchanged within ``stuck_band`` for ``stuck_after``, counted across restarts."""
        if not self.rule.stuck_after or v is None:
            return False
        st = self.state
        if self.stuck is None or abs(v - self.stuck[1]) > self.rule.stuck_band:
            self.stuck = (ts, v)
            if st.stuck_since is not None:  # the persisted reference is stale now
                st.stuck_since = st.stuck_value = None
                self.dirty = True
        elif (st.stuck_since is None
              and ts - self.stuck[0] >= self.rule.stuck_after / MEMORY_POINTS):
            st.stuck_since, st.stuck_value = self.stuck
            self.dirty = True
        return ts - self.stuck[0] >= self.rule.stuck_after

    def _rate(self, v: float, ts: float) -> float | None:
        """Change per period over the last period (in % of the oldest value if asked)."""
        w, period = self.window, self.rule.period
        w.append((ts, v))
        while len(w) > 2 and ts - w[1][0] >= period:
            w.popleft()
        if len(w) > 1 and ts - w[0][0] > STALE_REFERENCE * period:
            w.popleft()  # a gap (daemon down, device silent): never a rate across it
        self._remember(ts, v)
        t0, v0 = w[0]
        if ts - t0 < period / 2:  # too short a span to judge a rate
            return None
        change = (v - v0) / (ts - t0) * period
        if self.rule.percent:
            return None if v0 == 0 else change / abs(v0) * 100.0
        return change

    def _remember(self, ts: float, v: float) -> None:
        """The persisted copy of the window: a new point only every period/MEMORY_POINTS,
        so a 1 Hz signal under a 1-h rate alarm writes the state every 3 minutes."""
        mem, period = self.state.rate_memory, self.rule.period
        if mem and ts - mem[-1][0] < period / MEMORY_POINTS:
            return
        mem.append([ts, v])
        while len(mem) > 2 and ts - mem[1][0] >= period:
            mem.pop(0)
        self.dirty = True

    # -- time -----------------------------------------------------------------------------

    def tick(self, now: float) -> list[Transition]:
        """Delays, re-alarm and shelve expiry; called with each value and once a second."""
        st, r = self.state, self.rule
        out: list[Transition] = []
        if st.oos:
            return out
        since = st.cond_since if st.cond_since is not None else now
        if st.cond and not st.active and now - since >= r.on_delay:
            st.active, st.acked, st.latched = True, False, False
            st.raised_at = st.annunciated_at = now
            st.raised += 1
            st.realarms = 0
            self._count(now)
            out.append(Transition("raised", now, detail={"value": st.value}))
        elif st.cond and st.latched:  # back in alarm while latched: the latch is moot
            st.latched = False
            self.dirty = True
        elif not st.cond and st.active and not st.latched and now - since >= r.off_delay:
            if r.latch:
                st.latched = True
                out.append(Transition("returned", now, detail={"value": st.value}))
            else:
                out.extend(self._clear(now, "cleared"))
        if (st.active and r.realarm > 0 and st.annunciated_at is not None
                and now - st.annunciated_at >= r.realarm and not st.latched
                and (r.realarm_count == 0 or st.realarms < r.realarm_count)):
            st.annunciated_at, st.acked = now, False
            st.realarms += 1
            out.append(Transition("realarm", now, detail={"value": st.value}))
        if st.shelved == "timed" and st.shelved_until is not None and now >= st.shelved_until:
            out.append(self._unshelve(now, None, "expired"))
        return out

    def _clear(self, now: float, event: str, by: str | None = None) -> list[Transition]:
        st = self.state
        st.active, st.latched = False, False
        if st.raised_at is not None:
            st.active_s += max(now - st.raised_at, 0.0)
        self._count(now)
        out = [Transition(event, now, by, {"value": st.value})]
        if st.shelved == "oneshot":
            out.append(self._unshelve(now, None, "cleared"))
        return out

    def _count(self, now: float) -> None:
        t = self.state.transitions
        t.append(now)
        while t and now - t[0] > HOUR:
            t.pop(0)

    def _unshelve(self, now: float, by: str | None, reason: str) -> Transition:
        st = self.state
        st.shelved = st.shelved_until = st.shelved_by = None
        if st.active:  # returns to the operator unacknowledged
            st.acked = False
        return Transition("unshelved", now, by, {"reason": reason})

    # -- commands -------------------------------------------------------------------------

    def ack(self, now: float, by: str, comment: str | None = None) -> list[Transition]:
        st = self.state
        if st.oos:
            raise CommandError("out_of_service", f"{self.rule.id} is out of service")
        if st.acked:
            raise CommandError("already_acked", f"{self.rule.id} is not waiting for an "
                               "acknowledgement")
        st.acked = True
        return [Transition("acked", now, by, {"comment": comment} if comment else {})]

    def shelve(self, now: float, by: str, duration: float | None, max_shelve: float,
               comment: str | None = None) -> list[Transition]:
        st = self.state
        if st.oos:
            raise CommandError("out_of_service", f"{self.rule.id} is out of service")
        if duration is not None and (duration <= 0 or duration > max_shelve):
            raise CommandError("bad_duration", f"a shelve lasts more than 0 s and at most "
                               f"{max_shelve:g} s (alarms.max_shelve); {duration:g} s asked")
        if duration is None and not st.active:
            raise CommandError("not_active", f"{self.rule.id} is not active: a one-shot "
                               "shelve needs an active alarm; give a duration")
        st.shelved = "oneshot" if duration is None else "timed"
        st.shelved_until = None if duration is None else now + duration
        st.shelved_by = by
        return [Transition("shelved", now, by, {"until": st.shelved_until,
                                                "mode": st.shelved,
                                                **({"comment": comment} if comment else {})})]

    def unshelve(self, now: float, by: str) -> list[Transition]:
        if self.state.shelved is None:
            raise CommandError("not_shelved", f"{self.rule.id} is not shelved")
        return [self._unshelve(now, by, "command")]

    def reset(self, now: float, by: str) -> list[Transition]:
        st = self.state
        if not self.rule.latch:
            raise CommandError("not_latching", f"{self.rule.id} does not latch")
        if not st.active:
            raise CommandError("not_active", f"{self.rule.id} is not active")
        if st.cond or not st.latched:
            raise CommandError("still_in_alarm", f"{self.rule.id} is still in alarm "
                               f"(value {st.value}); it can be reset once it has returned")
        return self._clear(now, "reset", by)

    def out_of_service(self, now: float, by: str, oos: bool,
                       comment: str | None = None) -> list[Transition]:
        st = self.state
        if st.oos == oos:
            raise CommandError("no_change", f"{self.rule.id} is already "
                               + ("out of service" if oos else "in service"))
        detail = {"comment": comment} if comment else {}
        if oos:
            if st.active and st.raised_at is not None:
                st.active_s += max(now - st.raised_at, 0.0)
            self.state = State(oos=True, oos_by=by, transitions=st.transitions,
                               active_s=st.active_s, raised=st.raised, value=st.value,
                               value_ts=st.value_ts)
            return [Transition("oos", now, by, detail)]
        self.state = State(transitions=st.transitions, active_s=st.active_s,
                           raised=st.raised, value=st.value, value_ts=st.value_ts)
        self.window.clear()
        self.stuck = None
        return [Transition("in_service", now, by, detail)]

    # -- views ----------------------------------------------------------------------------

    def view(self, now: float) -> dict[str, Any]:
        """The retained current state (schema: ``schemas/alarm-state.json``)."""
        st, r = self.state, self.rule
        active_s = st.active_s + (now - st.raised_at if st.active and st.raised_at else 0.0)
        return {
            "alarm": r.id, "sensor": r.sensor, "quantity": r.quantity, "kind": r.kind,
            "class": r.klass, "severity": r.severity,
            "limit": None if r.kind == "fault" else r.limit,
            "active": st.active, "acked": st.acked, "latched": st.latched,
            "condition": st.cond, "shelved": st.shelved, "shelved_until": st.shelved_until,
            "out_of_service": st.oos, "raised_at": st.raised_at, "value": st.value,
            "transitions_1h": sum(1 for t in st.transitions if now - t <= HOUR),
            "active_s": round(active_s, 1), "raised_count": st.raised,
        }
