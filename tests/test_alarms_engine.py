"""The alarm state machine on its own (sans I/O): delays, deadband, latch, shelve, rate,
sensor faults, and the ``alarms:`` schema as ``daq check`` sees it."""

from __future__ import annotations

import math

import pytest

from daq.alarms.alarm_config import ALARMS, Rule, build
from daq.alarms.engine import Alarm, CommandError, State
from daq.schema import Ctx, load_yaml


def rule(**kw: object) -> Rule:
    base: dict[str, object] = dict(id="P07/level.h", sensor="P07", quantity="level", kind="h",
                                   severity=700, limit=10.0)
    base.update(kw)
    return Rule(**base)  # type: ignore[arg-type]


def events(a: Alarm, samples: list[tuple[float, float]]) -> list[str]:
    out = []
    for t, v in samples:
        out += [x.event for x in a.update(v, "good", (), t)]
    return out


def test_on_delay_suppresses_a_fleeting_excursion() -> None:
    a = Alarm(rule(on_delay=30.0))
    assert events(a, [(0, 5), (10, 12), (20, 12), (35, 5)]) == []  # 25 s over: fleeting
    assert a.tick(100) == [] and not a.state.active
    assert events(a, [(200, 12), (220, 12)]) == []
    assert events(a, [(231, 12)]) == ["raised"]  # held for 31 s ≥ on-delay
    assert a.state.active and not a.state.acked


def noisy(n: int) -> list[tuple[float, float]]:  # a signal sitting on the limit, ±0.08
    return [(float(i), 10.0 + 0.08 * math.sin(i * 1.7) + 0.02 * ((i * 7919) % 3 - 1))
            for i in range(n)]


def test_deadband_stops_chattering_at_the_limit() -> None:
    bare = events(Alarm(rule(deadband=0.0)), noisy(600))
    damped = events(Alarm(rule(deadband=0.2)), noisy(600))
    assert bare.count("raised") > 50 and bare.count("cleared") > 50
    assert damped == ["raised"]  # once in, it stays until below 9.8
    a = Alarm(rule(deadband=0.2))
    events(a, noisy(10))
    assert events(a, [(20, 9.85)]) == [] and events(a, [(21, 9.79)]) == ["cleared"]


def test_low_limit_with_deadband_and_off_delay() -> None:
    a = Alarm(rule(kind="l", limit=2.0, deadband=0.5, off_delay=60.0))
    assert events(a, [(0, 1.9)]) == ["raised"]
    assert events(a, [(10, 2.4), (20, 2.6)]) == []  # above l + deadband, off-delay runs
    assert a.tick(79) == [] and [t.event for t in a.tick(81)] == ["cleared"]


def test_latch_holds_until_reset() -> None:
    a = Alarm(rule(latch=True))
    assert events(a, [(0, 11)]) == ["raised"]
    with pytest.raises(CommandError) as e:
        a.reset(1, "op")
    assert e.value.code == "still_in_alarm"
    assert events(a, [(10, 5)]) == ["returned"]
    assert a.state.active and a.tick(1000) == []  # held by the latch
    assert [t.event for t in a.reset(1001, "op")] == ["reset"]
    assert not a.state.active


def test_timed_shelve_expires_and_returns_unacked_if_still_active() -> None:
    a = Alarm(rule())
    events(a, [(0, 11)])
    a.ack(1, "op")
    assert [t.event for t in a.shelve(2, "op", 60.0, 3600.0)] == ["shelved"]
    assert a.tick(50) == [] and a.state.shelved == "timed"
    assert [t.event for t in a.tick(62.5)] == ["unshelved"]
    assert a.state.shelved is None and a.state.active and not a.state.acked
    with pytest.raises(CommandError) as e:
        a.shelve(70, "op", 7200.0, 3600.0)  # beyond max_shelve: refused, said why
    assert e.value.code == "bad_duration"


def test_one_shot_shelve_ends_when_the_alarm_clears() -> None:
    a = Alarm(rule())
    events(a, [(0, 11)])
    a.shelve(1, "op", None, 3600.0)
    assert events(a, [(5, 5)]) == ["cleared", "unshelved"]


def test_realarm_reannunciates_a_standing_alarm() -> None:
    a = Alarm(rule(realarm=3600.0))
    events(a, [(0, 11)])
    a.ack(10, "op")
    assert a.tick(3000) == []
    assert [t.event for t in a.tick(3601)] == ["realarm"] and not a.state.acked
    b = Alarm(rule(realarm=60.0, realarm_count=2))
    events(b, [(0, 11)])
    assert [t.event for now in range(61, 400, 61) for t in b.tick(float(now))] == [
        "realarm", "realarm"]  # ReAlarmRepeatCount: then quiet until raised again


