"""The daemon end to end against real parts: pymodbus servers, mosquitto, SIGKILL.

Each test runs ``python -m daq run`` as its own process, polling a real pymodbus server
(TCP, or RTU over a pseudo-terminal) and publishing to a mosquitto started for the test.
"""

from __future__ import annotations

import itertools
import json
import re
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from daq.outbox import unpack
from daq.testing import ModbusTestServer

from .conftest import Broker, Subscriber, validator, wait_for

pytestmark = pytest.mark.slow


def write_config(path: Path, url: str, protocol: str, units: dict[int, float],
                 interval: str = "250ms", extra: str = "") -> Path:
    devices = "\n".join(
        f"      unit{u}: {{driver: modbus, address: {u}, interval: {interval}, "
        f"backoff_max: 2s, options: {{registers: [{{name: level, address: 0, type: float32, "
        f"unit: m, quantity: water_level}}]}}}}" for u in units)
    path.write_text(f"""\
site: test-site
rtu: rtu-7
mqtt:
  reconnect_min: 200ms
  reconnect_max: 1s
  batch_size: 50
outbox:
  commit_interval: 200ms
{extra}
buses:
  line1:
    protocol: {protocol}
    url: {url.removeprefix('tcp://')}
    baudrate: 115200
    timeout: 300ms
    devices:
{devices}
""")
    return path


def daq_status(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daq", "status", *args], capture_output=True,
                          text=True, timeout=60)


