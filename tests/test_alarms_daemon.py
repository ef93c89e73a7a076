"""Alarms in the running daemon, against real parts: a pymodbus server, mosquitto, SIGKILL,
and ``daq alarm`` over the control socket."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from daq.model import Lane, Quality, Reading
from daq.outbox import Outbox
from daq.testing import ModbusTestServer

from .conftest import Broker, Subscriber, validator, wait_for
from .test_daemon_e2e import write_config

pytestmark = pytest.mark.slow

RULES = """\
alarms:
  max_shelve: 2h
  rules:
    unit1/level:
      water_level:
        hh: {limit: 20, deadband: 0.5}
        h: {limit: 10, deadband: 0.5}
    unit2/level:
      water_level:
        h: {limit: 10, deadband: 0.5}
"""


def daq_alarm(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daq", "alarm", *args, "--state-dir",
                           str(state)], capture_output=True, text=True, timeout=60)


def views(state: Path) -> dict[str, dict[str, Any]]:
    out = daq_alarm(state, "list", "--json")
    assert out.returncode == 0, out.stderr
    return {v["alarm"]: v for v in json.loads(out.stdout)["alarms"]}


def views_soon(state: Path) -> dict[str, dict[str, Any]]:
    """Views, or {} while the daemon is still starting."""
    out = daq_alarm(state, "list", "--json")
    return {v["alarm"]: v for v in json.loads(out.stdout)["alarms"]} if out.returncode == 0 \
        else {}


def events(sub: Subscriber) -> list[dict[str, Any]]:
    with sub.lock:
        msgs = [(t, p) for t, p, _ in sub.messages
                if "/alarm/" in t and not t.endswith("/state")]
    return [r for _, p in msgs for r in json.loads(p)["readings"]]


def state_count(sub: Subscriber, alarm: str) -> int:
    with sub.lock:
        return sum(1 for t, _, _ in sub.messages if t.endswith(f"/alarm/{alarm}/state"))


def retained_states(sub: Subscriber) -> dict[str, dict[str, Any]]:
    with sub.lock:
        return {json.loads(p)["alarm"]: json.loads(p) for t, p, _ in sub.messages
                if t.endswith("/state") and "/alarm/" in t}


def test_kill9_restart_keeps_active_acked_and_shelved_without_a_second_raise(
        tmp_path: Path, broker: Broker, subscriber: Subscriber, run_daemon: Any) -> None:
    state = tmp_path / "state"
    with ModbusTestServer.tcp(units=(1, 2)) as srv:
        srv.set_value(1, 0, 25.0, "float32")
        srv.set_value(2, 0, 12.0, "float32")
        cfg = write_config(tmp_path / "c.yaml", srv.url, "modbus_tcp", {1: 25.0, 2: 12.0},
                           extra=RULES)
        d = run_daemon(cfg, broker.url, state)
        wait_for(lambda: sum(e["event"] == "raised" for e in events(subscriber)) == 3, 60,
                 "three alarms raised")
        hh, h, other = ("unit1/level/water_level.hh", "unit1/level/water_level.h",
                        "unit2/level/water_level.h")
        ack = daq_alarm(state, "ack", hh, "--by", "alice", "--comment", "patrol sent")
        assert ack.returncode == 0, ack.stderr
        shelve = daq_alarm(state, "shelve", h, "--for", "1h", "--by", "bob")
        assert shelve.returncode == 0, shelve.stderr
        wait_for(lambda: {"acked", "shelved"} <= {e["event"] for e in events(subscriber)},
                 30, "the commands' events at the broker")
        before = views(state)
        assert before[hh]["active"] and before[hh]["acked"]
        assert before[h]["shelved"] == "timed" and before[h]["active"]
        assert before[other]["active"] and not before[other]["acked"]
        d.kill()  # SIGKILL: no orderly shutdown
        n_before = len(events(subscriber))
        states_before = state_count(subscriber, h)
        d2 = run_daemon(cfg, broker.url, state)
        wait_for(lambda: (d2.status() or {}).get("outbox", {}).get("accepted", 0) >= 20, 60,
                 "the restarted daemon to poll the excursion again")
        after = views(state)
        for a in (hh, h, other):
            for k in ("active", "acked", "shelved", "shelved_until", "raised_at",
                      "out_of_service", "raised_count"):
                assert after[a][k] == before[a][k], (a, k)
        wait_for(lambda: state_count(subscriber, h) > states_before, 30,
                 "retained states republished on the new connection")
        assert retained_states(subscriber)[h]["shelved"] == "timed"
        assert d2.stop() == 0
    evs = events(subscriber)
    raised = [e for e in evs if e["event"] == "raised"]
    assert len({e["event_id"] for e in raised}) == 3, raised  # no duplicate "raised"
    assert not [e for e in evs[n_before:] if e["event"] == "raised"
                and e["event_id"] not in {r["event_id"] for r in raised}]
    by = {e["event"]: e["by"] for e in evs if e["by"]}
    assert by == {"acked": "alice", "shelved": "bob"}
    check_ev, check_st = validator("alarm-event.json"), validator("alarm-state.json")
    with subscriber.lock:
        for t, p, _ in subscriber.messages:
            if "/alarm/" in t:
                (check_st if t.endswith("/state") else check_ev).validate(json.loads(p))
    hist = daq_alarm(state, "history", hh)  # the daemon is gone: a clear error
    assert hist.returncode == 1 and "daemon" in hist.stderr


def test_alarm_raised_during_an_outage_with_1e5_queued_is_the_first_to_arrive(
        tmp_path: Path, broker: Broker, subscriber: Subscriber, run_daemon: Any) -> None:
    state = tmp_path / "state"
    broker.stop()
    box = Outbox(state / "outbox.sqlite3")
    ts = datetime(2026, 12, 1, tzinfo=UTC)
    backlog = [("data/unit1", Reading(device="unit1", channel="unit1/level",
                                      quantity="water_level", value=1.0, unit="m",
                                      quality=Quality.GOOD, ts=ts, lane=Lane.RAW))
               for _ in range(100_000)]
    box.add(backlog)
    box.close()
    with ModbusTestServer.tcp(units=(1,)) as srv:
        srv.set_value(1, 0, 25.0, "float32")
        cfg = write_config(tmp_path / "c.yaml", srv.url, "modbus_tcp", {1: 25.0},
                           extra=RULES.split("    unit2/")[0])
        d = run_daemon(cfg, broker.url, state)
        wait_for(lambda: ((d.status() or {}).get("outbox", {}).get("depth", {})
                          .get("alarm", 0) >= 2), 60, "the alarms queued while offline")
        depth = (d.status() or {})["outbox"]["depth"]
        assert depth["raw"] >= 100_000
        broker.start()
        wait_for(lambda: len(events(subscriber)) >= 2 and subscriber.readings(), 60,
                 "the alarm and the backlog after the outage")
        assert d.stop() == 0
    with subscriber.lock:
        topics = [t for t, _, _ in subscriber.messages if not t.endswith("/status")]
    assert "/alarm/unit1/level/water_level." in topics[0], topics[:5]
    first_data = next(i for i, t in enumerate(topics) if "/data/" in t)
    assert all("/alarm/" in t for t in topics[:first_data])
    assert {e["event"] for e in events(subscriber)} == {"raised"}


def test_shelve_expires_by_itself_and_commands_are_checked(
        tmp_path: Path, broker: Broker, subscriber: Subscriber, run_daemon: Any) -> None:
    state = tmp_path / "state"
    with ModbusTestServer.tcp(units=(1,)) as srv:
        srv.set_value(1, 0, 12.0, "float32")
        cfg = write_config(tmp_path / "c.yaml", srv.url, "modbus_tcp", {1: 12.0},
                           extra=RULES.split("    unit2/")[0])
        d = run_daemon(cfg, broker.url, state)
        h = "unit1/level/water_level.h"
        wait_for(lambda: views_soon(state).get(h, {}).get("active"), 60, "the H alarm")
        assert daq_alarm(state, "ack", h, "--by", "carol").returncode == 0
        again = daq_alarm(state, "ack", h)
        assert again.returncode == 1 and "already_acked" in again.stderr
        typo = daq_alarm(state, "ack", "unit1/level/water_level.x")
        assert typo.returncode == 2 and "no alarm" in typo.stderr
        reset = daq_alarm(state, "reset", h)
        assert reset.returncode == 1 and "does not latch" in reset.stderr
        long = daq_alarm(state, "shelve", h, "--for", "3h")
        assert long.returncode == 2 and "max_shelve" in long.stderr
        assert daq_alarm(state, "shelve", h, "--for", "2s", "--by", "carol").returncode == 0
        wait_for(lambda: any(e["event"] == "unshelved" for e in events(subscriber)), 30,
                 "the shelve to expire by itself")
        un = next(e for e in events(subscriber) if e["event"] == "unshelved")
        assert un["detail"] == {"reason": "expired"} and un["by"] is None
        assert un["state"]["active"] and not un["state"]["acked"]  # back, unacknowledged
        assert daq_alarm(state, "oos", h, "--by", "tech").returncode == 0
        srv.set_value(1, 0, 1.0, "float32")
        assert daq_alarm(state, "oos", h, "--back").returncode == 0
        health = wait_for(lambda: (d.status() or {}).get("alarms"), 30, "alarm health")
        assert health["configured"] == 2 and "transitions_1h" in health
        assert d.stop() == 0
    trail = [e["event"] for e in events(subscriber) if e["alarm"] == h]
    assert trail[:6] == ["raised", "acked", "shelved", "unshelved", "oos", "in_service"]
    # back in service while the level is still high, the alarm may be raised afresh
    # (a new reading reached the engine before the stop): that is the only thing allowed
    assert trail[6:] in ([], ["raised"]), trail


def test_actions_when_the_uplink_is_down_coil_read_back_and_failing_command_retried(
        tmp_path: Path, run_daemon: Any) -> None:
    from daq.localbroker import free_port

    state, out = tmp_path / "state", tmp_path / "sms.txt"
    actions = f"""\
  allow_writes: true
  actions:
    siren: {{coil: {{device: unit1, address: 3, value: true}}, retries: 1}}
    sms: {{command: [sh, -c, "echo {{alarm}} {{event}} >> {out}"]}}
    broken: {{command: [sh, -c, "echo modem busy >&2; exit 3"], retries: 2,
              retry_delay: 100ms}}
