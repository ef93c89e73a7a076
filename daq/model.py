"""What flows through the daemon: channel values from drivers, readings in the outbox.

A driver returns :class:`ChannelValue` objects (raw or scaled values of one device's
channels). The daemon turns each into a :class:`Reading`, which the outbox commits with a
per-channel ``seq``; from then on the reading is *accepted* and is never lost.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


class Quality(enum.StrEnum):
    """Quality flag carried by every published value.

    ``missing`` is a gap record: the value was expected and not acquired (no answer).
    ``bad`` means the device answered with something physically impossible (open circuit,
    0 Hz, wire break, out of engineering range): the value is kept, flagged, not dropped.
    """

    GOOD = "good"
    SUSPECT = "suspect"
    BAD = "bad"
    MISSING = "missing"


class Lane(enum.IntEnum):
    """Outbox priority lanes: a lower number leaves first and is evicted last."""

    ALARM = 0
    RESULT = 1
    RAW = 2


@dataclass(frozen=True, slots=True)
class ChannelValue:
    """One value a driver read from one channel of its device.

    ``flags`` name why a value is not good (``"wire_break"``, ``"over_range"``, ...);
    ``raw`` keeps the undecoded numbers (register words, Hz, counts) for the record.
    """

    channel: str
    value: float | None
    unit: str = ""
    quality: Quality = Quality.GOOD
    quantity: str = ""
    flags: tuple[str, ...] = ()
    raw: dict[str, Any] | None = None
    lane: Lane | None = None  # None: the device's lane; a session result says RESULT
    topic: str | None = None  # None: data/{device}; e.g. gnss/{device} for a session result


@dataclass(frozen=True, slots=True)
class Reading:
    """A value ready for the outbox: everything but ``seq``, which the outbox assigns."""

    device: str
    channel: str  # globally unique on this RTU, e.g. "weir_logger/ch1" or "P07"
    quantity: str
    value: float | None
    unit: str
    quality: Quality
    ts: datetime  # UTC time of measurement
    lane: Lane = Lane.RAW
    sensor: str | None = None
    calibration: dict[str, Any] | None = None
    flags: tuple[str, ...] = ()
    raw: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_payload(self, seq: int) -> dict[str, Any]:
        """The JSON object published for this reading (schema: ``schemas/reading.json``)."""
        out: dict[str, Any] = {
            "device": self.device,
            "channel": self.channel,
            "quantity": self.quantity,
            "value": self.value,
            "unit": self.unit,
            "quality": self.quality.value,
            "ts": format_ts(self.ts),
            "seq": seq,
        }
        if self.sensor is not None:
            out["sensor"] = self.sensor
        if self.calibration is not None:
            out["calibration"] = self.calibration
        if self.flags:
            out["flags"] = list(self.flags)
        if self.raw:
            out["raw"] = self.raw
        if self.extra:
            out.update(self.extra)
        return out


def utcnow() -> datetime:
    return datetime.now(UTC)


def format_ts(ts: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a ``Z``: ``2026-11-23T07:10:00.000Z``."""
    ts = ts.astimezone(UTC)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def parse_ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
