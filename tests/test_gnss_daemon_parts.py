"""GNSS in the daemon, part by part: the ``gnss:`` configuration, a receiver stream into the
session store, the solver thread's results and alarms in a real outbox, a port that
disappears.

Receiver data is real: the RTCM 3 reference-station log (raw/f9p_2021) and the F9P 4-h
RINEX session re-encoded as RTCM 3 MSM7 + ephemerides (``daq.gnss.replay.player.rinex_to_rtcm``),
decoded by the same code the daemon runs.
"""

from __future__ import annotations

import json
import os
import socket
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from daq.config import loads
from daq.errors import ConfigError
from daq.gnss.gnss_config import GNSS, GnssConfig, build
from daq.gnss.obs import GNSSTime
from daq.gnss.replay.player import rinex_to_rtcm
from daq.gnss.rinex.writer import observed_types
from daq.gnss.sessions.ingest import StreamIngest
from daq.gnss.sessions.recorder import StreamRecorder
from daq.gnss.sessions.solving import SessionSolver
from daq.gnss.sessions.store import SessionStore
from daq.gnss.solver.baseline import SolverOptions, solve_baseline
from daq.outbox import Outbox
from daq.schema import Ctx, load_yaml

from .conftest import validator, wait_for

DATA = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "gnss").resolve()
F9P = DATA / "ppk_f9p_4h"
BASE_OBS = F9P / "base_2022-02-25_00-00-00_GNSS-1.obs"
ROVER_OBS = F9P / "rover_2022-02-25_13-26-06_GNSS-1.obs"
NAV = F9P / "base_2022-02-25_00-00-00_GNSS-1.nav"
RTCM_LOG = DATA / "raw" / "f9p_2021" / "20210809-111055-rtcm3-base-corrections.rtcm3"
BASE_XYZ = (2078720.6329, -5683487.5402, 2007608.6397)   # base header, as every reference run
ROVER_XYZ = (2077970.7070, -5684018.1979, 2006789.4508)
pytestmark = pytest.mark.skipif(not F9P.exists(), reason="shared GNSS data not present")

CONFIG = """\
streams:
  ref_rx: {url: /dev/null, point: REF, format: rtcm3}
  mon_rx: {url: /dev/null, point: P01}
points:
  REF: {role: reference, xyz: [2078720.6329, -5683487.5402, 2007608.6397]}
  P01:
    role: monitor
    reference: REF
    systems: GC
    dam_axis_azimuth_deg: 30
    reference_epoch: {e: -886.9560, n: -853.8950, u: -28.4200, label: survey-2022}
    alarm_mm: {along: 10, downstream: 10, vertical: 3}
sessions: {hours: 4, solve_wait: 1s}
"""


def gps(text: str) -> float:
    return GNSSTime.from_calendar(datetime.fromisoformat(text), "GPST").gps_seconds


def gnss_config(text: str = CONFIG) -> GnssConfig:
    ctx = Ctx()
    checked = GNSS.check(load_yaml(text), "gnss", 1, ctx)
    assert ctx.problems == []
    return build(checked)


