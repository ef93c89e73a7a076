"""Requests run on a bus worker's own thread, between its scheduled polls (``daq read``)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import wait
from typing import Any

import pytest

from daq.errors import NoResponse
from daq.model import ChannelValue
from daq.readout import PollFailed, probe

from .test_scheduler import Counter, device, worker


class Line(Counter):
    """Takes 30 ms per transaction and notices when a second one starts meanwhile."""

    busy = threading.Lock()
    collisions = 0

    def poll(self, link: Any) -> list[ChannelValue]:
        if not Line.busy.acquire(blocking=False):
            Line.collisions += 1
            raise NoResponse("collision")
        try:
            time.sleep(0.03)
            return super().poll(link)
        finally:
            Line.busy.release()


def test_requests_never_overlap_scheduled_polls() -> None:
    w, _, results = worker([device("a", 0.2), device("b", 0.2)])
    w.drivers = {n: Line(n, 1, {}) for n in w.devices}
    w.start()
    try:
        futures = []
        threads = [threading.Thread(target=lambda name=name: futures.extend(
            w.request(lambda wk, n=name: probe(wk, n)) for _ in range(5)))
            for name in ("a", "b", "a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        done, pending = wait(futures, timeout=60)
        assert not pending
        time.sleep(0.5)
    finally:
        w.stop()
        w.join(10)
    assert Line.collisions == 0
    assert all(f.result().ok for f in done) and len(done) == 20
    assert results and all(r.ok for r in results)  # the schedule lost nothing
    assert all(s.gaps == 0 and s.skipped == 0 for s in w.states.values())


def test_a_failing_request_reaches_its_caller_and_the_worker_carries_on() -> None:
    w, drivers, results = worker([device("a", 0.2)])
    w.start()
    try:
        drivers["a"].silent = True
        with pytest.raises(PollFailed) as err:
            w.request(lambda wk: probe(wk, "a")).result(timeout=30)
        assert err.value.kind == "no_response"
        with pytest.raises(ZeroDivisionError):
            w.request(lambda wk: 1 / 0).result(timeout=30)
        drivers["a"].silent = False
        assert w.request(lambda wk: probe(wk, "a")).result(timeout=30).ok
        n = len(results)
        deadline = time.monotonic() + 30
        while len(results) < n + 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert w.is_alive() and len(results) >= n + 2
    finally:
        w.stop()
        w.join(10)
