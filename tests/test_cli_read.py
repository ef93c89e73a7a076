"""``daq read``: one poll through the daemon's code path, dry or published, beside the
running daemon (which then runs the poll on its own bus worker) or on its own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from daq.testing import ModbusTestServer

from .clitools import daq, write_config
from .conftest import Broker, Subscriber, wait_for
from .test_daemon_e2e import assert_complete_and_ordered, by_channel, seqs_covered

pytestmark = pytest.mark.slow


def test_read_beside_a_daemon_polling_the_same_rtu_line_every_second(
        broker: Broker, subscriber: Subscriber, run_daemon: Any, tmp_path: Path) -> None:
    """Six `daq read` while the daemon polls the same RS-485 (pty) line every second: each
    read succeeds through the daemon's worker, and the daemon misses nothing (100 %)."""
    with ModbusTestServer.rtu(units=(1, 2)) as srv:
        srv.set_value(1, 0, 12.25, "float32")
        srv.set_value(2, 0, 7.5, "float32")
        cfg = write_config(tmp_path / "c.yaml", srv.url)
        d = run_daemon(cfg, broker.url)
        wait_for(lambda: len(subscriber.readings()) >= 6, 60, "first readings")
        reads = []
        for target in ("unit1", "LEVEL", "unit2", "unit1", "LEVEL", "unit2"):
            r = daq("read", target, "--config", str(cfg), "--state-dir", str(d.state_dir),
                    "--json")
            assert r.returncode == 0, r.stderr + r.stdout
            reads.append(json.loads(r.stdout))
        human = daq("read", "LEVEL", "--config", str(cfg), "--state-dir", str(d.state_dir))
        wait_for(lambda: (s := d.status()) and all(
            c["expected"] >= 15 for c in s["completeness_24h"].values()), 90, "15 polls each")
        status = d.status()
        assert d.stop() == 0
    assert status is not None
    for r in reads:
        assert r["ok"] and r["served_by"] == "daemon", r
    level = reads[1]
    assert [x["channel"] for x in level["readings"]] == ["LEVEL.level"]
    assert level["readings"][0]["value"] == pytest.approx(95.0 - 12.25, abs=1e-4)
    assert level["readings"][0]["calibration"]["id"] == "RADAR-1"
    assert level["channels"][0]["value"] == pytest.approx(12.25, abs=1e-5)
    msg = level["messages"][0]
    assert msg["topic"] == "daq/v1/test-site/rtu-7/data/unit1"
    assert msg["payload"]["readings"][0]["channel"] == "LEVEL.level"
    assert reads[2]["channels"][0]["value"] == pytest.approx(7.5)
    assert human.returncode == 0, human.stderr
    assert "would publish (dry run" in human.stdout
    assert "daq/v1/test-site/rtu-7/data/unit1" in human.stdout
    assert "RADAR-1" in human.stdout
    # the daemon's own schedule: nothing skipped, nothing failed, every slot acquired
    for bus in status["buses"]:
        for dev in bus["devices"]:
            assert (dev["failures"], dev["gaps"], dev["skipped"]) == (0, 0, 0), dev
    for name, c in status["completeness_24h"].items():
        assert c["ratio"] == 1.0, (name, c)
    assert status["control"]["errors"] == 0
    # a dry run publishes nothing: seqs at the subscriber are continuous and every
    # message is a scheduled poll
    assert_complete_and_ordered(by_channel(subscriber.readings()))


def test_read_without_daemon_then_publish(broker: Broker, subscriber: Subscriber,
                                          tmp_path: Path) -> None:
    with ModbusTestServer.tcp(units=(1, 2)) as srv:
        srv.set_value(1, 0, 20.0, "float32")
        srv.set_value(2, 0, 1.0, "float32")
        cfg = write_config(tmp_path / "c.yaml", srv.url, "modbus_tcp")
        state = tmp_path / "state"
        dry = daq("read", "unit1", "--config", str(cfg), "--state-dir", str(state))
        pub = daq("read", "unit1", "--config", str(cfg), "--state-dir", str(state),
                  "--publish", "--json", "--mqtt-url", broker.url)
        again = daq("read", "unit1", "--config", str(cfg), "--state-dir", str(state),
                    "--publish", "--json", "--mqtt-url", broker.url)
        srv.mute(2)
        silent = daq("read", "unit2", "--config", str(cfg), "--state-dir", str(state),
                     "--json")
    assert dry.returncode == 0, dry.stderr
    assert "this command (no daemon running)" in dry.stdout
    assert "LEVEL.level" in dry.stdout and "75" in dry.stdout
    assert not subscriber.readings() or all(r["seq"] for r in subscriber.readings())
    assert pub.returncode == 0 and again.returncode == 0, pub.stderr + again.stderr
    assert json.loads(pub.stdout)["published"].startswith("acknowledged by")
    wait_for(lambda: len(subscriber.readings()) >= 4, 30, "both published polls")
    chans = by_channel(subscriber.readings())
    assert set(chans) == {"unit1/distance", "LEVEL.level"}
    for rs in chans.values():  # the second command is a start too: its skip is named
        assert rs[0]["seq"] == 1 and len(rs) == 2
        assert seqs_covered(rs) == list(range(1, rs[1]["seq"] + 1))
    assert silent.returncode == 1
    out = json.loads(silent.stdout)
    assert out["ok"] is False and out["error_kind"] in ("no_response", "protocol_error")


def test_read_unknown_name_is_bad_input_with_a_suggestion(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.yaml", "tcp://127.0.0.1:1", "modbus_tcp")
    r = daq("read", "LEVL", "--config", str(cfg))
    assert r.returncode == 2
    assert "did you mean 'LEVEL'" in r.stderr and "Traceback" not in r.stderr
    bad = daq("read", "unit1", "--config", str(tmp_path / "missing.yaml"))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    helptext = daq("read", "--help")
    assert helptext.returncode == 0 and "examples:" in helptext.stdout


def test_read_never_polls_behind_a_running_daemon(run_daemon: Any, tmp_path: Path) -> None:
    """A daemon whose socket is gone (deleted by hand) still owns its bus: refuse."""
    with ModbusTestServer.tcp(units=(1, 2)) as srv:
        cfg = write_config(tmp_path / "c.yaml", srv.url, "modbus_tcp")
        d = run_daemon(cfg, "mqtt://127.0.0.1:1")
        sock = d.state_dir / "control.sock"
        wait_for(lambda: sock.exists() and d.status(), 60, "the daemon")
        sock.unlink()
        r = daq("read", "unit1", "--config", str(cfg), "--state-dir", str(d.state_dir))
        assert d.stop() == 0
    assert r.returncode == 1
    assert "a daemon is running" in r.stderr and "not polling its bus" in r.stderr