def by_channel(readings: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """First arrival of each (channel, seq), in arrival order: copies dropped by key."""
    seen: set[tuple[str, int]] = set()
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in readings:
        key = (r["channel"], r["seq"])
        if key not in seen:
            seen.add(key)
            out[r["channel"]].append(r)
    return out


def seqs_covered(rs: list[dict[str, Any]]) -> list[int]:
    """The seqs a channel's records account for: each one's own, and before a downtime
    gap record (or a reading after a start, daq/outbox.py) the seqs it says were skipped."""
    out: list[int] = []
    for r in rs:
        skipped = (r.get("gap") or {}).get("seq_skipped") or r.get("seq_skipped")
        if skipped:
            out.extend(range(skipped[0], skipped[1] + 1))
        out.append(r["seq"])
    return out


def assert_complete_and_ordered(chans: dict[str, list[dict[str, Any]]]) -> None:
    for channel, rs in chans.items():
        seqs = seqs_covered(rs)
        assert seqs == list(range(1, len(seqs) + 1)), f"{channel}: gap or reorder in {seqs}"
        stamps = [r["ts"] for r in rs]
        assert stamps == sorted(stamps), f"{channel}: timestamps out of order"


def outbox_rows(state: Path) -> list[tuple[str, int]]:
    """(channel, seq) of every reading left in a stopped daemon's outbox."""
    db = sqlite3.connect(state / "outbox.sqlite3")
    try:
        return [(p["channel"], p["seq"]) for (data,) in
                db.execute("SELECT data FROM rows0 UNION ALL SELECT data FROM rows1 "
                           "UNION ALL SELECT data FROM rows2")
                for p in json.loads(f"[{unpack(data)}]")]
    finally:
        db.close()


def test_readings_reach_the_broker_schema_valid(broker: Broker, subscriber: Subscriber,
                                                run_daemon: Any, tmp_path: Path) -> None:
    """Every polled value arrives as a schema-valid reading with the right value and unit;
    the retained status says online, then offline on a clean stop."""
    values = {1: 81.99, 2: 12.5, 3: -3.25}
    with ModbusTestServer.tcp(units=tuple(values)) as srv:
        for u, v in values.items():
            srv.set_value(u, 0, v, "float32")
        cfg = write_config(tmp_path / "c.yaml", srv.url, "modbus_tcp", values)
        d = run_daemon(cfg, broker.url)
        wait_for(lambda: len(subscriber.readings()) >= 30, 30, "30 readings")
        shown = daq_status("--state-dir", str(d.state_dir), "--device", "unit1")
        assert d.stop() == 0
        stopped = daq_status("--state-dir", str(d.state_dir))
    assert shown.returncode == 0, shown.stderr
    assert "— running" in shown.stdout and "connected" in shown.stdout
    assert re.search(r"^level\s+81\.99\s+m\s+good$", shown.stdout, re.M), shown.stdout
    assert stopped.returncode == 1 and "NOT RUNNING" in stopped.stdout
    data_v, reading_v = validator("data.json"), validator("reading.json")
    for msg in subscriber.payloads("/data/"):
        data_v.validate(msg)
        assert msg["site"] == "test-site" and msg["rtu"] == "rtu-7"
    for r in subscriber.readings():
        reading_v.validate(r)
        unit = int(r["device"].removeprefix("unit"))
        assert r["value"] == pytest.approx(values[unit], abs=1e-5)
        assert r["unit"] == "m" and r["quality"] == "good"
    assert_complete_and_ordered(by_channel(subscriber.readings()))
    health = [json.loads(p) for t, p, _ in subscriber.messages if t.endswith("/health")]
    assert health, "no health message"
    for h in health:
        validator("health.json").validate(h)
    assert health[0]["site"] == "test-site"
    status_v = validator("status.json")
    states = [json.loads(p) for t, p, _ in subscriber.messages if t.endswith("/status")]
    for s in states:
        status_v.validate(s)
    assert states[0]["state"] == "online" and states[-1]["state"] == "offline"
    assert states[-1]["reason"] == "shutdown"


def test_link_loss_60s_loses_nothing_and_keeps_order(broker: Broker, subscriber: Subscriber,
                                                     run_daemon: Any, tmp_path: Path) -> None:
    """The broker is killed for 60 s with readings flowing; afterwards every reading
    produced meanwhile arrives, per-channel seq without gaps, in order."""
    values = {1: 1.0, 2: 2.0, 3: 3.0}
    with ModbusTestServer.tcp(units=tuple(values)) as srv:
        for u, v in values.items():
            srv.set_value(u, 0, v, "float32")
        cfg = write_config(tmp_path / "c.yaml", srv.url, "modbus_tcp", values)
        d = run_daemon(cfg, broker.url)
        wait_for(lambda: len(subscriber.readings()) >= 20, 30, "readings before the cut")
        broker.stop()
        cut = time.monotonic()
        time.sleep(60)
        during = (d.status() or {})["outbox"]["depth"]["raw"]
        broker.start()
        wait_for(subscriber.connected.is_set, 15, "the subscriber to reconnect")
        wait_for(lambda: (d.status() or {}).get("broker", {}).get("connected"), 30,
                 "the daemon to reconnect")
        wait_for(lambda: sum((d.status() or {})["outbox"]["depth"].values()) < 20, 60,
                 "the backlog to drain")
        assert d.stop() == 0
        outage = time.monotonic() - cut
    accepted = (d.status() or {})["outbox"]["accepted"]
    chans = by_channel(subscriber.readings())
    assert_complete_and_ordered(chans)
    received = sum(len(v) for v in chans.values())
    # 3 devices at 4 Hz during a 60+ s outage: hundreds buffered, and all of them arrived
    assert during > 3 * 4 * 50, f"only {during} readings buffered during the outage"
    assert received == accepted, f"accepted {accepted}, received {received}"
    assert outage >= 60


def test_sigkill_loses_no_accepted_reading(broker: Broker, subscriber: Subscriber,
                                           run_daemon: Any, tmp_path: Path) -> None:
    """SIGKILL mid-stream: every reading in the outbox at the kill arrives after the
    restart, and seq continues without a gap across the restart."""
    values = {1: 10.0, 2: 20.0}
    with ModbusTestServer.tcp(units=tuple(values)) as srv:
        for u, v in values.items():
            srv.set_value(u, 0, v, "float32")
        cfg = write_config(tmp_path / "c.yaml", srv.url, "modbus_tcp", values,
                           interval="100ms")
        state = tmp_path / "state"
        d = run_daemon(cfg, broker.url, state)
        wait_for(lambda: len(subscriber.readings()) >= 40, 30, "readings before the kill")
        broker.stop()  # make sure a backlog exists at the moment of the kill
        time.sleep(3)
        d.kill()
        left = outbox_rows(state)
        assert len(left) > 20, "no backlog at the kill"
        broker.start()
        wait_for(subscriber.connected.is_set, 15, "the subscriber to reconnect")
        d2 = run_daemon(cfg, broker.url, state)
        wait_for(lambda: set(left) <= {(r["channel"], r["seq"])
                                       for r in subscriber.readings()}, 60,
                 "every reading left in the outbox to arrive")
        time.sleep(1)
        assert d2.stop() == 0
    chans = by_channel(subscriber.readings())
    assert_complete_and_ordered(chans)
    for channel, rs in chans.items():
        assert len(rs) > len([1 for c, _ in left if c == channel]), channel


def test_dead_slave_costs_only_itself(broker: Broker, subscriber: Subscriber,
                                      run_daemon: Any, tmp_path: Path) -> None:
    """One of three RTU slaves on one line stops answering: the other two keep 100 %
    completeness; the dead one yields gap records and recovers when it answers again."""
    values = {1: 5.0, 2: 6.0, 3: 7.0}
    with ModbusTestServer.rtu(units=tuple(values)) as srv:
        for u, v in values.items():
            srv.set_value(u, 0, v, "float32")
        cfg = write_config(tmp_path / "c.yaml", srv.url, "modbus_rtu", values, interval="1s")
        d = run_daemon(cfg, broker.url)
        wait_for(lambda: len(subscriber.readings()) >= 9, 30, "first readings")
        srv.mute(2)
        time.sleep(8)
        srv.unmute(2)
        wait_for(lambda: [r for r in subscriber.readings()[-30:]
                          if r["device"] == "unit2" and r["quality"] == "good"
                          and r["seq"] > 8], 30, "unit 2 to recover")
        time.sleep(2)
        assert d.stop() == 0
    chans = by_channel(subscriber.readings())
    assert_complete_and_ordered(chans)
    from daq.model import parse_ts

    for ch in ("unit1/level", "unit3/level"):
        rs = chans[ch]
        assert all(r["quality"] == "good" for r in rs), ch
        stamps = [parse_ts(r["ts"]).timestamp() for r in rs]
        steps = [b - a for a, b in itertools.pairwise(stamps)]
        assert max(steps) < 1.5, f"{ch} missed a slot while unit 2 was dead: {max(steps)}"
    dead = chans["unit2/level"]
    missing = [r for r in dead if r["quality"] == "missing"]
    assert len(missing) >= 5 and all(r["value"] is None for r in missing)
    assert dead[-1]["quality"] == "good"
    first_gap = dead.index(missing[0])
    assert all(r["quality"] == "good" for r in dead[:first_gap])


def test_no_broker_keeps_acquiring_and_says_so(run_daemon: Any, tmp_path: Path) -> None:
    """With no broker reachable at all, the daemon keeps polling and buffering, logs the
    unreachable broker once, and reports the link down in its status."""
    from daq.localbroker import free_port

    with ModbusTestServer.tcp(units=(1,)) as srv:
        srv.set_value(1, 0, 42.0, "float32")
        cfg = write_config(tmp_path / "c.yaml", srv.url, "modbus_tcp", {1: 42.0})
        d = run_daemon(cfg, f"mqtt://127.0.0.1:{free_port()}")
        wait_for(lambda: ((d.status() or {}).get("outbox", {}).get("depth", {})
                          .get("raw", 0)) >= 20, 30, "readings to pile up in the outbox")
        st = d.status() or {}
        assert st["broker"]["connected"] is False and st["broker"]["last_error"]
        shown = daq_status("--state-dir", str(d.state_dir), "--json")
        assert d.stop() == 0
    doc = json.loads(shown.stdout)
    assert doc["running"] is True and doc["broker"]["connected"] is False
    assert "Connection refused" in doc["broker"]["last_error"]
    events = [e["event"] for e in d.events()]
    assert events.count("broker_unreachable") == 1
    assert outbox_rows(tmp_path / "state")[:3] == [("unit1/level", 1), ("unit1/level", 2),
                                                   ("unit1/level", 3)]


def test_a_status_file_that_cannot_be_written_does_not_stop_the_daemon(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The status file failing to write (runtime directory full or broken) is logged, not
    fatal: the supervisor keeps running, and on stop it still commits what was polled
    and closes the outbox (here gap records of a device on a closed port)."""
    import threading

    from daq.config import loads
    from daq.daemon import Daemon
    from daq.outbox import Outbox

    runtime = tmp_path / "run"
    (runtime / "status.tmp").mkdir(parents=True)  # writing status.tmp fails: a directory
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(runtime))
    cfg = loads("""\
site: s
rtu: r
outbox: {commit_interval: 200ms}
buses:
  line1:
    protocol: modbus_tcp
    url: 127.0.0.1:1
    timeout: 200ms
    devices:
      unit1: {driver: modbus, address: 1, interval: 100ms, options: {registers: [
              {name: level, address: 0, type: float32, unit: m}]}}
""", source="c.yaml")
    daemon = Daemon(cfg, state_dir=str(tmp_path / "state"))
    errors: list[BaseException] = []

    def run() -> None:
        try:
            daemon.run_forever()
        except BaseException as err:
            errors.append(err)

    t = threading.Thread(target=run)
    t.start()
    time.sleep(1.5)
    daemon.request_stop()
    t.join(20)
    assert not t.is_alive() and errors == []
    ob = Outbox(tmp_path / "state" / "outbox.sqlite3")
    rows = ob.all_readings()
    ob.close()
    assert len(rows) >= 5 and all(r["quality"] == "missing" for r in rows)


def test_polled_values_survive_a_locked_outbox_at_shutdown(tmp_path: Path) -> None:
    """Stopping while another process holds the outbox's write lock (a technician's export,
    say) does not drop what was polled: the pipeline retries and commits once the lock
    is released."""
    import threading

    from daq.bus import PollResult
    from daq.config import loads
    from daq.daemon import Pipeline
    from daq.model import ChannelValue, utcnow
    from daq.outbox import Outbox

    cfg = loads("""\
site: s
rtu: r
outbox: {commit_interval: 100ms}
buses:
  line1:
    protocol: modbus_tcp
    url: 127.0.0.1:1
    devices:
      unit1: {driver: modbus, address: 1, interval: 1s, options: {registers: [
              {name: level, address: 0, type: float32, unit: m}]}}
""", source="c.yaml")
    outbox = Outbox(tmp_path / "o.db")
    pipe = Pipeline(cfg, outbox)
    pipe.start()
    other = sqlite3.connect(tmp_path / "o.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # holds the write lock longer than SQLite's 5 s wait
    for i in range(3):
        pipe.submit(PollResult(cfg.devices[0], utcnow(), [ChannelValue("level", float(i), "m")],
                               True))
    stopper = threading.Thread(target=pipe.stop, kwargs={"timeout": 30.0})
    stopper.start()
    time.sleep(6.0)
    other.execute("ROLLBACK")
    other.close()
    stopper.join(30)
    pipe.join(30)
    values = [r["value"] for r in outbox.all_readings()]
    outbox.close()
    assert values == [0.0, 1.0, 2.0] and pipe.accepted == 3