def test_rate_of_change_over_a_period() -> None:
    a = Alarm(rule(id="L/level.rate", kind="rate", limit=0.5, period=3600.0,
                   direction="rise"))
    slow = [(t * 60.0, 100 + 0.3 * t / 60) for t in range(0, 61)]  # 0.3 m/h
    assert events(a, slow) == []
    fast = [(3600 + t * 60.0, 100.3 + 0.9 * t / 60) for t in range(1, 61)]  # 0.9 m/h
    assert "raised" in events(a, fast)


def test_sensor_fault_from_quality_flags_is_its_own_class() -> None:
    a = Alarm(Rule(id="P07/fault", sensor="P07", quantity=None, kind="fault", severity=500,
                   flags=("wire_break", "no_signal")))
    assert a.rule.klass == "fault"
    assert [t.event for t in a.update(None, "bad", ("wire_break",), 0)] == ["raised"]
    assert [t.event for t in a.update(812.0, "good", (), 10)] == ["cleared"]
    assert [t.event for t in a.update(None, "missing", (), 20)] == ["raised"]  # device down
    h = Alarm(rule())  # a process alarm is not cleared (or raised) by a bad value
    events(h, [(0, 11)])
    assert h.update(None, "bad", ("wire_break",), 1) == [] and h.state.active


def test_out_of_service_ignores_values_and_returns_fresh() -> None:
    a = Alarm(rule())
    events(a, [(0, 11)])
    assert [t.event for t in a.out_of_service(1, "tech", True)] == ["oos"]
    assert events(a, [(2, 20)]) == [] and not a.state.active
    a.out_of_service(3, "tech", False)
    assert events(a, [(4, 20)]) == ["raised"]


def check(text: str) -> list[str]:
    ctx = Ctx()
    ALARMS.check(load_yaml(text), "alarms", 1, ctx)
    return [f"{p.path}: {p.message}" for p in ctx.problems]


def test_schema_reports_bad_rules_with_their_path() -> None:
    assert check("rules: {P07: {level: {h: {limit: 1}, hh: {limit: 0.5}}}}") == [
        "alarms.rules.P07.level: limits must be ordered hh ≥ h ≥ l ≥ ll: hh=0.5, h=1.0"]
    probs = check("rules: {P07: {level: {hi: {limit: 1}}, fault: {flags: 3}}}")
    assert any("level.hi: unknown key" in p for p in probs)
    assert any("fault.flags" in p for p in probs)
    assert check("max_shelve: 1s") and check("rules: {P07: {level: {on_delay: 5s}}}")


def test_build_makes_one_rule_per_limit() -> None:
    ctx = Ctx()
    cfg = build(ALARMS.check(load_yaml(
        "max_shelve: 2h\nrules:\n  P07:\n    level: {hh: {limit: 3}, h: {limit: 2, deadband: 0.1},"
        " on_delay: 10s, latch: true}\n    fault: {}\n"), "alarms", 1, ctx))
    assert not ctx.problems
    assert [r.id for r in cfg.rules] == ["P07/level.hh", "P07/level.h", "P07/fault"]
    assert cfg.max_shelve == 7200 and cfg.rules[1].deadband == 0.1 and cfg.rules[0].latch
    assert cfg.rules[0].on_delay == 10 and cfg.rules[0].severity == 900


def test_a_coil_action_needs_writes_allowed_and_rules_name_known_actions() -> None:
    probs = check("actions: {siren: {coil: {device: relay, address: 0}}}\n"
                  "rules: {P07: {level: {h: {limit: 1}, actions: [sirne]}}}")
    assert any("siren.coil: writing to a device is off by default" in p for p in probs)
    assert any("no action 'sirne'" in p for p in probs)
    assert check("allow_writes: true\nactions: {siren: {coil: {device: r, address: 0}}}\n"
                 "rules: {P07: {level: {h: {limit: 1}, actions: [siren]}}}") == []


def test_rate_in_percent_per_hour_both_directions() -> None:
    a = Alarm(rule(id="W/flow.rate", kind="rate", limit=20.0, period=3600.0, percent=True))
    steady = [(t * 600.0, 10.0) for t in range(7)]
    assert events(a, steady) == []
    drop = [(3600 + t * 600.0, 10.0 - 0.45 * t) for t in range(1, 7)]  # −27 %/h
    assert events(a, drop) == ["raised"]