"""
    rules = RULES.split("    unit2/")[0].replace("  max_shelve: 2h\n", actions).replace(
        "h: {limit: 10, deadband: 0.5}", "h: {limit: 10, deadband: 0.5}\n        "
        "actions: [siren, sms, broken]")
    with ModbusTestServer.tcp(units=(1,)) as srv:
        srv.set_value(1, 0, 12.0, "float32")
        cfg = write_config(tmp_path / "c.yaml", srv.url, "modbus_tcp", {1: 12.0},
                           extra=rules)
        d = run_daemon(cfg, f"mqtt://127.0.0.1:{free_port()}", state)  # nobody listens

        def outcomes() -> dict[str, dict[str, Any]]:
            res = daq_alarm(state, "history", "--json")
            if res.returncode != 0:
                return {}
            return {e["detail"]["action"]: e["detail"] for e in json.loads(res.stdout)["events"]
                    if e["event"] == "action"}

        done = wait_for(lambda: len(outcomes()) == 3 and outcomes(), 60, "three outcomes")
        client = srv.client()
        try:
            coil = client.read_coils(3, count=1, device_id=1)
        finally:
            client.close()
        assert not coil.isError() and coil.bits[0] is True  # read back from the server
        assert d.stop() == 0
    assert done["siren"]["ok"] and "read back" in done["siren"]["result"]
    assert done["sms"]["ok"] and out.read_text() == "unit1/level/water_level.h raised\n"
    broken = done["broken"]
    assert broken["ok"] is False and broken["attempts"] == 3  # tried, retried twice, reported
    assert "exited 3: modem busy" in broken["errors"][-1]


def test_daq_check_reports_alarm_and_manual_problems(tmp_path: Path) -> None:
    bad = """\
