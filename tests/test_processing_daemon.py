"""The processing chains in the running daemon (``python -m daq run``), end to end.

The water level of the simulated reservoir is polled at 1 Hz from ``sim://`` with spikes on,
despiked and summarised in 10-s windows (the code path of 10-min windows: the length is a
number in the chain). The broker and the daemon are both restarted mid-window, once
orderly (SIGTERM) and once by SIGKILL. Every summary that arrives must equal the
recomputation from the raw samples that arrived in its window, or say it is incomplete.
"""

from __future__ import annotations

import math
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import REPO, Broker, Subscriber, validator, wait_for

pytestmark = pytest.mark.slow

WINDOW = 10.0


def config(path: Path, chains: bool = True) -> Path:
    demo = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    cfg: dict[str, Any] = {
        "site": "e2e", "rtu": "rtu-proc",
        "mqtt": {"reconnect_min": "200ms", "reconnect_max": "1s"},
        "outbox": {"commit_interval": "200ms"},
        "buses": {"sim": {
            "protocol": "modbus_rtu", "url": "sim://proc?seed=3&spikes=0.02",
            "timeout": "200ms",
            "devices": {"level": demo["buses"]["rs485_sim"]["devices"]["level"]},
        }},
        "sensors": {"LEVEL": demo["sensors"]["LEVEL"]},
    }
    if chains:
        cfg["processing"] = {"timezone": "Asia/Shanghai", "day_start": 8, "chains": {
            "LEVEL.level": {"despike": {"window": 7, "threshold": 3, "min_deviation": 0.05},
                            "summaries": ["10s"], "totals": []}}}
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def mid_window() -> None:
    """Sleep until about the middle of a 10-s window."""
    time.sleep((WINDOW / 2 - time.time() % WINDOW) % WINDOW)


def summaries(sub: Subscriber) -> dict[str, dict[str, Any]]:
    out = {}
    for m in sub.payloads("/summary/"):
        validator("summary.json").validate(m)
        for r in m["readings"]:
            out.setdefault(r["window_key"], r)
            assert out[r["window_key"]] == r, "two different summaries of one window"
    return out


def test_summaries_after_broker_and_daemon_restarts_are_correct_or_marked(
        broker: Broker, subscriber: Subscriber, run_daemon: Any, tmp_path: Path) -> None:
    cfg = config(tmp_path / "c.yaml")
    state = tmp_path / "state"
    d = run_daemon(cfg, broker.url, state)
    wait_for(lambda: len(summaries(subscriber)) >= 2, 60, "the first summaries")
    # 1. broker down, then an orderly daemon restart, both mid-window
    mid_window()
    broker.stop()
    time.sleep(1.5)
    assert d.stop() == 0
    time.sleep(1.0)
    d = run_daemon(cfg, broker.url, state)
    time.sleep(2.0)
    broker.start()
    wait_for(subscriber.connected.is_set, 15, "the subscriber to reconnect")
    n = len(summaries(subscriber))
    wait_for(lambda: len(summaries(subscriber)) >= n + 2, 60, "summaries after restart 1")
    # 2. broker down and the daemon killed mid-window
    mid_window()
    broker.stop()
    time.sleep(1.0)
    d.kill()
    d = run_daemon(cfg, broker.url, state)
    time.sleep(2.0)
    broker.start()
    wait_for(subscriber.connected.is_set, 15, "the subscriber to reconnect")
    n = len(summaries(subscriber))
    wait_for(lambda: len(summaries(subscriber)) >= n + 2, 60, "summaries after restart 2")
    st = d.status() or {}
    assert st["processing"]["chains"]["LEVEL.level"]["windows"]["10s"]["start"]
    assert d.stop() == 0
    time.sleep(0.5)

    raw: dict[int, dict[str, Any]] = {}
    for r in subscriber.readings():
        if r["channel"] == "LEVEL.level":
            raw[r["seq"]] = r
    got = summaries(subscriber)
    checked = good = 0
    for key, s in got.items():
        start, end = s["window"]["start"], s["window"]["end"]
        arrived = [r["value"] for r in raw.values() if start <= r["ts"] < end
                   and r["value"] is not None and r["quality"] in ("good", "suspect")]
        assert s["n_valid"] <= len(arrived), key
        complete = "incomplete" not in s.get("flags", ())
        if complete:
            assert s["n_valid"] == s["n_expected"] == len(arrived), key
        if s["n_valid"] == len(arrived) and arrived:
            checked += 1
            assert s["mean"] == pytest.approx(math.fsum(arrived) / len(arrived), abs=1e-9)
            assert s["min"] == min(arrived) and s["max"] == max(arrived)
        if s["quality"] == "good" and complete:
            good += 1
        if s["quality"] == "good":
            assert s["completeness"] >= 0.9 and not {"restart", "clock_step"} & set(
                s.get("flags", ()))
    assert good >= 3 and checked >= good
    flags = {f for s in got.values() for f in s.get("flags", ())}
    assert {"incomplete", "partial_start"} <= flags
    despiked = [r for r in raw.values() if "despiked" in r.get("flags", ())]
    assert all(abs(r["value"] - r["raw"]["original"]) > 0.4 for r in despiked)
    out = subprocess.run([sys.executable, "-m", "daq", "status", "--state-dir", str(state),
                          "--sensor", "LEVEL"], capture_output=True, text=True, cwd=REPO)
    assert "LEVEL.level/10s" in out.stdout


