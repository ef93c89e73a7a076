"""Faults that must be visible and never stop the RTU (issue 9, item 8 and 9)."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from daq import config
from daq.config import Secret, TlsConfig
from daq.errors import ConfigError
from daq.localbroker import LocalBroker
from daq.outbox import Outbox
from daq.publisher import Publisher

from .conftest import REPO, Subscriber, wait_for
from .test_outbox import reading
from .test_publisher import mqtt_config
from .test_publisher import pki as pki


@pytest.mark.parametrize("damage", ["truncated", "foreign"])
def test_a_damaged_outbox_is_set_aside_and_a_new_one_started(tmp_path: Path,
                                                             damage: str) -> None:
    """A truncated or foreign file: renamed aside (kept for inspection), a fresh outbox
    started and usable, and its seqs start above any the old file can have given."""
    path = tmp_path / "outbox.sqlite3"
    ob = Outbox(path)
    for i in range(300):
        ob.add([("t", reading("a", float(i)))])
    ob._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    ob.close()
    if damage == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[:len(data) // 3])
    else:
        path.write_bytes(b"this is a spreadsheet, not a database" * 100)
    ob = Outbox(path)
    assert ob.set_aside is not None and Path(ob.set_aside).exists()
    assert Path(ob.set_aside).name.startswith("outbox.sqlite3.damaged-")
    assert ob.add([("t", reading("a", 1.0))])[0] > 300
    assert ob.depth()["raw"] == 1
    ob.close()
    again = Outbox(path)  # the new file is kept, and says it replaced a damaged one
    assert again.set_aside is not None and again.depth()["raw"] == 1
    again.close()


def test_a_locked_outbox_is_never_set_aside(tmp_path: Path) -> None:
    """Locked is not damaged: the error is raised and the file stays where it is."""
    path = tmp_path / "o.db"
    Outbox(path).close()
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    other.execute("PRAGMA journal_mode=DELETE")  # needs the exclusive lock: hold it
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(sqlite3.OperationalError):
            Outbox(path)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert not list(tmp_path.glob("*.damaged-*"))


def test_daq_run_on_a_damaged_outbox_starts_without_a_traceback(tmp_path: Path) -> None:
    """`daq run` with a foreign file as its outbox logs the set-aside and keeps acquiring."""
    state = tmp_path / "state"
    state.mkdir()
    (state / "outbox.sqlite3").write_bytes(b"\x00garbage" * 512)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("site: s\nrtu: r\nbuses:\n  b:\n    protocol: modbus_tcp\n"
                   "    url: 127.0.0.1:1\n    devices:\n      u1: {driver: modbus, address: 1,"
                   " interval: 200ms, options: {registers: [{name: x, address: 0, type: "
                   "uint16}]}}\n")
    proc = subprocess.Popen([sys.executable, "-m", "daq", "run", "--config", str(cfg),
                             "--state-dir", str(state), "--log-format", "json"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        wait_for(lambda: (state / "status.json").exists(), 60, "the daemon's status")
        wait_for(lambda: json.loads((state / "status.json").read_text())["outbox"]["depth"]
                 ["raw"] > 0, 60, "gap records committed to the new outbox")
    finally:
        proc.terminate()
        out = proc.communicate(timeout=30)[0].decode()
    assert proc.returncode == 0 and "Traceback" not in out
    assert "outbox_damaged_set_aside" in out
    assert list(state.glob("outbox.sqlite3.damaged-*"))


def test_mqtt_url_never_weakens_the_configured_link() -> None:
    """--mqtt-url mqtt:// over TLS or a password is refused without --insecure."""
    cfg = config.load(REPO / "configs" / "site-example.yaml")
    with pytest.raises(ConfigError, match="refused"):
        config.with_mqtt_url(cfg, "mqtt://127.0.0.1:1883")
    weak = config.with_mqtt_url(cfg, "mqtt://127.0.0.1:1883", insecure=True)
    assert weak.mqtt is not None and not weak.mqtt.tls_enabled
    strong = config.with_mqtt_url(cfg, "mqtts://127.0.0.1:8883")
    assert strong.mqtt is not None and strong.mqtt.tls_enabled
    proc = subprocess.run([sys.executable, "-m", "daq", "run", "--config",
                           str(REPO / "configs" / "site-example.yaml"), "--mqtt-url",
                           "mqtt://127.0.0.1:1883"], capture_output=True, text=True,
                          timeout=60, cwd=REPO)
    assert proc.returncode == 2 and "--insecure" in proc.stderr


def test_a_plain_password_needs_the_configuration_to_say_so() -> None:
    base = "site: s\nrtu: r\nmqtt:\n  url: mqtt://h:1883\n  username: u\n" \
           "  password: {env: PW}\n"
    with pytest.raises(ConfigError, match="in clear"):
        config.loads(base, drivers={})
    assert config.loads(base + "  allow_plain_password: true\n", drivers={}).mqtt


