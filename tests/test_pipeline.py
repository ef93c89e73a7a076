"""The pipeline's last line of defence while the outbox cannot commit, and what it holds
while the processing chains load."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from daq import config
from daq.bus import PollResult
from daq.daemon import Pipeline
from daq.model import ChannelValue, Lane, Quality, Reading, utcnow
from daq.outbox import Outbox
from daq.processing.processor import Processor


def reading(i: int, lane: Lane) -> tuple[str, Reading]:
    return ("data/d", Reading(device="d", channel=f"d/{lane.name}", quantity="q",
                              value=float(i), unit="m", quality=Quality.GOOD, ts=utcnow(),
                              lane=lane))


def test_memory_held_during_failing_commits_is_bounded_raw_first(tmp_path: Path) -> None:
    """Beyond the cap the oldest raw samples go, counted; alarms and results are kept."""
    cfg = config.loads("site: s\nrtu: r\n")
    pipe = Pipeline(cfg, Outbox(tmp_path / "o.db"))
    pipe.MAX_HELD = 10
    held = ([reading(i, Lane.RAW) for i in range(8)] + [reading(i, Lane.ALARM) for i in range(3)]
            + [reading(i, Lane.RESULT) for i in range(2)] + [reading(i, Lane.RAW)
                                                             for i in range(8, 12)])
    kept = pipe._bounded(held)
    assert len(kept) == 10 and pipe.dropped_uncommitted == 7
    assert [r.value for _, r in kept if r.lane == Lane.RAW] == [7.0, 8.0, 9.0, 10.0, 11.0]
    assert sum(1 for _, r in kept if r.lane != Lane.RAW) == 5


SITE = """site: s
rtu: r
buses:
  b:
    protocol: modbus_tcp
    url: 127.0.0.1:1
    devices:
      d:
        driver: modbus
        address: 1
        interval: 1s
        options:
          registers:
            - {name: x, kind: holding, address: 0, type: float32, unit: m, quantity: q}
            - {name: y, kind: holding, address: 2, type: float32, unit: m, quantity: q}
sensors:
  S:
    kind: barometer
    calibration: {id: T-1, date: 2026-01-01}
    inputs: {pressure: d/x}
    unit: hPa
processing:
  chains:
    S.pressure: {summaries: [1min], raw: drop}
"""


def polls(cfg: config.Config, n: int) -> list[PollResult]:
    dev = cfg.devices[0]
    t0 = datetime(2026, 11, 23, 0, 0, 5, tzinfo=UTC)
    return [PollResult(dev, t0 + timedelta(seconds=i),
                       [ChannelValue("x", float(i), "m", Quality.GOOD, "q"),
                        ChannelValue("y", 100.0 + i, "m", Quality.GOOD, "q")], True)
            for i in range(n)]


def test_chained_readings_wait_for_the_processor_the_others_go_at_once(tmp_path: Path) -> None:
    """While the kernels load (Daemon._load_processing), a chained channel's readings are
    held in order and then go through its chain; an unchained one is never held."""
    cfg = config.loads(SITE)
    pipe = Pipeline(cfg, Outbox(tmp_path / "o.db"))
    pipe.chained = frozenset(cfg.processing["chains"])
    early = [pipe._accept(res) for res in polls(cfg, 3)]
    assert [[r.channel for _, r in out] for out in early] == [["d/x", "d/y"]] * 3
    assert pipe.held_for_chains == 3
    pipe.processor = Processor.from_config(cfg)
    assert pipe._release() == []  # raw: drop, the chain has them now
    chain = pipe.processor.chains["S.pressure"]
    assert chain.counters["raw_dropped"] == 3
    assert [w.view()["n_valid"] for w in chain.windows] == [3]
    later = pipe._accept(polls(cfg, 4)[3])
    assert [r.channel for _, r in later] == ["d/x", "d/y"]
    assert chain.counters["raw_dropped"] == 4


def test_chained_readings_pass_unprocessed_when_the_processor_fails_to_load(
        tmp_path: Path) -> None:
    cfg = config.loads(SITE)
    pipe = Pipeline(cfg, Outbox(tmp_path / "o.db"))
    pipe.chained = frozenset(cfg.processing["chains"])
    for res in polls(cfg, 2):
        pipe._accept(res)
    pipe.processing_failed = True  # what Daemon._load_processing sets on an error
    assert [(r.channel, r.value) for _, r in pipe._release()] == [
        ("S.pressure", 0.0), ("S.pressure", 0.1)]  # hPa → kPa
    assert [r.channel for _, r in pipe._accept(polls(cfg, 3)[2])] == ["d/x", "d/y",
                                                                       "S.pressure"]


def test_a_held_chained_channel_still_gets_its_downtime_gap(tmp_path: Path) -> None:
    """The first poll after a start: each channel's range gap record (and seq skip) goes
    out at once, a chained one's too, though its reading waits for the processor."""
    cfg = config.loads(SITE)
    pipe = Pipeline(cfg, Outbox(tmp_path / "o.db"))
    pipe.chained = frozenset(cfg.processing["chains"])
    first = polls(cfg, 1)[0]
    pipe._last_slot = {"d": first.ts.timestamp() - 30.0}  # 29 slots missed
    out = pipe._accept(first)
    gaps = [r for _, r in out if "daemon_not_running" in r.flags]
    assert sorted(r.channel for r in gaps) == ["S.pressure", "d/x", "d/y"]
    assert all(r.extra["gap"]["count"] == 29 for r in gaps)
    assert pipe._skip == {"S.pressure": 29, "d/x": 29, "d/y": 29}
    assert [r.channel for _, r in out if r not in gaps] == ["d/x", "d/y"]