def test_no_chain_no_numba(tmp_path: Path) -> None:
    """A daemon with no chain configured does not import Numba (NumPy comes in today with
    the in-tree NMEA driver's module, which driver discovery loads: not this package's)."""
    code = ("import sys; from daq.config import load; from daq.daemon import Daemon; "
            f"cfg = load({str(config(tmp_path / 'c.yaml', chains=False))!r}); "
            f"Daemon(cfg, state_dir={str(tmp_path / 's')!r}); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'numba' "
            "or m.startswith('daq.processing.') and not m.endswith('.config')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"
    cfg = config(tmp_path / "c2.yaml")
    code = ("import sys; from daq.config import load; from daq.daemon import Daemon; "
            f"cfg = load({str(cfg)!r}); Daemon(cfg, state_dir={str(tmp_path / 's2')!r}); "
            "print('numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, check=True)
    assert out.stdout.strip().endswith("True")  # and compiled before the first poll
    assert "processing_kernels_ready" in out.stdout


def replay(raw: dict[int, dict[str, Any]], chain: dict[str, Any],
           interval: float) -> list[tuple[str, Any]]:
    """The raw level readings that arrived (by seq), originals of despiked ones restored,
    through a Processor with ``chain`` as fast as it takes them."""
    from daq.model import Quality, Reading, parse_ts
    from daq.processing import Processor
    from daq.schema import parse_duration

    spec = {**chain, **{k: [parse_duration(p) for p in chain.get(k, [])]
                        for k in ("summaries", "totals")}}
    p = Processor({"timezone": "Asia/Shanghai", "day_start": 8,
                   "chains": {"LEVEL.level": spec}}, {"LEVEL.level": interval})
    out = []
    for _, r in sorted(raw.items()):
        flags = tuple(f for f in r.get("flags", ()) if f != "despiked")
        despiked = "despiked" in r.get("flags", ())
        original = dict(r.get("raw") or {})
        value = original.pop("original") if despiked else r["value"]
        out += p.feed([("data/level", Reading(
            device=r["device"], channel=r["channel"], quantity=r["quantity"], value=value,
            unit=r["unit"], quality=Quality.GOOD if despiked else Quality(r["quality"]),
            ts=parse_ts(r["ts"]), sensor=r.get("sensor"), calibration=r.get("calibration"),
            flags=flags, raw=original or None))])
    return out + p.flush()  # as the daemon's stop: what the despiker holds leaves


def level_readings(sub: Subscriber, end: str) -> dict[int, dict[str, Any]]:
    """Every raw level reading from the first (seq 1) on, once one at or after ``end``
    arrived (empty until then)."""
    raw = {r["seq"]: r for r in sub.readings() if r["channel"] == "LEVEL.level"}
    done = sorted(raw) == list(range(1, len(raw) + 1)) and any(
        r["ts"] >= end for r in raw.values())
    return raw if done else {}


def same_summaries(got: dict[str, dict[str, Any]], out: list[tuple[str, Any]]) -> None:
    replayed = {s.extra["window_key"]: s.to_payload(0) for t, s in out
                if t.startswith("summary/")}
    assert set(got) <= set(replayed)
    for key, s in got.items():
        assert {k: v for k, v in s.items() if k != "seq"} == {
            k: v for k, v in replayed[key].items() if k != "seq"}, key


def test_real_time_summaries_equal_an_accelerated_replay_of_the_same_samples(
        broker: Broker, subscriber: Subscriber, run_daemon: Any, tmp_path: Path) -> None:
    """The chains depend on the samples' times and order only, never on the wall clock:
    what the daemon summarised in real time (1 Hz level with spikes, despiked, 3-s
    windows) is what a Processor gives when the same samples (as they arrived at the
    broker, originals of despiked ones restored) are replayed as fast as it can take them.
    The next test does the same with a simulated day run by the daemon under a simulated
    clock; ``test_processing_chain.py`` replays a simulated day and compares it with the
    batch kernels."""
    from daq.model import format_ts, parse_ts

    chain = {"despike": {"window": 7, "threshold": 3, "min_deviation": 0.05},
             "summaries": ["3s"], "totals": ["3s"]}
    cfg = config(tmp_path / "c.yaml")
    doc = yaml.safe_load(cfg.read_text())
    doc["processing"]["chains"]["LEVEL.level"] = chain
    doc["buses"]["sim"]["url"] = "sim://replay?seed=5&spikes=0.1"
    cfg.write_text(yaml.safe_dump(doc, sort_keys=False))
    d = run_daemon(cfg, broker.url, tmp_path / "state")
    got = wait_for(lambda: (s := summaries(subscriber)) and len(s) >= 10 and s, 90,
                   "five windows summarised")
    # the despiker holds k = 3 samples back: the last window closes 3 s after its end
    end = format_ts(parse_ts(max(s["window"]["end"] for s in got.values()))
                    + timedelta(seconds=4))
    raw = wait_for(lambda: level_readings(subscriber, end), 60,
                   "the raw readings of those windows")
    assert d.stop() == 0
    assert {"partial_start"} <= {f for s in got.values() for f in s.get("flags", ())}
    same_summaries(got, replay(raw, chain, 1.0))


def test_a_simulated_day_through_the_daemon_equals_its_replay(
        broker: Broker, subscriber: Subscriber, tmp_path: Path) -> None:
    """One simulated day (and an hour around it) of the reservoir's level every 10 s,
    time-accelerated: the in-process daemon polls the sim:// line under a simulated clock
    (tests/simclock.py) through its Modbus master, level-gauge driver, sensor layer and
    chains. Its 10-min summaries and the day's report, as they reach the broker, equal those
    of the same samples replayed through a Processor, as for the real-time run above."""
    import serial

    import daq.sim
    from daq.config import loads
    from daq.model import format_ts

    from .simclock import SimClock, run_simulated

    day = datetime.fromisoformat("2026-11-23T08:00:00+08:00").timestamp()
    clock = SimClock(day - 1800.5, day + 86400 + 600.5)
    url = "sim://simday?seed=8&spikes=0.002"
    serial.serial_for_url(url).close()  # the line the daemon opens: on simulated time
    line = daq.sim.line("simday")
    assert line is not None
    line.clock = clock.time
    chain = {"despike": {"window": 7, "threshold": 3, "min_deviation": 0.05},
             "summaries": ["10min"]}
    doc = yaml.safe_load(config(tmp_path / "c.yaml").read_text())
    doc["buses"]["sim"].update(url=url, baudrate=115200, frame_gap=0)  # no wire time
    doc["buses"]["sim"]["devices"]["level"]["interval"] = "10s"
    doc["processing"]["chains"]["LEVEL.level"] = chain
    doc["mqtt"]["url"] = broker.url
    doc["outbox"]["sync_interval"] = "200ms"
    cfg = loads(yaml.safe_dump(doc, sort_keys=False), source="c.yaml")
    date = "2026-11-23"

    def reports() -> dict[str, dict[str, Any]]:
        return {r["report"]["date"]: r["report"] for m in subscriber.payloads("/report/")
                for r in m["readings"]}

    # the despiker holds the last 3 samples (30 s) until the stop
    held = format_ts(datetime.fromtimestamp(day + 86400 + 600 - 30, UTC))
    run_simulated(cfg, clock, tmp_path / "state",
                  lambda: date in reports() and level_readings(subscriber, held),
                  "the day's report and the raw readings")
    end = format_ts(datetime.fromtimestamp(day + 86400 + 600, UTC))
    raw = wait_for(lambda: level_readings(subscriber, end), 10,
                   "the last raw readings, at the stop")
    assert len(raw) == (86400 + 2400) // 10 + 1
    got = summaries(subscriber)
    assert len(got) >= 3 + 144
    out = replay(raw, chain, 10.0)
    same_summaries(got, out)
    mine = reports()[date]
    (theirs,) = [r.extra["report"] for t, r in out if t == "report/daily"
                 and r.extra["report"]["date"] == date]
    assert mine["channels"] == theirs["channels"] and mine["expected"] == 144 * 60
    assert (mine["missing"], mine["fr"]) == (theirs["missing"], theirs["fr"])
