"""The processing chain of one channel, in process: despiking against the simulator's
spikes and a real step, summaries that are correct or say they are not (restart, crash,
clock steps, late samples), raw policy, and the payloads' schemas.

Windows here are 1 min of 1 s samples (and 10 s): the same code path as 10-min windows,
whose length is only a number in the chain."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from daq.model import Lane, Quality, Reading
from daq.processing import Processor
from daq.sim import Reservoir
from daq.sim.reservoir import SPIKES

from .conftest import validator

T0 = 1_794_988_800.0  # 2026-11-18T08:00:00Z


def reading(t: float, v: float | None, q: Quality = Quality.GOOD,
            channel: str = "L1.level") -> tuple[str, Reading]:
    return ("data/level", Reading(device="level", channel=channel, quantity="level",
                                  value=v, unit="m", quality=q,
                                  ts=datetime.fromtimestamp(t, UTC), sensor="L1"))


def processor(chain: dict[str, Any], tmp: Path | None = None,
              interval: float = 1.0, now: float | None = None) -> Processor:
    return Processor({"timezone": "UTC", "chains": {"L1.level": chain}},
                     {"L1.level": interval}, None if tmp is None else tmp / "processing.json",
                     now=now)


def summaries(items: list[tuple[str, Reading]]) -> list[Reading]:
    return [r for t, r in items if t.startswith("summary/")]


def raws(items: list[tuple[str, Reading]]) -> list[Reading]:
    return [r for t, r in items if t.startswith("data/")]


def test_simulated_spikes_are_removed_and_a_gate_opening_step_passes_undistorted():
    res = Reservoir(seed=4)
    n = 1800
    t = T0 + np.arange(n)
    step_at = T0 + 900  # gate opening: +0.30 m in 2 s
    truth = np.array([res.truth(x).level for x in t])
    truth += np.where(t >= step_at + 2, 0.30, np.where(t >= step_at + 1, 0.15, 0.0))
    spiked = np.array([res.spike("level", x, 0.01) for x in t])
    spiked[895:906] = False  # keep the step's neighbourhood clean to judge it alone
    x = truth + np.where(spiked, SPIKES["level"], 0.0)
    # min_deviation: 10 × the level's noise; a spike is half a metre (SPIKES["level"])
    p = processor({"despike": {"window": 7, "threshold": 3, "min_deviation": 0.01},
                   "summaries": [60.0]})
    out = []
    for ti, xi in zip(t, x, strict=True):
        out += p.feed([reading(ti, float(xi))])
    out += p.flush()
    raw = raws(out)
    assert len(raw) == n and [r.ts.timestamp() for r in raw] == list(t)
    flagged = np.array(["despiked" in r.flags for r in raw])
    assert spiked.sum() >= 10
    assert np.array_equal(flagged & spiked, spiked)  # every spike is caught
    cleaned = np.array([r.value for r in raw])
    assert np.abs(cleaned[spiked] - truth[spiked]).max() < 0.01  # replaced near the truth
    assert raw[int(np.flatnonzero(spiked)[0])].raw == {"original": pytest.approx(
        x[spiked][0])}
    # the step: no sample around it touched, every value exactly as measured
    around = slice(890, 912)
    assert not flagged[around].any()
    assert np.array_equal(cleaned[around], x[around])
    assert cleaned[905] - cleaned[895] == pytest.approx(0.30, abs=0.01)
    assert not (flagged & ~spiked).any()  # no false alarm on plain noise
    assert np.abs(cleaned - truth).max() < 0.01


def test_summary_equals_a_recomputation_and_validates():
    p = processor({"summaries": [60.0], "totals": [60.0]})
    out = []
    for i in range(180):
        q = Quality.MISSING if i in (70, 71) else Quality.GOOD
        out += p.feed([reading(T0 + i, None if q == Quality.MISSING else 1.0 + i, q)])
    s = summaries(out)
    assert [r.extra["window"]["start"] for r in s] == [
        "2026-11-18T08:00:00.000Z", "2026-11-18T08:00:00.000Z",
        "2026-11-18T08:01:00.000Z", "2026-11-18T08:01:00.000Z"]
    first, total0, second, total1 = s
    assert first.quality == Quality.GOOD and first.lane == Lane.RESULT
    assert first.value == pytest.approx(np.mean(1.0 + np.arange(60)))
    assert first.extra["max_ts"] == "2026-11-18T08:00:59.000Z"
    assert total0.value == pytest.approx(np.sum(1.0 + np.arange(60)))
    assert second.extra["n_valid"] == 58 and second.extra["n_invalid"] == 2
    assert second.flags == ("incomplete",) and second.quality == Quality.GOOD
    assert total1.value is None and total1.quality == Quality.BAD
    assert total1.extra["sum_valid"] == pytest.approx(sum(1.0 + i for i in range(60, 120)
                                                          if i not in (70, 71)))
    v = validator("summary.json")
    for r in s:
        v.validate({"v": 1, "site": "s", "rtu": "r", "readings": [r.to_payload(1)]})


def test_a_restart_mid_window_resumes_from_saved_state(tmp_path: Path):
    p = processor({"summaries": [60.0]}, tmp_path)
    for i in range(30):
        p.feed([reading(T0 + i, float(i))])
    p.flush()  # a stop: the window state is saved
    q = processor({"summaries": [60.0]}, tmp_path, now=T0 + 34)
    out = []
    for i in range(35, 61):  # five samples lost while it restarted
        out += q.feed([reading(T0 + i, float(i))])
    (s,) = summaries(out)
    arrived = [float(i) for i in list(range(30)) + list(range(35, 60))]
    assert s.extra["n_valid"] == len(arrived) and s.value == pytest.approx(np.mean(arrived))
    assert set(s.flags) == {"partial_start", "resumed", "incomplete"}


def test_a_crash_publishes_the_cut_window_marked_incomplete(tmp_path: Path):
    q = processor({"summaries": [60.0]}, tmp_path)  # no saved state: a crash lost it
    out = []
    for i in range(40, 121):
        out += q.feed([reading(T0 + i, float(i))])
    first, second = summaries(out)
    assert "partial_start" in first.flags and "incomplete" in first.flags
    assert first.quality == Quality.SUSPECT  # 20 of 60 samples: below min_completeness
    assert first.value == pytest.approx(np.mean(np.arange(40, 60)))
    assert second.quality == Quality.GOOD and second.flags == ()


def test_a_window_that_ended_while_stopped_is_published_at_start(tmp_path: Path):
    p = processor({"summaries": [10.0]}, tmp_path)
    for i in range(5):
        p.feed([reading(T0 + i, 2.0)])
    p.flush()
    q = processor({"summaries": [10.0]}, tmp_path, now=T0 + 30)
    (s,) = summaries(q.feed([]))
    assert "restart" in s.flags and s.quality == Quality.SUSPECT and s.value == 2.0


def test_late_samples_and_clock_steps_never_give_a_wrong_good_value():
    p = processor({"summaries": [10.0]})
    out = []
    for i in range(12):
        out += p.feed([reading(T0 + i, 1.0)])
    out += p.feed([reading(T0 + 5, 99.0)])  # late: its window was published
    out += p.feed([reading(T0 + 3, 99.0)])
    for i in range(12, 25):
        out += p.feed([reading(T0 + i, 1.0)])
    s = summaries(out)
    assert s[1].value == 1.0 and s[1].extra["n_late"] == 2
    # the clock steps back an hour: the open window is closed, marked
    out = p.feed([reading(T0 - 3600, 1.0)])
    (step,) = summaries(out)
    assert "clock_step" in step.flags and step.quality == Quality.SUSPECT
    # and forward an hour: the windows in between are counted as lapses
    out = []
    for i in range(12):
        out += p.feed([reading(T0 - 3600 + i, 1.0)])
    out += p.feed([reading(T0 + 7200, 1.0)])
    s = summaries(out)
    assert s[-1].extra["lapses"] == 0 and "clock_step" in s[0].flags
    later = summaries(p.feed([reading(T0 + 7215, 1.0)]))
    assert later[0].extra["lapses"] == (7200 - (-3600 + 20)) // 10  # empty windows skipped


@pytest.mark.parametrize(("policy", "kept"), [("keep", 60), ("decimate", 6), ("drop", 0)])
def test_raw_samples_kept_decimated_or_dropped(policy, kept):
    p = processor({"summaries": [60.0], "raw": policy, "decimate": 10})
    out = []
    for i in range(60):
        out += p.feed([reading(T0 + i, 1.0)])
    out += p.feed([reading(T0 + 60, None, Quality.MISSING)])  # a gap record is always kept
    assert len(raws(out)) == kept + 1


def test_daily_report_counts_gaps_skipped_slots_and_downtime(tmp_path: Path):
    p = Processor({"timezone": "UTC", "day_start": 8,
                   "chains": {"L1.level": {"summaries": [600.0]}}},
                  {"L1.level": 60.0}, tmp_path / "processing.json")
    day = T0  # 08:00 UTC: a day start
    out = []
    for i in range(1440):
        t = day + 60 * i
        if 600 <= i < 660:
            continue  # the daemon was not running for an hour: nothing at all
        q = Quality.MISSING if i % 100 == 0 else Quality.GOOD
        out += p.feed([reading(t, None if q == Quality.MISSING else 1.0, q)])
        if i % 2 == 0:
            p.tick({"level": not (300 <= i < 310)}, now=t)
    out += p.feed([reading(day + 86400, 1.0)])  # the next day's first sample
    (rep,) = [r for t, r in out if t == "report/daily"]
    body = rep.extra["report"]
    ch = body["channels"]["L1.level"]
    gaps = sum(1 for i in range(1440) if i % 100 == 0 and not 600 <= i < 660)
    assert ch["expected"] == 1440 and ch["gaps"] == gaps
    assert ch["missing"] == 60 + gaps and rep.value == pytest.approx((60 + gaps) / 1440)
    unit = body["units"]["level"]
    assert unit["failures"] == 1 and unit["mtbf_h"] == pytest.approx(unit["up_s"] / 3600)
    assert body["date"] == "2026-11-18"
    validator("daily_report.json").validate(
        {"v": 1, "site": "s", "rtu": "r", "readings": [rep.to_payload(1)]})
    json.dumps(body)


def test_after_a_crash_a_window_published_before_it_is_not_published_again(tmp_path: Path):
    p = processor({"summaries": [10.0]}, tmp_path)
    for i in range(5):
        p.feed([reading(T0 + i, 2.0)])
    p.save()  # the periodic save
    published = summaries([x for i in range(5, 13) for x in p.feed([reading(T0 + i, 2.0)])])
    assert len(published) == 1  # ... then SIGKILL
    q = processor({"summaries": [10.0]}, tmp_path, now=T0 + 14)
    assert summaries(q.feed([])) == []


def test_a_simulated_day_replayed_at_full_speed_equals_the_batch_kernels():
    """86 400 one-second level samples of the simulated reservoir (with spikes and 1 %
    gap records) fed one reading at a time, as the daemon does, give exactly the summaries
    the batch kernels compute over the whole day: Hampel, then 10-min window statistics."""
    from daq.processing import hampel, windowed_stats

    res = Reservoir(seed=9)
    t = T0 + np.arange(86400, dtype=float)
    x = np.array([res.level_smooth(s) + res.noise(int(s)) for s in t])
    x += np.array([SPIKES["level"] if res.spike("level", s, 0.001) else 0.0 for s in t])
    gaps = np.random.default_rng(9).random(86400) < 0.01
    x[gaps] = np.nan
    p = processor({"despike": {"window": 7, "threshold": 3, "min_deviation": 0.05},
                   "summaries": [600.0]})
    out = []
    for ti, xi in zip(t, x, strict=True):
        q = Quality.MISSING if np.isnan(xi) else Quality.GOOD
        out += p.feed([reading(ti, None if q == Quality.MISSING else float(xi), q)])
    for i in range(4):  # the next day's first samples close the last window, 3 s later
        out += p.feed([reading(T0 + 86400 + i, 82.0)])
    got = summaries(out)
    assert len(got) == 144
    cleaned, flags = hampel(x, 3, 3.0, 0.05)
    ref = windowed_stats(t, cleaned, T0, 600.0, 144)
    for s, r in zip(got, ref, strict=True):
        assert s.extra["n_valid"] == r.count and s.extra["mean"] == r.mean
        assert (s.extra["min"], s.extra["max"]) == (r.min, r.max)
        assert s.extra["std_pop"] == r.std_pop and s.extra["last"] == r.last
    assert sum(s.extra["n_despiked"] for s in got) == int(flags.sum()) > 30


def _reports(items: list[tuple[str, Reading]]) -> list[dict[str, Any]]:
    v = validator("daily_report.json")
    out = []
    for t, r in items:
        if t == "report/daily":
            v.validate({"v": 1, "site": "s", "rtu": "r", "readings": [r.to_payload(1)]})
            out.append(r.extra["report"] | {"value": r.value})
    return out


@pytest.mark.parametrize("clean", [True, False])
def test_whole_days_the_daemon_was_down_are_reported_missing_not_skipped(
        tmp_path: Path, clean: bool):
    """The daemon stops (orderly, or killed after a periodic save) six hours into the
    hydrological day of 2026-11-18 (08:00 Beijing time = 00:00 UTC) and starts again
    three days later: the report of the 18th (6 of 24 hours acquired), then those of the
    19th and 20th, FR 100 % and online rate 0, before the 21st goes on."""
    d0 = T0 - 8 * 3600  # 2026-11-18T00:00Z, 08:00 in Asia/Shanghai
    spec = {"timezone": "Asia/Shanghai", "day_start": 8,
            "chains": {"L1.level": {"summaries": [600.0]}}}
    state = tmp_path / "processing.json"
    p = Processor(spec, {"L1.level": 60.0}, state, now=d0)
    for i in range(360):
        p.feed([reading(d0 + 60 * i, 1.0)])
        p.tick({"level": True}, now=d0 + 60 * i + 1)
    if clean:
        p.flush()
    else:
        p.save()
    restart = d0 + 3 * 86400 + 5 * 3600  # 2026-11-21 13:00 local
    q = Processor(spec, {"L1.level": 60.0}, state, now=restart)
    reps = _reports(q.take_queued())
    assert [r["date"] for r in reps] == ["2026-11-18", "2026-11-19", "2026-11-20"]
    first, *down = reps
    assert first["channels"]["L1.level"]["valid"] == 360
    assert first["value"] == pytest.approx(1080 / 1440)
    for r in down:
        ch = r["channels"]["L1.level"]
        assert (ch["expected"], ch["valid"], ch["missing"], ch["fr"]) == (1440, 0, 1440, 1.0)
        assert r["value"] == 1.0 and r["fr"] == 1.0
        assert (r["covered_s"], r["running_s"], r["not_running_s"]) == (86400, 0, 86400)
        assert r["units"]["level"]["online_rate"] == 0.0
        assert r["units"]["level"]["mtbf_h"] is None and "days" not in r
    assert down[0]["start"] == "2026-11-19T00:00:00Z" and down[1]["end"] == "2026-11-21T00:00:00Z"
    # the day under way is counted from the restart, and reported in turn
    out = q.feed([reading(restart, 1.0)])
    assert _reports(out) == []
    rolled = _reports(q.feed([reading(d0 + 4 * 86400, 1.0)]))
    assert [r["date"] for r in rolled] == ["2026-11-21"]


def test_a_long_outage_gives_31_daily_reports_and_one_range_record(tmp_path: Path):
    """Down 39 whole days: the 31 most recent each get a report, the 8 before them one
    range record; together they cover every day, with no hole and no overlap."""
    d0 = T0 - 8 * 3600
    spec = {"timezone": "Asia/Shanghai", "day_start": 8,
            "chains": {"L1.level": {"summaries": [600.0]}}}
    state = tmp_path / "processing.json"
    p = Processor(spec, {"L1.level": 60.0}, state, now=d0)
    p.feed([reading(d0, 1.0)])
    p.tick({"level": True}, now=d0 + 1)
    p.flush()
    restart = d0 + 40 * 86400 + 600
    reps = _reports(Processor(spec, {"L1.level": 60.0}, state, now=restart).take_queued())
    assert len(reps) == 1 + 1 + 31
    last, rng, *daily = reps
    assert last["date"] == "2026-11-18"
    assert (rng["date"], rng["last_date"], rng["days"]) == ("2026-11-19", "2026-11-26", 8)
    assert rng["channels"]["L1.level"]["expected"] == 8 * 1440 and rng["fr"] == 1.0
    assert rng["units"]["level"]["online_rate"] == 0.0
    assert (daily[0]["date"], daily[-1]["date"]) == ("2026-11-27", "2026-12-27")
    edges = [(last["start"], last["end"]), (rng["start"], rng["end"])] + [
        (r["start"], r["end"]) for r in daily]
    assert all(a[1] == b[0] for a, b in itertools.pairwise(edges))
    assert edges[-1][1] == "2026-12-28T00:00:00Z"
    assert all(r["fr"] == 1.0 and "days" not in r for r in daily)
