"""The alarm service in process, on a real outbox file: a transition whose commit fails
(the database locked by another writer) is kept and committed once the disk is back; a
second service on the same file restores the states."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from daq.alarms.alarm_config import AlarmsConfig, Rule
from daq.alarms.service import AlarmService
from daq.model import Lane, Quality, Reading
from daq.outbox import Outbox


def reading(value: float, t: float) -> tuple[str, Reading]:
    return "data/unit1", Reading(device="unit1", channel="unit1/level", quantity="water_level",
                                 value=value, unit="m", quality=Quality.GOOD,
                                 ts=datetime.fromtimestamp(t, UTC))


def test_a_failed_state_commit_is_retried_not_lost(tmp_path: Path) -> None:
    cfg = AlarmsConfig(rules=(Rule(id="unit1/level/water_level.h", sensor="unit1/level",
                                   quantity="water_level", kind="h", severity=700,
                                   limit=10.0),))
    box = Outbox(tmp_path / "outbox.sqlite3")
    now = [1_800_000_000.0]
    svc = AlarmService(cfg, box, clock=lambda: now[0])
    svc.store._db.execute("PRAGMA busy_timeout=50")
    other = sqlite3.connect(tmp_path / "outbox.sqlite3", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the file
    svc.accepted([reading(12.0, now[0])])
    assert svc.errors == 1 and not [r for r in box.all_rows() if r.lane == Lane.ALARM]
    other.execute("ROLLBACK")
    now[0] += 1
    svc.tick()
    rows = [json.loads(r.payload) for r in box.all_rows() if r.lane == Lane.ALARM]
    assert [r["event"] for r in rows] == ["raised"]
    svc.command("ack", "unit1/level/water_level.h", "alice")
    svc.stop()
    again = AlarmService(cfg, box, clock=lambda: now[0])
    view = again.views()[0]
    assert view["active"] and view["acked"] and view["raised_count"] == 1
    again.accepted([reading(12.5, now[0] + 2)])  # still high: no second "raised"
    rows = [json.loads(r.payload) for r in box.all_rows() if r.lane == Lane.ALARM]
    assert [r["event"] for r in rows] == ["raised", "acked"]
    again.stop()
    box.close()


def test_results_are_alarmed_by_sensor_and_quantity_whatever_their_origin(
        tmp_path: Path) -> None:
    """A GNSS displacement (result lane, sensor = point) and a summary alarm like a value."""
    cfg = AlarmsConfig(rules=(
        Rule(id="GP1/displacement_downstream.h", sensor="GP1",
             quantity="displacement_downstream", kind="h", severity=800, limit=20.0),
        Rule(id="P07/piezometric_elevation_mean.hh", sensor="P07",
             quantity="piezometric_elevation_mean", kind="hh", severity=900, limit=65.0)))
    box = Outbox(tmp_path / "outbox.sqlite3")
    svc = AlarmService(cfg, box)
    svc.watch(box)
    ts = datetime(2026, 12, 1, 12, tzinfo=UTC)
    box.add([("gnss/GP1", Reading(device="gnss_rx", channel="GP1.displacement_downstream",
                                  quantity="displacement_downstream", value=23.4, unit="mm",
                                  quality=Quality.GOOD, ts=ts, lane=Lane.RESULT,
                                  sensor="GP1")),
             ("summary/P07", Reading(device="vw_a", channel="P07.piezometric_elevation_mean",
                                     quantity="piezometric_elevation_mean", value=65.2,
                                     unit="m", quality=Quality.GOOD, ts=ts, lane=Lane.RESULT,
                                     sensor="P07"))])
    raised = [json.loads(r.payload) for r in box.all_rows() if r.lane == Lane.ALARM]
    assert sorted(r["alarm"] for r in raised) == ["GP1/displacement_downstream.h",
                                                  "P07/piezometric_elevation_mean.hh"]
    svc.stop()
    box.close()


def test_transitions_while_shelved_are_published_suppressed(tmp_path: Path) -> None:
    cfg = AlarmsConfig(rules=(Rule(id="unit1/level/water_level.h", sensor="unit1/level",
                                   quantity="water_level", kind="h", severity=700,
                                   limit=10.0),))
    box = Outbox(tmp_path / "outbox.sqlite3")
    now = [1_800_000_000.0]
    svc = AlarmService(cfg, box, clock=lambda: now[0])
    svc.command("shelve", "unit1/level/water_level.h", "op", duration=600.0)
    svc.accepted([reading(12.0, now[0])])
    svc.accepted([reading(5.0, now[0] + 1)])
    rows = [json.loads(r.payload) for r in box.all_rows() if r.lane == Lane.ALARM]
    assert [(r["event"], r["suppressed"]) for r in rows] == [
        ("shelved", True), ("raised", True), ("cleared", True)]
    assert rows[0]["by"] == "op" and rows[0]["detail"]["mode"] == "timed"
    svc.stop()
    box.close()