alarms:
  rules:
    unit1/levle:
      water_level: {h: {limit: 10}}
    unit1/level:
      water_level: {h: {limit: 10}, hh: {limit: 5}, on_dealy: 3s}
manual:
  sensors:
    unit1/level: {quantity: water_level, unit: m, tolerance: 0.1, range: [5, 1]}
"""
    cfg = write_config(tmp_path / "c.yaml", "tcp://127.0.0.1:1502", "modbus_tcp", {1: 0.0},
                       extra=bad)
    res = subprocess.run([sys.executable, "-m", "daq", "check", "--config", str(cfg)],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    text = res.stdout + res.stderr
    for expected in ("alarms.rules.unit1/levle (line 11): no such sensor or channel",
                     "alarms.rules.unit1/level.water_level.on_dealy", "did you mean 'on_delay'",
                     "limits must be ordered", "manual.sensors.unit1/level.range"):
        assert expected in text, (expected, text)


TIMERS = """\
alarms:
  rules:
    unit1/level:
      water_level:
        rate: {limit: 2.5, period: 30s, direction: rise}
    unit2/level:
      fault: {flags: [], bad_quality: false, stuck_after: 25s, stuck_band: 0.001}
"""


def persisted(state: Path, alarm: str) -> dict[str, Any]:
    """The alarm's state as the durable store holds it (read-only, beside the daemon)."""
    import sqlite3

    path = state / "outbox.sqlite3"
    if not path.exists():
        return {}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        row = db.execute("SELECT state FROM alarm_state WHERE alarm=?", (alarm,)).fetchone()
    except sqlite3.OperationalError:  # not created yet
        row = None
    finally:
        db.close()
    return json.loads(row[0]) if row else {}


