"""Gap records for the time the daemon did not run (a stop, a crash, a kill, a power cut).

The outbox keeps each device's last committed poll instant. The first poll after a start
is compared with it: every slot in between was due and not acquired, so each channel of
that poll gets one *range* gap record (``gap``: first and last missed slot, their count;
schema ``schemas/gap.json``) before its reading, and the channel's seq skips as many
numbers as there were slots. The skip is what keeps a key unique even when the state
directory was rolled back (a restored copy): the lost run used at most one seq per slot.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime

from .model import Quality, Reading, format_ts

REASON = "daemon_not_running"


def missed_slots(last_ts: float, ts: float, interval: float) -> tuple[int, float, float]:
    """Slots strictly between the one of ``last_ts`` and the one of ``ts``: their count
    and the first and last missed slot instants (epoch seconds)."""
    last_slot = math.floor(last_ts / interval + 1e-9)
    this_slot = math.floor(ts / interval + 1e-9)
    count = this_slot - last_slot - 1
    return max(count, 0), (last_slot + 1) * interval, (this_slot - 1) * interval


def downtime_gaps(last_ts: float | None, ts: datetime, interval: float,
                  readings: list[tuple[str, Reading]]
                  ) -> tuple[list[tuple[str, Reading]], dict[str, int]]:
    """The range gap records for the first poll after a start, and the seq skips."""
    if last_ts is None:
        return [], {}
    count, first, last = missed_slots(last_ts, ts.timestamp(), interval)
    if count <= 0:
        return [], {}
    start = datetime.fromtimestamp(first, UTC)
    gap = {"first": format_ts(start), "last": format_ts(datetime.fromtimestamp(last, UTC)),
           "count": count, "interval_s": interval, "reason": REASON}
    out, skip = [], {}
    for topic, r in readings:
        if r.channel in skip:
            continue
        out.append((topic, dataclasses.replace(
            r, value=None, quality=Quality.MISSING, ts=start, flags=(REASON,), raw=None,
            calibration=None, extra={**r.extra, "gap": gap})))
        skip[r.channel] = count
    return out, skip