def record(store: SessionStore, point: str, obs: Path, xyz: tuple[float, float, float],
           start: str, end: str, systems: str = "GEC") -> StreamIngest:
    """A receiver's RTCM 3 stream (from its RINEX file) through the daemon's ingest."""
    ing = StreamIngest(point.lower(), point, store)
    for _t, chunk in rinex_to_rtcm(obs, [NAV], xyz, systems=systems, start=gps(start),
                                   end=gps(end)):
        ing.feed(chunk)
    ing.flush()
    return ing


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Base and rover streams 13:26:15–16:10 GPST: the 12:00–16:00 UTC window closes."""
    state = tmp_path_factory.mktemp("state")
    store = SessionStore(state / "gnss", session_hours=4)
    for point, obs, xyz in (("REF", BASE_OBS, BASE_XYZ), ("P01", ROVER_OBS, ROVER_XYZ)):
        ing = record(store, point, obs, xyz, "2022-02-25 13:26:15", "2022-02-25 16:10:00")
        assert ing.counters.epochs == 656 and ing.counters.decode_errors == {}
    store.close()
    return state


def solver_for(state: Path, cfg: GnssConfig) -> tuple[SessionSolver, Outbox]:
    store = SessionStore(state / "gnss", session_hours=cfg.sessions.hours)
    outbox = Outbox(state / "outbox.sqlite3")
    solver = SessionSolver(cfg, store, state, outbox, devices={"P01": "mon_rx"},
                           data_clock=lambda: (None, None), base_positions=lambda p: None)
    store.on_close = solver.on_close
    return solver, outbox


def copy_sessions(recorded: Path, state: Path) -> None:
    """The recorded sessions (and their summaries) into a fresh state directory."""
    for f in (recorded / "gnss").glob("*/*.*"):
        if f.suffix in (".ses", ".json"):
            (state / "gnss" / f.parent.name).mkdir(parents=True, exist_ok=True)
            (state / "gnss" / f.parent.name / f.name).write_bytes(f.read_bytes())


def run_until_solved(solver: SessionSolver, what: str) -> None:
    solver.start()
    try:
        wait_for(lambda: solver.counters["solved"] == 1, 300, what)
    finally:
        solver.stop()


def assert_solved_once_at_noon(outbox: Outbox, state: Path) -> None:
    """Exactly the 12:00 session was published, and the point state says so."""
    assert {p["session"]["id"] for t, p in rows(outbox) if t == "gnss/P01"} == \
        {"P01/20220225T1200Z"}
    kept = json.loads((state / "gnss_points" / "P01.json").read_text())
    assert kept["last_solved"] == "20220225T1200Z"


def rows(outbox: Outbox) -> list[tuple[str, dict[str, Any]]]:
    return [(r.topic, p) for r in outbox.all_rows() for p in r.readings()]


# -- configuration ------------------------------------------------------------------------

def test_a_valid_gnss_section_builds_typed_points_streams_and_session_defaults() -> None:
    cfg = gnss_config()
    assert [s.name for s in cfg.streams] == ["ref_rx", "mon_rx"]
    assert cfg.streams[1].format == "auto" and cfg.streams[1].baudrate == 115200
    p = cfg.points["P01"]
    assert (p.role, p.reference, p.systems, p.elevation_mask_deg) == ("monitor", "REF", "GC", 15)
    assert p.reference_epoch == (-886.956, -853.895, -28.42) and p.alarm_mm["vertical"] == 3
    assert cfg.points["REF"].xyz == BASE_XYZ
    assert (cfg.sessions.hours, cfg.sessions.close_after_s, cfg.sessions.solve_wait_s) == \
        (4.0, 300.0, 1.0)


def test_every_gnss_config_problem_is_reported_with_path_line_and_hint() -> None:
    text = """\
site: s
rtu: r
buses: {}
gnss:
  streams:
    a: {url: /dev/ttyACM0, point: P1, format: rtcm}
    b: {url: /dev/ttyACM1, point: REFF}
  points:
    REF: {role: reference}
    P1: {role: monitor, reference: P2, systems: GX, elevaton_mask: 10}
  sessions: {hours: 5}
