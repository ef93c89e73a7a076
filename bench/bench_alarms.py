"""Cost of the alarm hook and the field-calibration correction on the commit path.

Commits the same batches of readings (200 per commit, 50 channels) into an outbox, once
plain (the baseline, in the same run) and once with the alarm service watching (one H
rule per channel) and the field-calibration wrapper in front, as ``daq run`` has them.
Reports the ratio of the times (best of 3). Run: ``python bench/bench_alarms.py [COMMITS]``.
Numbers, not pass/fail.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from daq.alarms.alarm_config import AlarmsConfig, Rule
from daq.alarms.service import AlarmService
from daq.fieldcal.service import FieldCalibration
from daq.model import Quality, Reading, utcnow
from daq.outbox import Outbox


def run(commits: int, hooked: bool) -> float:
    ts = utcnow()
    items = [("data/d", Reading(device="d", channel=f"d/ch{i % 50}", quantity="water_level",
                                value=1.0, unit="m", quality=Quality.GOOD, ts=ts))
             for i in range(200)]
    with tempfile.TemporaryDirectory() as d:
        box = Outbox(Path(d) / "outbox.sqlite3")
        svc = fc = None
        if hooked:
            cfg = AlarmsConfig(rules=tuple(
                Rule(id=f"d/ch{i}/water_level.h", sensor=f"d/ch{i}", quantity="water_level",
                     kind="h", severity=700, limit=10.0) for i in range(50)))
            svc = AlarmService(cfg, box)
            svc.watch(box)
            fc = FieldCalibration(box)
            fc.wrap(box)
        t0 = time.perf_counter()
        for _ in range(commits):
            box.add(items)
        took = time.perf_counter() - t0
        if svc is not None and fc is not None:
            svc.stop()
            fc.close()
        box.close()
    return took


def main() -> None:
    commits = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    base = min(run(commits, False) for _ in range(3))
    hooked = min(run(commits, True) for _ in range(3))
    n = commits * 200
    print(f"{n} readings in {commits} commits: plain {base:.3f} s "
          f"({n / base:,.0f}/s), hooked {hooked:.3f} s; ratio hooked/plain {hooked / base:.2f}")


if __name__ == "__main__":
    main()
