"""GNSS session store: clock-aligned sessions, crash recovery, listing, export, retention.

The epochs and ephemerides are the real F9P base and rover files, fed in time order as a
receiver stream would deliver them (an ephemeris when it was transmitted).
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from daq.gnss.obs import GlonassEphemeris, GNSSTime, NavData, ObsData
from daq.gnss.rinex import read_nav, read_obs
from daq.gnss.sessions.store import SessionInfo, SessionStore, parse_session_id

GNSS = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "gnss").resolve()
F9P = GNSS / "ppk_f9p_4h"
pytestmark = pytest.mark.skipif(not F9P.exists(), reason="shared GNSS data not present")


@pytest.fixture(scope="module")
def rover() -> ObsData:
    return read_obs(F9P / "rover_2022-02-25_13-26-06_GNSS-1.obs")


@pytest.fixture(scope="module")
def nav() -> NavData:
    return read_nav(F9P / "base_2022-02-25_00-00-00_GNSS-1.nav")


def _available(eph: object) -> float:
    """GPST seconds at which a receiver would have had this ephemeris."""
    if isinstance(eph, GlonassEphemeris):
        return GNSSTime.from_utc(eph.toc - timedelta(minutes=15)).gps_seconds
    return GNSSTime(eph.week, eph.ttr, eph.time_scale).gps_seconds  # type: ignore[attr-defined]


def feed(store: SessionStore, point: str, obs: ObsData, nav: NavData,
         epochs: slice = slice(None)) -> None:
    """Stream epochs and, interleaved by transmission time, ephemerides into the store."""
    pending = sorted(nav.ephemerides, key=_available)
    k = 0
    for ep in obs.epochs[epochs]:
        while k < len(pending) and _available(pending[k]) <= ep.time.gps_seconds:
            store.add_ephemeris(point, pending[k])
            k += 1
        store.add_epoch(point, ep)


def same_epochs(a: list, b: list) -> None:
    assert len(a) == len(b)
    for ea, eb in zip(a, b, strict=True):
        assert ea.time == eb.time and ea.sats == eb.sats
        for c in set(ea.codes) | set(eb.codes):
            np.testing.assert_array_equal(ea.column(c), eb.column(c))
            if c in ea.codes and c in eb.codes:
                ja, jb = ea.codes.index(c), eb.codes.index(c)
                np.testing.assert_array_equal(ea.lli[:, ja], eb.lli[:, jb])
                np.testing.assert_array_equal(ea.ssi[:, ja], eb.ssi[:, jb])


def test_sessions_are_aligned_to_the_utc_clock_and_closed_with_a_hook(
        tmp_path: Path, rover: ObsData, nav: NavData) -> None:
    closed: list[SessionInfo] = []
    store = SessionStore(tmp_path, session_hours=1, on_close=closed.append)
    store.set_header("ROVER", rover.header)
    feed(store, "ROVER", rover, nav)
    # 13:26:15 GPST = 13:25:57 UTC … 17:27:00 GPST = 17:26:42 UTC: sessions 13:00 … 17:00
    assert [i.id for i in closed] == [f"ROVER/20220225T{h}00Z" for h in (13, 14, 15, 16)]
    assert closed[1].epochs == 240 and closed[1].gaps == []
    assert closed[1].first == datetime(2022, 2, 25, 14, 0, 12)  # 14:00:30 GPST, 18 s leap
    assert closed[1].interval_s == 15.0
    assert set(closed[1].satellites) == {"G", "R", "E", "C"}
    assert store.counters["epochs"] == 964 and store.counters["late_epochs"] == 0
    assert store.counters["duplicate_ephemerides"] == 0
    infos = store.list("ROVER")
    assert [i.state for i in infos] == ["closed"] * 4 + ["open"]
    assert sum(i.epochs for i in infos) == 964
    assert store.close_due(datetime(2022, 2, 25, 18, 0, 1))[0].id == "ROVER/20220225T1700Z"
    assert len(closed) == 5
    store.close()


def test_a_new_session_carries_the_latest_ephemerides_so_it_stands_alone(
        tmp_path: Path, rover: ObsData, nav: NavData) -> None:
    store = SessionStore(tmp_path, session_hours=1)
    feed(store, "ROVER", rover, nav)
    _obs, n15 = store.load("ROVER/20220225T1500Z")
    gps = {e.sat for e in n15.ephemerides if e.sat[0] == "G"}
    assert len(gps) >= 8
    assert len({(e.sat, str(e.toc)) for e in n15.ephemerides}) == len(n15.ephemerides)
    store.close()


def test_torn_last_record_after_a_crash_is_dropped_and_writing_resumes(
        tmp_path: Path, rover: ObsData, nav: NavData) -> None:
    store = SessionStore(tmp_path, session_hours=4)
    feed(store, "ROVER", rover, nav, slice(0, 100))
    store.close()  # the process dies here; then cut the last record in half
    part = next(tmp_path.glob("ROVER/*.part"))
    size = part.stat().st_size
    with part.open("r+b") as f:
        f.truncate(size - 700)
    again = SessionStore(tmp_path, session_hours=4)
    assert 0 < again.counters["torn_bytes_dropped"] < 2000  # one epoch record: ~1.5 kB
    obs, _ = again.load("ROVER/20220225T1200Z")
    assert len(obs.epochs) == 99  # the torn 100th epoch is gone, the rest intact
    same_epochs(obs.epochs, rover.epochs[:99])
    feed(again, "ROVER", rover, nav, slice(99, 200))
    obs, _ = again.load("ROVER/20220225T1200Z")
    assert len(obs.epochs) == 200
    same_epochs(obs.epochs, rover.epochs[:200])
    again.close()


def test_garbage_appended_by_a_crash_is_cut_off_too(tmp_path: Path, rover: ObsData,
                                                   nav: NavData) -> None:
    store = SessionStore(tmp_path)
    feed(store, "P1", rover, nav, slice(0, 10))
    store.close()
    part = next(tmp_path.glob("P1/*.part"))
    with part.open("ab") as f:
        f.write(b"DWO\xff\xff\x00\x00partial")
    again = SessionStore(tmp_path)
    assert again.counters["torn_bytes_dropped"] == 14
    assert again.list("P1")[0].epochs == 10
    again.close()


def test_export_of_a_session_reimports_identical_values(
        tmp_path: Path, rover: ObsData, nav: NavData) -> None:
    store = SessionStore(tmp_path / "state", session_hours=4)
    store.set_header("ROVER", rover.header)
    feed(store, "ROVER", rover, nav)
    obs_path, nav_path = store.export("ROVER/20220225T1200Z", tmp_path / "out")
    assert obs_path.name == "ROVER_20220225T1200Z.obs"
    back, back_nav = read_obs(obs_path), read_nav(nav_path)
    n = sum(1 for e in rover.epochs if e.time.to_utc() < datetime(2022, 2, 25, 16))
    assert len(back.epochs) == n == 617
    same_epochs(back.epochs, rover.epochs[:n])
    assert back.header.approx_xyz == rover.header.approx_xyz
    # the header's channels, plus any GLONASS satellite known only from its ephemeris
    assert back.header.glonass_slots.items() >= rover.header.glonass_slots.items()
    _obs, stored = store.load("ROVER/20220225T1200Z")
    assert back_nav.ephemerides == stored.ephemerides and back_nav.skipped == 0
    store.close()


def test_late_and_repeated_epochs_are_dropped_and_counted(
        tmp_path: Path, rover: ObsData, nav: NavData) -> None:
    store = SessionStore(tmp_path, session_hours=1)
    feed(store, "ROVER", rover, nav, slice(0, 300))
    assert not store.add_epoch("ROVER", rover.epochs[299])  # repeated
    assert not store.add_epoch("ROVER", rover.epochs[10])  # from a closed session
    assert store.counters["out_of_order"] == 1 and store.counters["late_epochs"] == 1
    with pytest.raises(ValueError):
        store.add_epoch("../etc", rover.epochs[0])
    store.close()


def test_gaps_are_listed(tmp_path: Path, rover: ObsData) -> None:
    store = SessionStore(tmp_path, session_hours=4)
    for i, ep in enumerate(rover.epochs[:200]):
        if not 50 <= i < 60:
            store.add_epoch("P2", ep)
    info = store.list()[0]
    assert info.epochs == 190 and len(info.gaps) == 1
    a, b = info.gaps[0]
    assert (b - a).total_seconds() == 11 * 15
    store.close()


def _session_files(root: Path) -> list[str]:
    return sorted(p.stem for p in root.glob("*/*.ses"))


def test_retention_deletes_sessions_older_than_the_limit(tmp_path: Path, rover: ObsData,
                                                         nav: NavData) -> None:
    now = datetime(2022, 2, 25, 17, 30)
    store = SessionStore(tmp_path, session_hours=1, retention_days=2 / 24,
                         clock=lambda: now)
    feed(store, "ROVER", rover, nav)  # each close applies retention at "now"
    # kept: sessions ending after 15:30 (now − 2 h), i.e. 15:00–16:00 and 16:00–17:00
    assert _session_files(tmp_path) == ["20220225T1500Z", "20220225T1600Z"]
    assert store.counters["deleted_by_age"] == 2
    assert [i.state for i in store.list()] == ["closed", "closed", "open"]
    store.close()


def test_retention_by_size_deletes_oldest_closed_first(tmp_path: Path, rover: ObsData,
                                                       nav: NavData) -> None:
    store = SessionStore(tmp_path, session_hours=1)
    feed(store, "ROVER", rover, nav)
    sizes = {p.stem: p.stat().st_size + p.with_suffix(".json").stat().st_size
             for p in tmp_path.glob("*/*.ses")}
    total = sum(p.stat().st_size for p in tmp_path.glob("*/*.*"))
    store.max_total_bytes = total - sizes["20220225T1300Z"] - 1  # one is not enough
    assert store.apply_retention() == (0, 2)
    assert _session_files(tmp_path) == ["20220225T1500Z", "20220225T1600Z"]
    assert store.counters["deleted_by_size"] == 2
    assert any(p.suffix == ".part" for p in tmp_path.glob("*/*"))  # open one untouched
    store.close()


def test_a_failing_hook_is_counted_not_raised(tmp_path: Path, rover: ObsData) -> None:
    def boom(info: SessionInfo) -> None:
        raise RuntimeError("solver crashed")
    store = SessionStore(tmp_path, session_hours=1, on_close=boom)
    for ep in rover.epochs[:400]:  # 13:25:57 … 15:05:42 UTC: two sessions close
        store.add_epoch("P", ep)
    assert store.counters["hook_errors"] == 2 and store.counters["sessions_closed"] == 2
    assert len(store.list()) == 3
    store.close()


def test_a_damaged_summary_beside_a_closed_session_is_rebuilt_from_the_session(
        tmp_path: Path, rover: ObsData) -> None:
    """A power cut may leave the ``.json`` summary empty or cut (it is written without an
    fsync of its own); listing must still show the session, read from the session file."""
    store = SessionStore(tmp_path, session_hours=1)
    for ep in rover.epochs[:400]:  # 13:25:57 … 15:05:42 UTC: two sessions close
        store.add_epoch("P", ep)
    good = {i.id: i.epochs for i in store.list()}
    sides = sorted(tmp_path.glob("P/*.json"))
    sides[0].write_text("")
    sides[1].write_text('{"id": "P/20220225T1400Z"')
    assert {i.id: i.epochs for i in store.list()} == good
    store.close()


def test_bad_settings_and_ids_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="divide 24 h"):
        SessionStore(tmp_path, session_hours=5)
    with pytest.raises(ValueError, match="POINT/YYYYmmddTHHMMZ"):
        parse_session_id("P01-2022")
    assert parse_session_id("P01/20220225T1200Z") == ("P01", datetime(2022, 2, 25, 12))
    store = SessionStore(tmp_path)
    with pytest.raises(KeyError):
        store.load("P01/20220225T1200Z")
    assert os.listdir(tmp_path) == []


_WRITER = """
import sys
from daq.gnss.rinex import read_obs
from daq.gnss.sessions.store import SessionStore
obs = read_obs(sys.argv[2])
store = SessionStore(sys.argv[1], session_hours=4, fsync_interval_s=3600)
for i, ep in enumerate(obs.epochs[:600]):
    store.add_epoch("K", ep)
    if i == 200:
        print("ready", flush=True)
