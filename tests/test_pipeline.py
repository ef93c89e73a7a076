"""The pipeline's last line of defence while the outbox cannot commit."""

from __future__ import annotations

from pathlib import Path

from daq import config
from daq.daemon import Pipeline
from daq.model import Lane, Quality, Reading, utcnow
from daq.outbox import Outbox


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