def test_a_missing_ca_file_is_a_shown_retried_error_not_a_dead_thread(
        tmp_path: Path, pki: Path) -> None:
    """The CA file is missing at start: the publisher stays alive, shows why, retries,
    and publishes once the file is there."""
    broker = LocalBroker(tmp_path)
    plain = broker.port
    broker.port = plain + 1 if plain < 65000 else plain - 1
    broker.conf.write_text(
        broker.common() + "per_listener_settings true\n"
        f"listener {plain} 127.0.0.1\nallow_anonymous true\n"
        f"listener {broker.port} 127.0.0.1\nallow_anonymous true\n"
        f"cafile {pki}/ca.crt\ncertfile {pki}/server.crt\nkeyfile {pki}/server.key\n")
    broker.start()
    sub = Subscriber(plain)
    ca = tmp_path / "ca.crt"
    outbox = Outbox(tmp_path / "o.db")
    outbox.add([("data/dev", reading("dev/a", 1.0))])
    pub = Publisher(mqtt_config(broker.port, tls_enabled=True, tls=TlsConfig(ca_file=str(ca)),
                                reconnect_min=0.1, reconnect_max=0.3), outbox,
                    site="s", rtu="r")
    try:
        pub.start()
        wait_for(lambda: pub.state.last_error, 15, "the error")
        assert "ca.crt" in (pub.state.last_error or "") and pub.is_alive()
        shutil.copy(pki / "ca.crt", ca)
        wait_for(lambda: sub.readings(), 30, "the reading, once the CA is there")
    finally:
        pub.stop()
        pub.join(5)
        sub.close()
        broker.stop()


