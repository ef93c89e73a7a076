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
    """A daemon with no chain configured imports neither Numba nor NumPy (the NMEA
    driver's session statistics are plain Python); with chains, the kernels load in the
    background once the daemon starts, and readings of chained channels wait for them."""
    code = ("import sys; from daq.config import load; from daq.daemon import Daemon; "
            f"cfg = load({str(config(tmp_path / 'c.yaml', chains=False))!r}); "
            f"Daemon(cfg, state_dir={str(tmp_path / 's')!r}); "
            "import daq_drivers.nmea; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('numba', 'numpy') "
            "or m.startswith('daq.processing.') and not m.endswith('.config')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"
    cfg = config(tmp_path / "c2.yaml")
    doc = yaml.safe_load(cfg.read_text())
    doc.pop("mqtt")  # no broker: readings stay in the outbox
    cfg.write_text(yaml.safe_dump(doc))
    code = ("import sys; from daq.config import load; from daq.daemon import Daemon; "
            f"d = Daemon(load({str(cfg)!r}), state_dir={str(tmp_path / 's2')!r}); "
            "print('built', 'numba' in sys.modules); d.start(); ok = d.wait_processing(300); "
            "print('loaded', ok, d.processor is not None, 'numba' in sys.modules, "
            "'scipy.linalg' in sys.modules); d.request_stop(); d.shutdown()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, check=True)
    lines = out.stdout.splitlines()
    assert "built False" in lines  # nothing of it while the daemon is built
    assert "loaded True True True False" in lines  # SciPy stayed out (loader.py)
    assert "processing_kernels_ready" in out.stdout
