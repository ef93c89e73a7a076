"""One poll through the daemon's own code path, for ``daq read`` (and its daemon side).

``probe`` runs on a bus worker's thread (the daemon's, between its scheduled polls, or a
worker the CLI built and never started): the driver polls the line exactly as the daemon
does. ``dry_readings`` then runs the pipeline's ``readings`` (sensor layer included) on a
copy of the sensor state, and ``describe`` says what would be published, topic and payload.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

from .bus import BusWorker, PollResult, _checked, close_link
from .errors import DeviceError, NoResponse, ProtocolError
from .model import Reading, format_ts

PAYLOAD_VERSION = 1  # = publisher.PAYLOAD_VERSION (not imported: that pulls in paho)


class PollFailed(Exception):
    def __init__(self, kind: str, text: str) -> None:
        super().__init__(f"{kind}: {text}")
        self.kind, self.text = kind, text


def probe(worker: BusWorker, name: str) -> PollResult:
    """One poll of device ``name`` on ``worker``'s line; PollFailed says why not.
    Mirrors BusWorker._poll (link, timeout, error kinds) but touches no counters."""
    dev = worker.devices[name]
    ts = datetime.fromtimestamp(worker._wall(), UTC)
    if not worker._ensure_link():
        raise PollFailed("bus_unavailable", worker.link_error or "")
    link = worker.link
    if hasattr(link, "comm_params"):
        link.comm_params.timeout_connect = dev.timeout or worker.bus.timeout
    elif hasattr(link, "timeout"):
        link.timeout = dev.timeout or worker.bus.timeout
    try:
        values = _checked(worker.drivers[name].poll(link))
    except NoResponse as err:
        raise PollFailed("no_response", str(err)) from None
    except ProtocolError as err:
        raise PollFailed("protocol_error", str(err)) from None
    except DeviceError as err:
        raise PollFailed("device_error", str(err)) from None
    except OSError as err:
        close_link(link)
        worker.link = None
        raise PollFailed("bus_error", f"{type(err).__name__}: {err}") from None
    except Exception as err:
        raise PollFailed("driver_error", f"{type(err).__name__}: {err}") from None
    return PollResult(dev, ts, values, True)


class NoCounters:
    """Stands in for the outbox where the pipeline only counts errors."""

    def __init__(self) -> None:
        self.bumped: dict[str, int] = {}
        self.slots: dict[str, float] = {}  # no committed polls: no downtime to account for

    def bump(self, name: str, n: int = 1) -> None:
        self.bumped[name] = self.bumped.get(name, 0) + n


class _DryPipeline:
    """The pipeline's ``readings`` on a copy of its sensor state: a dry run changes
    nothing the daemon keeps (history for barometric compensation, last values)."""

    def __init__(self, pipeline: Any) -> None:
        self.cfg = pipeline.cfg
        self.sensors = _copy_sensors(pipeline.sensors)
        self.last: dict[str, Any] = {}
        self.outbox = NoCounters()
        self.processor = None  # a dry read shows the readings before any processing chain
        self._readings = type(pipeline).readings

    def readings(self, res: PollResult) -> list[tuple[str, Reading]]:
        return list(self._readings(self, res))


def _copy_sensors(sensors: Any) -> Any:
    # the daemon's pipeline thread may add to the history while we copy: retry then
    for _ in range(10):
        try:
            return copy.deepcopy(sensors)
        except RuntimeError:  # "dictionary changed size during iteration"
            continue
    return copy.deepcopy(sensors)


def dry_readings(pipeline: Any, res: PollResult) -> list[tuple[str, Reading]]:
    return _DryPipeline(pipeline).readings(res)


def describe(cfg: Any, res: PollResult, readings: list[tuple[str, Reading]],
             last_seq: Any) -> dict[str, Any]:
    """What a technician sees: driver values, engineering values, and the messages the
    publisher would send (same topic and body; ``seq`` = the channel's next seq)."""
    base = (f"{cfg.mqtt.prefix}/{cfg.site}/{cfg.rtu}" if cfg.mqtt is not None else None)
    channels = [{"channel": v.channel, "value": v.value, "unit": v.unit,
                 "quality": v.quality.value, "quantity": v.quantity, "flags": list(v.flags),
                 "raw": v.raw} for v in res.values]
    groups: dict[str, list[dict[str, Any]]] = {}
    out = []
    for topic, r in readings:
        payload = json.loads(json.dumps(r.to_payload(int(last_seq(r.channel)) + 1),
                                        default=repr))
        groups.setdefault(topic, []).append(payload)
        out.append({"channel": r.channel, "sensor": r.sensor, "value": r.value,
                    "unit": r.unit, "quality": r.quality.value, "flags": list(r.flags),
                    "calibration": r.calibration, "raw": r.raw, "topic": topic})
    messages = [{"topic": f"{base}/{t}" if base else None,
                 "payload": {"v": PAYLOAD_VERSION, "site": cfg.site, "rtu": cfg.rtu,
                             "readings": p}} for t, p in groups.items()]
    return {"device": res.device.name, "bus": res.device.bus, "driver": res.device.driver,
            "ts": format_ts(res.ts), "ok": True, "channels": channels, "readings": out,
            "messages": messages}
