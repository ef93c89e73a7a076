"""Local actions of an alarm when the uplink is down: a coil (relay, siren) and/or a command
(an SMS modem script), each with its own retries and a record of the outcome.

A coil is written by the bus worker that owns the device's line, between its polls (the
same path as ``daq read``), and read back: only a coil that reads back as written counts
as done. Writing is off unless ``alarms.allow_writes: true``. The outcome of every action
(done or failed after its retries) is an ``action`` event of the alarm, published and kept
in the audit trail.
"""

from __future__ import annotations

import queue
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

import structlog

from ..errors import DeviceError
from .alarm_config import Action, Rule

log = structlog.get_logger("daq.alarms")


class ActionFailed(Exception):
    pass


def write_coil(worker: Any, device: str, address: int, value: bool) -> str:
    """On the bus worker's thread: write one coil, read it back (Modbus FC 5, then FC 1)."""
    if not worker._ensure_link():
        raise ActionFailed(f"bus {worker.bus.name} unavailable: {worker.link_error}")
    unit = worker.devices[device].address or 1
    link = worker.link
    try:
        link.write_coil(address, value, unit)
    except (DeviceError, OSError) as err:
        raise ActionFailed(f"unit {unit} refused the coil write: {err}") from err
    try:
        back = link.read_items("coil", address, 1, unit)
    except (DeviceError, OSError) as err:
        raise ActionFailed(f"coil {address} of {device} could not be read back: {err}") from err
    if bool(back[0]) != value:
        raise ActionFailed(f"coil {address} of {device} reads back {bool(back[0])}, "
                           f"not {value}")
    return f"coil {address} of {device} set to {value} and read back"


class ActionRunner(threading.Thread):
    def __init__(self, actions: dict[str, Action], workers: list[Any],
                 uplink: Callable[[], bool],
                 record: Callable[[str, dict[str, Any]], None]) -> None:
        super().__init__(name="alarm-actions", daemon=True)
        self.actions, self.workers = actions, workers
        self.uplink, self.record = uplink, record
        self.queue: queue.Queue[tuple[Action, dict[str, Any]] | None] = queue.Queue()
        self._halt = threading.Event()
        self.counts: dict[str, dict[str, int]] = {}

    def offer(self, rule: Rule, payload: dict[str, Any]) -> None:
        """Queue the rule's actions that apply to this transition."""
        for name in rule.actions:
            a = self.actions.get(name)
            if (a is None or payload["event"] not in a.events or payload["suppressed"]
                    or rule.severity < a.min_severity):
                continue
            if a.when == "uplink_down" and self.uplink():
                continue
            self.queue.put((a, payload))

    def run(self) -> None:
        while not self._halt.is_set():
            job = self.queue.get()
            if job is None:
                return
            self._run(*job)

    def stop(self) -> None:
        self._halt.set()
        self.queue.put(None)
        if self.is_alive():
            self.join(5.0)

    def _run(self, a: Action, payload: dict[str, Any]) -> None:
        attempts, errors = 0, []
        while attempts <= a.retries and not self._halt.is_set():
            attempts += 1
            try:
                done = self._once(a, payload)
            except Exception as err:  # any failure is retried, then reported
                errors.append(f"{type(err).__name__}: {err}")
                log.warning("alarm_action_failed", action=a.name, alarm=payload["alarm"],
                            attempt=attempts, error=errors[-1])
                if attempts <= a.retries:
                    self._halt.wait(a.retry_delay)
                continue
            self._count(a.name, "ok")
            self.record(payload["alarm"], {"action": a.name, "ok": True, "attempts": attempts,
                                           "result": done, "errors": errors,
                                           "for_event": payload["event_id"]})
            return
        self._count(a.name, "failed")
        self.record(payload["alarm"], {"action": a.name, "ok": False, "attempts": attempts,
                                       "errors": errors[-3:],
                                       "for_event": payload["event_id"]})

    def _count(self, name: str, what: str) -> None:
        c = self.counts.setdefault(name, {"ok": 0, "failed": 0})
        c[what] += 1

    def _once(self, a: Action, payload: dict[str, Any]) -> str:
        out = []
        if a.coil is not None:
            dev, addr = str(a.coil["device"]), int(a.coil["address"])
            value = bool(a.coil["value"])
            worker = next((w for w in self.workers if dev in w.devices), None)
            if worker is None:
                raise ActionFailed(f"no device {dev!r} on any bus")
            fut = worker.request(lambda w: write_coil(w, dev, addr, value))
            out.append(fut.result(timeout=a.timeout))
        if a.command is not None:
            fill = {"alarm": payload["alarm"], "event": payload["event"],
                    "value": payload.get("value"), "severity": payload["severity"],
                    "sensor": payload["sensor"]}
            argv = [part.format(**fill) for part in a.command]
            t0 = time.monotonic()
            res = subprocess.run(argv, capture_output=True, text=True, timeout=a.timeout,
                                 check=False)
            if res.returncode != 0:
                raise ActionFailed(f"{argv[0]} exited {res.returncode}: "
                                   f"{(res.stderr or res.stdout).strip()[-200:]}")
            out.append(f"{argv[0]} done in {time.monotonic() - t0:.1f} s")
        return "; ".join(out)
