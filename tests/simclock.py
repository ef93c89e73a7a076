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

Usage: :func:`run_simulated`, or ``clock = SimClock(start, until)``, ``Daemon(cfg,
state_dir=..., clock=clock)``, ``clock.pipeline = daemon.pipeline``, then
``daemon.run_forever()`` in a thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .conftest import wait_for


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


def run_simulated(cfg: Any, clock: SimClock, state_dir: Path, done: Callable[[], Any],
                  what: str) -> None:
    """The in-process daemon on ``cfg`` under ``clock`` until the clock reaches its end and
    ``done()`` holds (what the test waits for at the broker); then an orderly stop."""
    from daq.daemon import Daemon

    daemon = Daemon(cfg, state_dir=str(state_dir), clock=clock)
    clock.pipeline = daemon.pipeline
    errors: list[BaseException] = []

    def main() -> None:
        try:
            daemon.run_forever()
        except BaseException as err:
            errors.append(err)

    t = threading.Thread(target=main, name="daemon")
    t.start()
    try:
        assert clock.reached.wait(300), "the simulated clock did not reach its end"
        wait_for(done, 120, what)
    finally:
        daemon.request_stop()
        t.join(60)
    assert not t.is_alive() and errors == []