def test_rate_and_stuck_timers_continue_across_kill9(
        tmp_path: Path, broker: Broker, subscriber: Subscriber, run_daemon: Any) -> None:
    """A rise begun before a SIGKILL is detected after the restart (the rate window is in
    the store), and a stuck signal's time counts from before the restart."""
    state = tmp_path / "state"
    rate, stuck = "unit1/level/water_level.rate", "unit2/level/fault"
    with ModbusTestServer.tcp(units=(1, 2)) as srv:
        srv.set_value(1, 0, 10.0, "float32")
        srv.set_value(2, 0, 7.0, "float32")
        cfg = write_config(tmp_path / "c.yaml", srv.url, "modbus_tcp", {1: 10.0, 2: 7.0},
                           extra=TIMERS)
        d = run_daemon(cfg, broker.url, state)
        wait_for(lambda: len(persisted(state, rate).get("rate_memory", [])) >= 2, 60,
                 "the level at 10 m in the persisted rate window")
        since = wait_for(lambda: persisted(state, stuck).get("stuck_since"), 60,
                         "the stuck reference persisted")
        srv.set_value(1, 0, 11.0, "float32")  # 1 m of the rise before the kill
        wait_for(lambda: any(v == 11.0 for _, v in persisted(state, rate)["rate_memory"]),
                 60, "the rise's start in the persisted window")
        d.kill()
        assert not [e for e in events(subscriber) if e["event"] == "raised"]
        srv.set_value(1, 0, 13.0, "float32")  # and 2 m after: then flat
        restart = time.time()
        d2 = run_daemon(cfg, broker.url, state)
        raised = wait_for(lambda: {e["alarm"]: e for e in events(subscriber)
                                   if e["event"] == "raised"}.keys() >= {rate, stuck}
                          and {e["alarm"]: e for e in events(subscriber)
                               if e["event"] == "raised"}, 90, "both alarms raised")
        assert d2.stop() == 0
    assert raised[rate]["value"] == 13.0  # 3 m within 30 s, 2 m of it after the restart
    at = raised[stuck]["state"]["raised_at"]
    assert at - since >= 25.0  # counted from the reference before the kill ...
    assert at < restart + 25.0  # ... not from the restart
