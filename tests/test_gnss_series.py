"""The deformation series: filter rules, persistence, publication by the solver thread and
``daq gnss series``. (Known truth on real observations: test_gnss_series_truth.py.)"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
from contextlib import redirect_stdout
from datetime import datetime
from pathlib import Path

import pytest

from daq.config import loads
from daq.errors import ConfigError
from daq.gnss.cli import series as cli_series
from daq.gnss.sessions.series_history import append_history, read_history
from daq.gnss.solver.series import SeriesFilter, SeriesOptions, SeriesUpdate, SessionPoint

from .conftest import validator
from .test_gnss_daemon_parts import F9P, copy_sessions, gnss_config, recorded, rows, solver_for

H = 1.0 / 24.0
__all__ = ["recorded"]     # the module-scoped fixture, shared with the daemon tests


def fixed(k: int, d: tuple[float, float, float], **kw: object) -> SessionPoint:
    return SessionPoint(f"P01/k{k:04d}", k * H, True, "fixed", d, (0.3, 0.3, 0.7),
                        **kw)  # type: ignore[arg-type]


def noisy(n: int, seed: int = 7, step_at: int | None = None, step: float = 0.0,
          sigma: tuple[float, float, float] = (1.5, 1.5, 2.5)) -> list[SessionPoint]:
    rnd = random.Random(seed)
    out = []
    for k in range(n):
        s = step if step_at is not None and k >= step_at else 0.0
        out.append(fixed(k, (rnd.gauss(0, sigma[0]), 0.02 * k + s + rnd.gauss(0, sigma[1]),
                             rnd.gauss(0, sigma[2]))))
    return out


def feed(f: SeriesFilter, points: list[SessionPoint]) -> list[SeriesUpdate]:
    return [f.add(p) for p in points]


# -- the filter ----------------------------------------------------------------------------

def test_a_restart_continues_the_series_exactly() -> None:
    """State saved as JSON after 30 sessions and loaded: the next 30 updates are the ones
    an uninterrupted filter gives."""
    pts = noisy(60, step_at=40, step=8.0)
    whole = feed(SeriesFilter(), pts)
    first = SeriesFilter()
    feed(first, pts[:30])
    again = SeriesFilter.from_dict(json.loads(json.dumps(first.to_dict())))
    rest = feed(again, pts[30:])
    assert [u.to_dict() for u in rest] == [u.to_dict() for u in whole[30:]]
    assert any("step" in u.events for u in rest)
    long = SeriesFilter()
    feed(long, noisy(2000, seed=11, sigma=(3.0, 3.0, 5.0)))   # many watched sessions
    assert len(json.dumps(long.to_dict())) < 8000              # the state stays small


def test_a_damaged_filter_state_is_kept_aside_and_the_series_starts_again() -> None:
    from daq.gnss.sessions.series_publish import load_filter

    with pytest.raises(ValueError, match="series state"):
        SeriesFilter.from_dict({"x": [[1.0]], "p": []})
    state = {"series": {"x": [[1.0, 2.0]], "p": [[1.0, 0.0, 1.0]]}}   # one axis only
    f = load_filter(state, SeriesOptions())
    assert f.x == [] and state["series_unreadable"] == {"x": [[1.0, 2.0]],
                                                       "p": [[1.0, 0.0, 1.0]]}


def test_the_same_session_twice_replaces_its_first_update_and_older_ones_are_late() -> None:
    """A session solved again after a crash does not count twice."""
    pts = noisy(10)
    f = SeriesFilter()
    ups = feed(f, pts)
    again = f.add(pts[-1])
    assert again.to_dict() == ups[-1].to_dict()
    late = f.add(pts[3])
    assert late.status == "late" and f.add(pts[-1]).to_dict() == ups[-1].to_dict()


def test_sessions_that_never_came_no_fix_and_bad_statistics_are_events_not_updates() -> None:
    f = SeriesFilter(SeriesOptions(min_ratio=3.0))
    feed(f, noisy(10))
    before = f.to_dict()["x"]
    u = f.add(SessionPoint("P01/k0010", 10 * H, False, "ratio too low"))
    assert u.status == "no_fix" and u.events == ["no_fix"] and u.displacement_mm is not None
    u = f.add(fixed(11, (0.0, 0.2, 0.0), ratio=2.1))
    assert u.status == "rejected" and "session_rejected" in u.events and "ratio" in u.detail
    u = f.add(SessionPoint("P01/k0012", 12 * H, True, "fixed", (0.0, 0.2, 0.0),
                           (9.0, 9.0, 9.0)))
    assert u.status == "rejected" and "sigma" in u.detail
    assert f.to_dict()["x"] == before          # none of them moved the state
    u = f.add(fixed(16, (0.0, 0.3, 0.0)))       # 13, 14, 15 never came
    assert u.missing == 3 and "sessions_missing" in u.events and u.status == "updated"


def test_a_big_jump_is_held_then_dropped_or_taken_as_a_step() -> None:
    pts = noisy(30)
    f = SeriesFilter()
    feed(f, pts[:20])
    held = f.add(fixed(20, (0.0, 60.0, 0.0)))
    assert held.status == "jump" and held.displacement_mm is not None
    assert abs(held.displacement_mm[1]) < 5.0            # the line did not follow
    back = f.add(pts[21])
    assert "outlier" in back.events and back.status == "updated"
    f.add(fixed(22, (0.0, 40.0, 0.0)))
    step = f.add(fixed(23, (0.0, 40.5, 0.0)))
    assert step.status == "step" and step.step_mm is not None and step.step_mm[1] > 35.0
    assert step.displacement_mm is not None and abs(step.displacement_mm[1] - 40.4) < 1.5


def test_pure_noise_gives_few_false_steps_and_a_5mm_step_is_found_within_two_sessions(
        ) -> None:
    """Gaussian 1-h-like noise (1.5 / 1.5 / 2.5 mm), 20 series of 100 sessions: false steps
    are rare (measured and printed); with a 5 mm step at session 60 the step is flagged at
    session 60 or 61 in most series."""
    false = found = 0
    for seed in range(20):
        ups = feed(SeriesFilter(), noisy(100, seed=seed))
        false += sum("step" in u.events for u in ups)
        ups = feed(SeriesFilter(), noisy(100, seed=seed, step_at=60, step=5.0))
        found += any("step" in u.events for u in ups[60:62])
    print(f"false steps: {false} in 2000 noise-only sessions; 5 mm step found within two "
          f"sessions in {found}/20 series")
    assert false <= 10 and found >= 14


# -- the solver thread publishes and keeps it ----------------------------------------------

@pytest.mark.skipif(not F9P.exists(), reason="shared GNSS data not present")
def test_the_solver_publishes_the_series_keeps_it_and_a_restart_continues(
        recorded: Path, tmp_path: Path) -> None:
    cfg = gnss_config()
    state = tmp_path / "state"
    copy_sessions(recorded, state)
    solver, outbox = solver_for(state, cfg)
    solver._solve(cfg.points["P01"], "P01/20220225T1200Z")
    got = {p["quantity"]: p for t, p in rows(outbox) if t == "gnss/P01"}
    check = validator("gnss.json")
    for q in ("filtered_along", "filtered_downstream", "filtered_vertical",
              "velocity_along", "velocity_downstream", "velocity_vertical"):
        check.validate(got[q])
        assert got[q]["quality"] == "good" and got[q]["series"]["status"] == "initialised"
    assert got["filtered_vertical"]["value"] == got["displacement_vertical"]["value"]
    assert got["velocity_vertical"]["unit"] == "mm/day"
    kept = json.loads((state / "gnss_points" / "P01.json").read_text())["series"]
    assert kept["last_session"] == "P01/20220225T1200Z" and len(kept["x"]) == 3
    again, _outbox2 = solver_for(state, cfg)        # a restart loads the filter state
    assert again.points["P01"]["series"] == kept
    again._solve(cfg.points["P01"], "P01/20220225T1200Z")   # solved again: replaced
    hist, bad = read_history(state / "gnss_points", "P01")
    assert bad == 0 and [h["session"] for h in hist] == ["P01/20220225T1200Z"]
    assert hist[0]["status"] == "initialised"


@pytest.mark.skipif(not F9P.exists(), reason="shared GNSS data not present")
def test_a_session_off_the_line_is_published_as_a_held_jump_with_an_event(
        recorded: Path, tmp_path: Path) -> None:
    """The point's series (primed: 20 sessions at +60 mm downstream, the last one just
    before this window) meets the real session: held as a jump, the filtered readings
    are the prediction (suspect), and the event goes to alarm/P01."""
    cfg = gnss_config()
    state = tmp_path / "state"
    copy_sessions(recorded, state)
    f = SeriesFilter(SeriesOptions(interval_days=4 / 24))
    t_mid = (datetime(2022, 2, 25, 14) - datetime(1970, 1, 1)).total_seconds() / 86400
    for k in range(20, 0, -1):
        f.add(SessionPoint(f"P01/old{k:02d}", t_mid - k / 6, True, "fixed",
                           (0.0, 60.0, 0.0), (0.3, 0.3, 0.7)))
    (state / "gnss_points").mkdir(exist_ok=True)
    (state / "gnss_points" / "P01.json").write_text(json.dumps({"series": f.to_dict()}))
    solver, outbox = solver_for(state, cfg)
    solver._solve(cfg.points["P01"], "P01/20220225T1200Z")
    got = rows(outbox)
    filtered = {p["quantity"]: p for t, p in got if p["quantity"].startswith("filtered_")}
    for p in filtered.values():
        validator("gnss.json").validate(p)
        assert p["quality"] == "suspect" and p["flags"] == ["jump"]
    assert filtered["filtered_downstream"]["value"] == pytest.approx(60.0, abs=0.1)
    (event,) = [p for t, p in got if p["channel"] == "P01.alarm.series"]
    validator("reading.json").validate(event)
    assert event["alarm"]["kind"] == "jump" and event["series"]["status"] == "jump"
    assert event["series"]["raw_mm"][1] == pytest.approx(-0.7, abs=0.5)


@pytest.mark.skipif(not F9P.exists(), reason="shared GNSS data not present")
def test_no_session_for_two_intervals_raises_sessions_missing_once(recorded: Path,
                                                                   tmp_path: Path) -> None:
    cfg = gnss_config()                      # 4-h sessions; the solved one ends 16:00 UTC
    state = tmp_path / "state"
    copy_sessions(recorded, state)
    solver, outbox = solver_for(state, cfg)
    solver._solve(cfg.points["P01"], "P01/20220225T1200Z")
    before = rows(outbox)
    n = len(before)
    solver._missing(datetime(2022, 2, 25, 23, 59))   # next session overdue by one only
    assert len(rows(outbox)) == n
    solver._missing(datetime(2022, 2, 26, 0, 1))     # two intervals without a session
    solver._missing(datetime(2022, 2, 26, 4, 1))     # the same gap: no second alarm
    # the outbox lists lane by lane (alarms first): what is new, not what comes last
    (alarm,) = [p for t, p in rows(outbox) if (t, p) not in before]
    validator("reading.json").validate(alarm)
    assert alarm["channel"] == "P01.alarm.series" and alarm["alarm"]["intervals"] == 2
    assert alarm["alarm"]["kind"] == "sessions missing" and alarm["quality"] == "missing"
    again, _ = solver_for(state, cfg)                # remembered across a restart
    again._missing(datetime(2022, 2, 26, 8, 1))
    assert len(rows(outbox)) == n + 1


# -- daq gnss series -------------------------------------------------------------------------

def run(*argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="daq gnss")
    cli_series.register(parser.add_subparsers(dest="gnss_command", required=True))
    args = parser.parse_args(list(argv))
    buf = io.StringIO()
    with redirect_stdout(buf):
        code = int(args.func(args))
    return code, buf.getvalue()


@pytest.fixture
def history(tmp_path: Path) -> Path:
    """48 hourly sessions from 2026-11-20 00:00 UTC: creep, a 6 mm step at 30, one session
    without a fix and two that never came."""
    f = SeriesFilter()
    t0 = 20777.0          # 2026-11-20 in Unix days
    rnd = random.Random(3)
    points = tmp_path / "gnss_points"
    for k in range(48):
        if k in (12, 13):
            continue
        sid = f"P01/202611{20 + k // 24:02d}T{k % 24:02d}00Z"
        if k == 20:
            p = SessionPoint(sid, t0 + k * H, False, "no fix")
        else:
            d = (rnd.gauss(0, 1.0), 0.3 * k + (6.0 if k >= 30 else 0.0) + rnd.gauss(0, 1.0),
                 -0.1 * k + rnd.gauss(0, 2.0))
            p = SessionPoint(sid, t0 + k * H, True, "fixed", d, (0.3, 0.3, 0.7), 9.0, 8.0)
        append_history(points, "P01", f.add(p), "")
    return tmp_path


def test_the_series_command_draws_sessions_line_band_and_events(history: Path) -> None:
    code, out = run("series", "P01", "--state-dir", str(history), "--width", "60")
    assert code == 0
    print(out)
    assert "P01: 46 session(s)" in out
    for name in ("along (mm)", "downstream (mm)", "vertical (mm)"):
        assert name in out
    chart = out.split("downstream (mm)")[1].split("vertical (mm)")[0]
    assert "o" in chart and "*" in chart and ":" in chart
    marks = next(ln for ln in chart.splitlines() if ln.startswith("          ") and
             set(ln.strip()) <= set("SJXx? ") and ln.strip())
    assert "S" in marks and "x" in marks and "?" in marks
    assert "\x1b[" not in out                     # no colours when not on a terminal
    assert "velocity" in out and "mm/day" in out


def test_the_series_command_csv_json_and_since(history: Path) -> None:
    code, out = run("series", "P01", "--state-dir", str(history), "--csv")
    assert code == 0
    table = list(csv.DictReader(io.StringIO(out)))
    assert len(table) == 46 and table[0]["time_utc"] == "2026-11-20T00:00:00Z"
    assert [r["status"] for r in table].count("step") == 1
    assert table[19]["displacement_mm_vertical"] != "" and table[18]["raw_mm_along"] == ""
    code, out = run("series", "P01", "--state-dir", str(history), "--json",
                    "--since", "2026-11-21T00:00")
    assert code == 0
    data = json.loads(out)
    assert len(data) == 24 and data[0]["session"] == "P01/20261121T0000Z"
    assert all(SeriesUpdate.from_dict(d).session == d["session"] for d in data)


def test_the_series_command_refuses_bad_input_clearly(history: Path, capsys) -> None:
    assert run("series", "P01", "--state-dir", str(history), "--since", "last tuesday")[0] == 2
    assert "--since" in capsys.readouterr().err
    assert run("series", "P99", "--state-dir", str(history))[0] == 2
    assert "no series for point 'P99'" in capsys.readouterr().err
    assert run("series", "../x", "--state-dir", str(history))[0] == 2
    with (history / "gnss_points" / "P01.series.jsonl").open("a") as f:
        f.write('{"session": "P01/torn", "t_da')            # a torn last line
    code, _ = run("series", "P01", "--state-dir", str(history), "--json")
    assert code == 0 and "1 unreadable line(s) skipped" in capsys.readouterr().err


# -- configuration ---------------------------------------------------------------------------

def test_the_series_keys_are_checked_and_reach_the_filter() -> None:
    from daq.gnss.sessions.series_publish import options_for

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split("## GNSS", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    cfg = loads("site: s\nrtu: r\nbuses: {}\n" + block, drivers={})
    assert cfg.gnss is not None
    series = cfg.gnss.points["P01"].series
    assert series["confirm"] == 2.5 and series["noise_vertical_mm"] == 2.5
    opts = options_for(1.0, {**series, "gate": 6.0, "noise_horizontal_mm": 2.0})
    assert opts.gate == 6.0 and opts.sigma_floor_mm == (2.0, 2.0, 2.5)
    assert options_for(4.0).sigma_floor_mm == (0.75, 0.75, 1.25)
    bad = block.replace("confirm: 2.5", "confirm: 0.2").replace("gate: 4", "gates: 4")
    with pytest.raises(ConfigError) as err:
        loads("site: s\nrtu: r\nbuses: {}\n" + bad, drivers={})
    text = str(err.value)
    assert "gnss.points.P01.series.confirm" in text and "gnss.points.P01.series.gates" in text