"""


def test_kill_9_while_writing_leaves_a_readable_session(tmp_path: Path, rover: ObsData) -> None:
    """A real process killed with SIGKILL mid-stream: every flushed epoch survives intact."""
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path),
                             str(F9P / "rover_2022-02-25_13-26-06_GNSS-1.obs")],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:  # log lines come first
        if line.strip() == "ready":
            break
    proc.kill()
    proc.wait(timeout=120)
    store = SessionStore(tmp_path, session_hours=4)
    obs, _ = store.load("K/20220225T1200Z")
    assert 201 <= len(obs.epochs) <= 600
    same_epochs(obs.epochs, rover.epochs[:len(obs.epochs)])
    n = len(obs.epochs)
    assert store.add_epoch("K", rover.epochs[n])  # and the session carries on
    assert store.list("K")[0].epochs == n + 1
    store.close()


def test_sessions_left_open_by_a_crash_are_closed_after_restart(
        tmp_path: Path, rover: ObsData, nav: NavData) -> None:
    """Two runs die with sessions open; the next run closes both and seeds the new one."""
    for part in (slice(0, 100), slice(250, 330)):  # 13:xx and 14:xx sessions, both left open
        store = SessionStore(tmp_path, session_hours=1)
        feed(store, "P", rover, nav, part)
        store.close()
        for p in tmp_path.glob("P/*.ses"):  # undo the in-run close: as if it never happened
            p.with_suffix(".json").unlink()
            p.rename(p.with_suffix(".part"))
    assert len(list(tmp_path.glob("P/*.part"))) == 2
    closed: list[SessionInfo] = []
    store = SessionStore(tmp_path, session_hours=1, on_close=closed.append)
    assert store.add_epoch("P", rover.epochs[700])  # 16:20 GPST: a later session
    assert [i.id for i in closed] == ["P/20220225T1400Z"]  # the newest one, at once
    assert [i.id for i in store.close_due(datetime(2022, 2, 25, 15, 0))] == ["P/20220225T1300Z"]
    assert [i.epochs for i in store.list("P")] == [100, 80, 1]
    _obs, eph = store.load("P/20220225T1600Z")
    assert {e.sat for e in eph.ephemerides} >= {"G10", "C20"}  # seeded from the 14:00 one
    store.close()


def test_a_solve_of_some_systems_loads_only_those_and_gets_the_same_answer(
        tmp_path: Path, rover: ObsData, nav: NavData) -> None:
    """The session solver's memory savings (systems filter at load, epochs consumed while
    assembling) change nothing in the answer, to the last bit."""
    from daq.gnss.rinex.writer import observed_types
    from daq.gnss.solver.baseline import SolverOptions, solve_baseline

    base = read_obs(F9P / "base_2022-02-25_00-00-00_GNSS-1.obs")
    store = SessionStore(tmp_path / "state", session_hours=4)
    for point, obs in (("ROVER", rover), ("REF", base)):
        store.set_header(point, obs.header)
        feed(store, point, obs, nav)
    xyz = (2078720.6329, -5683487.5402, 2007608.6397)
    answers = []
    for systems, consume in ((None, False), ("GC", True)):
        r, nav_r = store.load("ROVER/20220225T1200Z", systems)
        b, _ = store.load("REF/20220225T1200Z", systems)
        if systems is None:
            full = r.epochs[:]
        else:
            assert {s[0] for e in r.epochs + b.epochs for s in e.sats} == {"G", "C"}
            assert len(r.epochs) == len(full)
            for ea, eb in zip(r.epochs, full, strict=True):   # the same cells, fewer
                assert set(ea.codes) <= set(eb.codes)
                kept = [eb.sats.index(s) for s in ea.sats]
                assert [eb.sats[i] for i in kept] == list(ea.sats)
                for j, c in enumerate(ea.codes):
                    k = eb.codes.index(c)
                    np.testing.assert_array_equal(ea.values[:, j], eb.values[kept, k])
                    np.testing.assert_array_equal(ea.lli[:, j], eb.lli[kept, k])
                gone = [k for k, c in enumerate(eb.codes) if c not in ea.codes]
                assert np.isnan(eb.values[np.ix_(kept, gone)]).all()
        for data in (r, b):
            data.header.obs_types = observed_types(data)
        sol = solve_baseline(r, b, nav_r, xyz, SolverOptions(systems="GC"), consume=consume)
        assert sol.fixed
        assert (r.epochs == []) == consume and (b.epochs == []) == consume
        answers.append((sol.enu.tolist(), sol.ratio, sol.n_epochs, sol.n_fixed))
    assert answers[0] == answers[1]
    store.close()
