"""A simulated clock for the in-process daemon: days of acquisition in seconds, and no race
with the real clock.

Time stands still while anything is done and jumps, when the bus worker waits for its next
poll, straight to that poll's instant, once the pipeline has taken every poll so far
through the processing chains (``Pipeline.queue.join()``). So a poll lands exactly on its
slot (no jitter, no skipped slot on a loaded machine) and the day roll-over the supervisor
sees never runs ahead of the samples. It never jumps past ``until``: there the worker waits
in real time and :attr:`reached` is set, and the test stops the daemon.

The supervisor waits in real time (once a second): it sees the simulated time advance by
far more than a tick between its looks, so the report's running and up times stay 0 in a
simulated run (completeness counts no pause longer than 30 s as running); FR, the counts
and the windows depend on the samples' times only.

Usage: ``clock = SimClock(start, until)``, ``Daemon(cfg, state_dir=..., clock=clock)``,
``clock.pipeline = daemon.pipeline``, then ``daemon.run_forever()`` in a thread.
"""

from __future__ import annotations

import threading
from typing import Any


class SimClock:
    def __init__(self, start: float, until: float) -> None:
        self.t = float(start)
        self.until = float(until)
        self.pipeline: Any = None
        self.reached = threading.Event()

    def time(self) -> float:
        return self.t

    def wait_until(self, event: threading.Event, when: float, at_most: float) -> bool:
        if self.pipeline is not None:
            self.pipeline.queue.join()
        if event.is_set():
            return True
        if when > self.until:
            self.reached.set()
            return event.wait(at_most)
        self.t = max(self.t, when)
        return False