"""
    with pytest.raises(ConfigError) as err:
        loads(text, drivers={})
    got = {(p.path, p.line): p for p in err.value.problems}
    assert ("gnss.streams.a.format", 6) in got
    assert got[("gnss.streams.b.point", 7)].hint == "did you mean 'REF'?"
    assert ("gnss.points.P1.reference", 10) in got
    assert ("gnss.points.P1.systems", 10) in got
    assert got[("gnss.points.P1.elevaton_mask", 10)].hint == "did you mean 'elevation_mask'?"
    assert ("gnss.points.REF", 9) in got          # no stream feeds it
    assert ("gnss.sessions.hours", 11) in got      # 5 h does not divide 24 h


def test_the_daemon_config_carries_the_gnss_section() -> None:
    text = "site: s\nrtu: r\nbuses: {}\ngnss:\n" + "".join(
        f"  {line}\n" for line in CONFIG.splitlines())
    cfg = loads(text, drivers={})
    assert isinstance(cfg.gnss, GnssConfig) and set(cfg.gnss.points) == {"REF", "P01"}
    assert loads("site: s\nrtu: r\nbuses: {}\n", drivers={}).gnss is None


# -- a stream into the session store -------------------------------------------------------

def test_rtcm_log_without_ephemerides_is_dated_by_its_1013_and_garbage_is_counted(
        tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "gnss", session_hours=1)
    ing = StreamIngest("base", "REF", store, fmt="rtcm3")
    data = RTCM_LOG.read_bytes()
    junk = bytes(range(256)) + b"\xd3\x00\x13" + os.urandom(40)   # noise and a torn frame
    for i in range(0, len(data), 4096):
        ing.feed(data[i:i + 4096])
        if i % (40 * 4096) == 0:
            ing.feed(junk)
    ing.flush()
    c = ing.counters
    assert (c.epochs, c.epochs_dropped, c.time_source) == (867, 0, "rtcm1013")
    (info,) = store.list("REF")
    assert info.id == "REF/20210809T1500Z" and info.epochs == 867
    assert info.first == datetime(2021, 8, 9, 15, 11, 16)
    assert ing.station is not None and abs(ing.station.x - 2078678.9505) < 1e-4


def test_a_ublox_stream_is_recorded_with_its_own_week_and_its_nmea_ignored_but_counted(
        tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "gnss", session_hours=1)
    ing = StreamIngest("rover", "P01", store, fmt="ubx")
    data = (DATA / "raw" / "f9p_2021" / "20210809-121012-ubx-nmea-data.ubx").read_bytes()
    for i in range(0, len(data), 4096):
        ing.feed(data[i:i + 4096])
    ing.flush()
    c = ing.counters
    assert (c.epochs, c.epochs_dropped, c.time_source) == (132, 0, "ubx")   # every RXM-RAWX
    assert c.ephemerides > 0 and c.ignored_frames > 20000                  # SFRBX; NMEA
    (info,) = store.list("P01")
    assert info.id == "P01/20210809T1600Z" and info.ephemerides > 0


def test_observations_wait_for_a_week_then_the_clock_decides_if_none_comes(
        tmp_path: Path) -> None:
    """Without 1013, ephemeris or UBX week, epochs are held, then dated by the clock."""
    store = SessionStore(tmp_path / "gnss", session_hours=1)
    data = b"".join(f.raw for f in _frames(RTCM_LOG.read_bytes()) if f.msg != 1013)
    clock = gps("2021-08-09 15:30:00")
    ing = StreamIngest("base", "REF", store, max_pending=40, clock=lambda: clock)
    ing.feed(data[:200_000])
    assert ing.counters.epochs > 0 and ing.counters.time_source == "clock"
    (info,) = store.list("REF")
    assert info.id == "REF/20210809T1500Z"


def _frames(data: bytes) -> list[Any]:
    from daq.gnss.streams.framing import Framer

    f = Framer()
    return f.feed(data) + f.flush()


# -- the solver thread ----------------------------------------------------------------------

def test_a_closed_session_pair_gives_schema_valid_readings_equal_to_a_direct_solve(
        recorded: Path, tmp_path: Path) -> None:
    cfg = gnss_config()
    solver, outbox = solver_for(recorded, cfg)
    solver._closed(solver.store.list("P01")[0])
    got = rows(outbox)
    readings = {p["quantity"]: p for t, p in got if t == "gnss/P01"}
    check = validator("gnss.json")
    for p in readings.values():
        check.validate(p)
        assert p["quality"] == "good" and p["session"]["verdict"] == "fixed"
    s = readings["baseline_e"]["session"]
    assert s["epochs"] == 617 and s["window_end"] == "2022-02-25T16:00:00.000Z"
    # the same sessions solved directly give the same baseline (0.01 mm rounding)
    rover, nav_r = solver.store.load("P01/20220225T1200Z")
    base, nav_b = solver.store.load("REF/20220225T1200Z")
    for d in (rover, base):
        d.header.obs_types = observed_types(d)
    sol = solve_baseline(rover, base, [nav_b, nav_r], BASE_XYZ, SolverOptions(systems="GC"))
    for comp, v in zip("enu", sol.enu, strict=True):
        assert abs(readings[f"baseline_{comp}"]["value"] - v) < 1e-5
    assert abs(readings["displacement_vertical"]["value"] - (sol.enu[2] + 28.42) * 1000) < 0.01
    alarms = [p for t, p in got if t == "alarm/P01"]
    assert [a["channel"] for a in alarms] == ["P01.alarm.displacement_vertical"]
    assert alarms[0]["alarm"]["threshold_mm"] == 3.0 and alarms[0]["value"] < -3.0
    state = json.loads((recorded / "gnss_points" / "P01.json").read_text())
    assert state["last_solved"] == "20220225T1200Z" and state["last"]["fixed"] is True


def test_without_a_reference_epoch_the_first_fixed_session_becomes_it_and_is_kept(
        recorded: Path, tmp_path: Path) -> None:
    cfg = gnss_config(CONFIG.replace(
        "reference_epoch: {e: -886.9560, n: -853.8950, u: -28.4200, label: survey-2022}",
        "elevation_mask: 15"))
    state = tmp_path / "state"
    (state / "gnss").mkdir(parents=True)
    for f in (recorded / "gnss").glob("*/*.ses"):
        (state / "gnss" / f.parent.name).mkdir(exist_ok=True)
        (state / "gnss" / f.parent.name / f.name).write_bytes(f.read_bytes())
    solver, outbox = solver_for(state, cfg)
    solver._solve(cfg.points["P01"], "P01/20220225T1200Z")
    first = {p["quantity"]: p for t, p in rows(outbox) if t == "gnss/P01"}
    assert first["displacement_vertical"]["value"] == 0.0
    assert first["displacement_vertical"]["flags"] == ["reference_epoch"]
    assert first["baseline_e"]["session"]["reference_epoch"]["adopted_now"] is True
    kept = json.loads((state / "gnss_points" / "P01.json").read_text())["reference_epoch"]
    assert kept["label"] == "P01/20220225T1200Z"
    again, outbox2 = solver_for(state, cfg)   # a restart: the stored reference is used
    again._solve(cfg.points["P01"], "P01/20220225T1200Z")
    second = [p for t, p in rows(outbox2) if p["channel"] == "P01.displacement_vertical"]
    assert second[-1]["value"] == 0.0 and "flags" not in second[-1]


def test_a_session_without_a_fix_is_published_as_such_and_raises_an_alarm(
        tmp_path: Path) -> None:
    """Five minutes of BeiDou B1I alone (4–6 satellites) cannot be fixed: no millimetres."""
    cfg = gnss_config(CONFIG.replace("systems: GC", "systems: C"))
    state = tmp_path / "state"
    store = SessionStore(state / "gnss", session_hours=4)
    for point, obs, xyz in (("REF", BASE_OBS, BASE_XYZ), ("P01", ROVER_OBS, ROVER_XYZ)):
        record(store, point, obs, xyz, "2022-02-25 13:30:00", "2022-02-25 13:32:00", "C")
    store.close()
    solver, outbox = solver_for(state, cfg)
    solver._solve(cfg.points["P01"], "P01/20220225T1200Z")
    got = rows(outbox)
    results = [p for t, p in got if t == "gnss/P01"]
    verdict = results[0]["session"]["verdict"]
    assert verdict in ("ratio too low", "no fix", "too few satellites")
    for p in results:
        validator("gnss.json").validate(p)
        assert p["value"] is None and p["quality"] == "bad"
        assert p["flags"] == [verdict.replace(" ", "_")]
        assert p["session"]["displacement_mm"] is None and p["session"]["enu_m"] is None
    (alarm,) = [p for t, p in got if t == "alarm/P01"]
    assert alarm["alarm"]["kind"] == verdict and alarm["channel"] == "P01.alarm.session"
    validator("reading.json").validate(alarm)


def test_a_monitor_session_whose_reference_never_closes_is_published_missing_after_the_wait(
        recorded: Path, tmp_path: Path) -> None:
    cfg = gnss_config()
    state = tmp_path / "state"
    (state / "gnss" / "P01").mkdir(parents=True)
    ses = recorded / "gnss" / "P01" / "20220225T1200Z.ses"
    (state / "gnss" / "P01" / ses.name).write_bytes(ses.read_bytes())
    solver, outbox = solver_for(state, cfg)
    solver.start()
    try:
        solver.on_close(solver.store.list("P01")[0])
        wait_for(lambda: any(t == "alarm/P01" for t, _ in rows(outbox)), 30,
                 "the alarm after solve_wait")
        assert solver.status()["points"]["P01"]["last"]["verdict"] == "no reference data"
    finally:
        solver.stop()
    got = rows(outbox)
    for t, p in got:
        if t == "gnss/P01":
            validator("gnss.json").validate(p)
            assert p["quality"] == "missing" and p["value"] is None
    (alarm,) = [p for t, p in got if t == "alarm/P01"]
    assert alarm["alarm"]["kind"] == "no reference data"


def test_after_a_restart_sessions_closed_since_the_last_solve_are_solved(
        recorded: Path, tmp_path: Path) -> None:
    cfg = gnss_config()
    state = tmp_path / "state"
    copy_sessions(recorded, state)
    (state / "gnss_points").mkdir()
    (state / "gnss_points" / "P01.json").write_text(json.dumps(
        {"last_solved": "20220225T0800Z"}))     # the daemon went down before 12:00 closed
    solver, outbox = solver_for(state, cfg)
    run_until_solved(solver, "the missed session's solve")
    assert_solved_once_at_noon(outbox, state)


def test_a_monitor_session_gone_before_its_solve_is_published_as_a_solver_error_alarm(
        recorded: Path, tmp_path: Path) -> None:
    """Retention (size cap) may delete a session waiting for its reference: the loss is
    published (alarm, missing values) and recorded as solved, never silently dropped."""
    cfg = gnss_config()
    state = tmp_path / "state"
    (state / "gnss" / "P01").mkdir(parents=True)
    ses = recorded / "gnss" / "P01" / "20220225T1200Z.ses"
    (state / "gnss" / "P01" / ses.name).write_bytes(ses.read_bytes())
    solver, outbox = solver_for(state, cfg)
    solver._closed(solver.store.list("P01")[0])        # waits for REF
    assert list(solver.waiting) == ["P01/20220225T1200Z"]
    (state / "gnss" / "P01" / ses.name).unlink()       # what apply_retention does
    solver.waiting["P01/20220225T1200Z"] = 0.0         # the wait is over
    solver._expire_waits()
    got = rows(outbox)
    results = [p for t, p in got if t == "gnss/P01"]
    assert len(results) == 6
    for p in results:
        validator("gnss.json").validate(p)
        assert p["value"] is None and p["quality"] == "missing"
        assert p["session"]["verdict"] == "solver error"
    (alarm,) = [p for t, p in got if t == "alarm/P01"]
    assert alarm["alarm"]["kind"] == "solver error"
    assert solver.waiting == {} and solver.counters["errors"] == 1
    kept = json.loads((state / "gnss_points" / "P01.json").read_text())
    assert kept["last_solved"] == "20220225T1200Z"


def test_on_the_first_start_without_point_state_closed_sessions_are_solved(
        recorded: Path, tmp_path: Path) -> None:
    """A restart before a point's very first solve (no gnss_points/<point>.json yet) must
    not forget the sessions that closed meanwhile."""
    cfg = gnss_config()
    state = tmp_path / "state"
    copy_sessions(recorded, state)
    solver, outbox = solver_for(state, cfg)
    run_until_solved(solver, "the unsolved session's solve")
    assert_solved_once_at_noon(outbox, state)


def test_an_unreadable_point_state_is_reported_and_kept_aside_not_silently_reset(
        tmp_path: Path) -> None:
    """The point state holds the adopted reference epoch: if it cannot be read (cut by a
    power loss), the daemon says so and keeps the damaged file for the technician."""
    cfg = gnss_config()
    (tmp_path / "gnss_points").mkdir()
    damaged = '{"reference_epoch": {"enu_m": [-886.957, -853.8957, -28.4'
    (tmp_path / "gnss_points" / "P01.json").write_text(damaged)
    with capture_logs() as logs:
        solver, _outbox = solver_for(tmp_path, cfg)
    (event,) = [e for e in logs if e["event"] == "gnss_point_state_unreadable"]
    assert event["point"] == "P01" and event["log_level"] == "error"
    assert (tmp_path / "gnss_points" / "P01.json.bad").read_text() == damaged
    assert solver.points["P01"] == {}


# -- the port ------------------------------------------------------------------------------

def test_a_port_that_disappears_is_reopened_with_backoff_and_logged_once_each_way(
        tmp_path: Path) -> None:
    """socket:// through pyserial: the receiver's server goes away, then comes back."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    port = srv.getsockname()[1]
    srv.listen(1)
    cfg = gnss_config(CONFIG.replace("url: /dev/null, point: REF",
                                     f"url: 'socket://127.0.0.1:{port}', point: REF"))
    store = SessionStore(tmp_path / "gnss", session_hours=1)
    ing = StreamIngest("ref_rx", "REF", store)
    rec = StreamRecorder(cfg.streams[0], ing)
    data = RTCM_LOG.read_bytes()
    with capture_logs() as logs:
        rec.start()
        conn, _ = srv.accept()
        # pyserial flushes input on open: what arrives before is lost, as on a real cable
        wait_for(lambda: rec.port is not None, 120, "the port to open")
        conn.sendall(data[:300_000])
        wait_for(lambda: ing.counters.bytes >= 300_000, 300, "the first part")
        srv.close()                                 # the receiver is gone for a while
        conn.close()
        wait_for(lambda: rec.error is not None, 120, "the loss to be noticed")
        time.sleep(2.0)                             # several failed reopen attempts
        srv = socket.create_server(("127.0.0.1", port), reuse_port=False)
        conn, _ = srv.accept()
        wait_for(lambda: rec.port is not None, 120, "the port to reopen")
        conn.sendall(data[300_000:])
        wait_for(lambda: ing.counters.bytes >= len(data), 300, "the rest")
        rec.stop()
        conn.close()
        rec.join(60)
        srv.close()
    ing.flush()
    events = [e["event"] for e in logs]
    assert events.count("gnss_port_lost") == 1
    assert events.count("gnss_port_unavailable") == 0   # failed reopens: not logged again
    assert events.count("gnss_port_restored") == 1 and rec.reopens == 1
    assert ing.counters.epochs >= 860   # an epoch cut at the break may be lost, no more