def test_a_password_over_plain_mqtt_is_refused_at_run_time(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db")
    pub = Publisher(mqtt_config(1, username="u", password=Secret(env="PW")), outbox,
                    site="s", rtu="r")
    pub.start()
    try:
        wait_for(lambda: pub.state.last_error, 15, "the refusal")
    finally:
        pub.stop()
        pub.join(5)
    assert "without TLS" in (pub.state.last_error or "") and outbox.depth()["raw"] == 0


def test_a_full_disk_shows_in_status_and_loses_nothing(tmp_path: Path) -> None:
    """Commits fail with SQLite's "database or disk is full" (the outbox capped to its
    current pages, as a full file system does): `daq status` says so, with the readings
    held in memory and since when; once there is room, every held reading is committed."""
    import threading

    from daq.daemon import Daemon
    from daq.status_view import show_status
    from daq.testing import ModbusTestServer

    with ModbusTestServer.tcp(units=(1, 2)) as srv:
        cfg = config.loads(f"""\
site: s
rtu: r
outbox: {{commit_interval: 200ms}}
buses:
  b:
    protocol: modbus_tcp
    url: {srv.url.removeprefix('tcp://')}
    devices:
      u1: {{driver: modbus, address: 1, interval: 100ms, options: {{registers: [
           {{name: x, address: 0, type: uint16}}]}}}}
      u2: {{driver: modbus, address: 2, interval: 100ms, options: {{registers: [
           {{name: x, address: 0, type: uint16}}]}}}}
""", source="c.yaml")
        daemon = Daemon(cfg, state_dir=str(tmp_path / "state"))
        db = daemon.outbox._db
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count={pages}")  # the disk is full from now on
        t = threading.Thread(target=daemon.run_forever)
        t.start()
        try:
            wait_for(lambda: daemon.outbox_fault() and daemon.outbox_fault()["held_in_memory"]
                     > 20, 60, "failing commits")
            st = daemon.status()
            st.update(running=True, age_s=0)
            text = show_status(st)
            assert "COMMITS FAILING since" in text and "full" in text
            assert "held in memory" in text
            assert daemon.health()["outbox_fault"]["held_in_memory"] > 20
            db.execute("PRAGMA max_page_count=1073741823")  # room again
            wait_for(lambda: daemon.outbox_fault() is None, 60, "the recovery")
        finally:
            daemon.request_stop()
            t.join(30)
    polls = sum(s.polls for w in daemon.workers for s in w.states.values())
    gaps = sum(s.gaps for w in daemon.workers for s in w.states.values())
    assert daemon.pipeline.dropped_uncommitted == 0
    assert daemon.pipeline.accepted == polls + gaps - sum(
        s.failures for w in daemon.workers for s in w.states.values())


def test_an_ack_that_cannot_be_recorded_keeps_the_link(tmp_path: Path) -> None:
    """Another process holds the outbox's write lock: deleting acknowledged rows fails;
    the publisher shows it, stays connected on its first connection, and records the
    acknowledgements once the lock is gone."""
    broker = LocalBroker(tmp_path).start()
    sub = Subscriber(broker.port)
    outbox = Outbox(tmp_path / "o.db")
    outbox.add([("data/dev", reading("dev/a", float(i))) for i in range(10)])
    other = sqlite3.connect(tmp_path / "o.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    pub = Publisher(mqtt_config(broker.port), outbox, site="s", rtu="r", ack_interval=0.1)
    try:
        pub.start()
        wait_for(lambda: len(sub.readings()) == 10, 30, "the readings")
        wait_for(lambda: pub.state.extra.get("ack_error"), 60, "the failing acknowledgement")
        assert "locked" in pub.state.extra["ack_error"] and pub.state.connected
        other.execute("ROLLBACK")
        wait_for(lambda: outbox.depth()["raw"] == 0, 60, "the acknowledgements recorded")
        assert "ack_error" not in pub.state.extra
        assert pub.state.connects == 1, "the link was dropped"
    finally:
        other.close()
        pub.stop()
        pub.join(5)
        sub.close()
        broker.stop()


def damaged_outbox(path: Path, device: str, last_poll: float) -> None:
    """An outbox whose raw rows are corrupt (a page of them overwritten) but whose table
    of seqs and last polls can still be read; 40 readings of ``device`` never sent."""
    from daq.model import Quality, Reading, utcnow

    ob = Outbox(path)
    for i in range(40):
        ob.add([("data/" + device, Reading(
            device=device, channel=f"{device}/x", quantity="q", value=float(i), unit="m",
            quality=Quality.GOOD, ts=utcnow()))], slots={device: last_poll})
    ob.close()  # writes the seqs table; the log is checkpointed into the file
    db = sqlite3.connect(path)
    (root,) = db.execute("SELECT rootpage FROM sqlite_master WHERE name='rows2'").fetchone()
    (size,) = db.execute("PRAGMA page_size").fetchone()
    db.close()
    with open(path, "r+b") as f:
        f.seek((root - 1) * size)
        f.write(b"\xff" * size)


def test_a_set_aside_outbox_is_announced_and_its_downtime_covered(
        tmp_path: Path, broker: Any, subscriber: Subscriber, run_daemon: Any) -> None:
    """A damaged outbox is set aside: an event on …/event/outbox (alarm lane, first)
    names the file, its size and that its content was not delivered; the devices' last
    polls read from it give the downtime gap records per channel from there."""
    import time

    from .conftest import validator

    state = tmp_path / "state"
    state.mkdir()
    damaged_outbox(state / "outbox.sqlite3", "u1", time.time() - 30)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("site: s\nrtu: r\nbuses:\n  b:\n    protocol: modbus_tcp\n"
                   "    url: 127.0.0.1:1\n    devices:\n      u1: {driver: modbus, address: 1,"
                   " interval: 1s, options: {registers: [{name: x, address: 0, type: "
                   "uint16}]}}\n")
    d = run_daemon(cfg, broker.url, state)
    wait_for(lambda: subscriber.payloads("/event/outbox"), 60, "the set-aside event")
    wait_for(lambda: [r for r in subscriber.readings() if r.get("gap")], 60,
             "the downtime gap record")
    assert d.stop() == 0
    (msg,) = subscriber.payloads("/event/outbox")
    (event,) = msg["readings"]
    validator("reading.json").validate(event)
    assert (event["channel"], event["quality"], event["flags"]) == (
        "daq.outbox", "missing", ["outbox_set_aside"])
    aside = event["set_aside"]
    assert Path(aside["path"]).exists() and aside["path"] in str(list(state.iterdir()))
    assert aside["size_bytes"] > 0 and aside["delivered"] is False
    assert aside["error"] and set(aside["last_polls"]) == {"u1"}
    (gap,) = [r for r in subscriber.readings() if r.get("gap")]
    assert gap["channel"] == "u1/x" and gap["gap"]["count"] >= 25
    assert gap["gap"]["reason"] == "daemon_not_running"


def test_an_unreadable_set_aside_outbox_is_announced_all_the_same(tmp_path: Path) -> None:
    """A foreign file tells nothing of what it held: the event says so (readable false),
    and it is the first row of the alarm lane of the new outbox."""
    from daq.model import Lane

    path = tmp_path / "outbox.sqlite3"
    path.write_bytes(b"this is a spreadsheet, not a database" * 100)
    ob = Outbox(path)
    (row,) = ob.pending(Lane.ALARM, 0, 10)
    (event,) = row.readings()
    assert row.topic == "event/outbox" and event["set_aside"]["readable"] is False
    assert event["set_aside"]["size_bytes"] == 3700 and "held" not in event["set_aside"]
    ob.close()