def test_a_stuck_signal_is_a_sensor_fault() -> None:
    a = Alarm(Rule(id="P07/fault", sensor="P07", quantity=None, kind="fault", severity=500,
                   stuck_after=3600.0, stuck_band=0.001))
    flat = [(t * 600.0, 812.3 + (0.0005 if t % 2 else 0.0)) for t in range(6)]
    assert [x.event for t, v in flat for x in a.update(v, "good", (), t)] == []
    assert [x.event for x in a.update(812.3, "good", (), 3600.0)] == ["raised"]
    assert [x.event for x in a.update(815.0, "good", (), 4200.0)] == ["cleared"]


def restarted(a: Alarm) -> Alarm:
    """The alarm as a new process builds it from what was persisted (JSON, as the store)."""
    import json

    return Alarm(a.rule, State.from_dict(json.loads(json.dumps(a.state.to_dict()))))


def persisted_writes(a: Alarm, samples: list[tuple[float, float]]) -> int:
    """Feed samples; count the updates that would be written (a transition or dirty)."""
    n = 0
    for t, v in samples:
        trs = a.update(v, "good", (), t)
        if trs or a.dirty:
            n += 1
            a.dirty = False
    return n


def test_a_rise_begun_before_a_restart_is_still_detected_within_the_period() -> None:
    r = rule(id="L/level.rate", kind="rate", limit=0.5, period=3600.0, direction="rise")
    a = Alarm(r)
    first_half = [(float(t), 100.0 + 0.4 * t / 3600) for t in range(0, 1800)]  # 1 Hz
    writes = persisted_writes(a, first_half)
    assert writes <= 11  # one per period/20 (3 min), not one per sample
    b = restarted(a)
    second = [(float(t), 100.0 + 0.4 * t / 3600) for t in range(1900, 3700, 10)]
    assert events(b, second) == []  # 0.4 m/h, measured over the restored hour
    c = restarted(a)
    rise = [(1800.0 + t, 100.2 + 0.4 * t / 1800) for t in range(100, 1800, 100)]
    assert "raised" in events(c, rise)  # 0.2 m before, 0.4 m after: 0.6 m within the hour
    fresh = Alarm(r)  # what a restart without the memory saw: only the second half's rise
    assert events(fresh, [(t, v) for t, v in rise if t >= 1900.0]) == []


def test_a_stuck_signal_counts_its_time_from_before_a_restart() -> None:
    r = Rule(id="P07/fault", sensor="P07", quantity=None, kind="fault", severity=500,
             stuck_after=3600.0, stuck_band=0.001)
    a = Alarm(r)
    assert persisted_writes(a, [(float(t), 812.3) for t in range(0, 2000)]) == 1
    b = restarted(a)
    assert [x.event for x in b.update(812.3, "good", (), 3000.0)] == []
    assert [x.event for x in b.update(812.3, "good", (), 3600.0)] == ["raised"]
    moving = Alarm(r)  # a moving signal never writes its reference
    assert persisted_writes(moving, [(float(t), 812.3 + 0.01 * t) for t in range(600)]) == 0
    once = Alarm(r)
    persisted_writes(once, [(float(t), 812.3) for t in range(400)])
    assert once.state.stuck_since == 0.0
    once.update(813.0, "good", (), 400.0)  # it moved: the persisted reference goes
    assert once.state.stuck_since is None and once.dirty
    # a reference held less than stuck_after/20 is not kept: after a restart it counts anew
    assert restarted(once).update(813.0, "good", (), 3900.0) == []


def test_on_and_off_delays_count_from_before_a_restart() -> None:
    a = Alarm(rule(on_delay=60.0, off_delay=60.0))
    assert events(a, [(0.0, 11.0), (30.0, 11.0)]) == [] and a.state.cond_since == 0.0
    b = restarted(a)  # the condition's start time is in the persisted state
    assert [t.event for t in b.tick(59.0)] == [] and [t.event for t in b.tick(60.0)] == [
        "raised"]
    assert events(b, [(100.0, 5.0)]) == []
    c = restarted(b)
    assert [t.event for t in c.tick(160.0)] == ["cleared"]


def test_a_rate_is_never_measured_across_a_long_outage() -> None:
    """After a day down, the persisted window is too old to be a reference: a fast rise
    after the restart is measured on its own, not averaged over the outage."""
    r = rule(id="L/level.rate", kind="rate", limit=0.5, period=3600.0, direction="rise")
    a = Alarm(r)
    events(a, [(float(t), 100.0) for t in range(0, 3600, 60)])
    b = restarted(a)
    day = 86400.0
    rise = [(day + t, 100.0 + 0.6 * t / 2400) for t in range(0, 2460, 60)]  # 0.9 m/h
    assert "raised" in events(b, rise)