def test_a_connection_gone_silent_is_reopened_and_logged_once_each_way(
        tmp_path: Path) -> None:
    """A serial-to-Ethernet converter power-cycled leaves a half-open TCP connection: no
    error ever comes, only silence. After ``silence_s`` without a byte the port is reopened,
    and recording resumes on the new connection."""
    srv = socket.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]
    cfg = gnss_config(CONFIG.replace("url: /dev/null, point: REF",
                                     f"url: 'socket://127.0.0.1:{port}', point: REF"))
    store = SessionStore(tmp_path / "gnss", session_hours=1)
    ing = StreamIngest("ref_rx", "REF", store)
    rec = StreamRecorder(cfg.streams[0], ing, silence_s=1.0)
    data = RTCM_LOG.read_bytes()
    with capture_logs() as logs:
        rec.start()
        first, _ = srv.accept()
        wait_for(lambda: rec.port is not None, 120, "the port to open")
        first.sendall(data[:300_000])
        wait_for(lambda: ing.counters.bytes >= 300_000, 300, "the first part")
        # the converter is gone: `first` stays open on our side but never speaks again
        srv.settimeout(20)
        second, _ = srv.accept()                    # the recorder's new connection
        wait_for(lambda: rec.port is not None, 120, "the port to reopen")
        second.sendall(data[300_000:])
        wait_for(lambda: ing.counters.bytes >= len(data), 300, "the rest")
        rec.stop()
        rec.join(60)
        for s in (first, second, srv):
            s.close()
    ing.flush()
    events = [e["event"] for e in logs]
    assert events.count("gnss_port_silent") == 1
    assert events.count("gnss_port_restored") == 1 and rec.reopens == 1
    assert rec.error is None
    assert ing.counters.epochs >= 860


def test_the_readme_gnss_example_is_a_valid_configuration() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## GNSS", 1)[1]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    cfg = loads("site: s\nrtu: r\nbuses: {}\n" + block, drivers={})
    assert cfg.gnss is not None and cfg.gnss.points["P01"].alarm_mm["vertical"] == 15
