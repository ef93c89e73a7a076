"""Field calibration: a linear correction ``value' = gain · value + offset`` on one quantity
of one sensor (or channel), taken in the field and kept with its history.

``zero`` takes the current reading as the new zero (or as a given reference: a staff
gauge); ``two-point`` fits gain and offset through two (reading, reference) points. Every
calibration is a row of ``field_calibration`` in the outbox's file (who, when, before,
after, gain, offset), committed ``synchronous=FULL``; the newest one applies, and every
later reading of that quantity carries its id in ``calibration.field`` with the value
before correction, so values can be recomputed from the history.

A sensor with a zero of its own (a VW piezometer's zero reading R0 with T0 and S0, a
4–20 mA loop's I0, a weir's crest reading, a radar or ultrasonic gauge's zero elevation, an
encoder's counts0: :mod:`daq.sensors.zero`) is re-zeroed *natively* by ``zero``: the new
raw zero, taken from its latest poll (or solved so that the main output, or the one
``quantity`` names, reads ``reference``), is stored in the row (``native``) beside the
engineering before/after, and the sensor layer converts with it from then on, so every
output of the sensor is exactly its conversion with the new zero, carrying
``calibration.field: {id, method: zero, zero}``. It supersedes the sensor's linear
corrections (the new zero already makes it read what it should). A sensor without one
(barometer, thermistor, rain, a vented or unvented level), a device channel, or an output
the zero does not move (a VW temperature) is re-zeroed as a linear offset, and the answer's
``note`` says so.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import replace
from typing import Any

import structlog

from ..manual.service import is_entered
from ..model import Lane, format_ts
from ..sensors.zero import describe

log = structlog.get_logger("daq.fieldcal")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS field_calibration (
    n INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    key TEXT NOT NULL, quantity TEXT NOT NULL,
    gain REAL NOT NULL, offset REAL NOT NULL,
    method TEXT NOT NULL, by TEXT, at REAL NOT NULL,
    before TEXT NOT NULL, after TEXT NOT NULL, comment TEXT, native TEXT
);
"""
NATIVE = "*"  # the quantity of a native re-zero: every output of the sensor


class CalibrationError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class FieldCalibration:
    def __init__(self, outbox: Any, sensors: Any = None) -> None:
        self._db = sqlite3.connect(outbox.path, check_same_thread=False, isolation_level=None,
                                   timeout=10.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        cols = {r[1] for r in self._db.execute("PRAGMA table_info(field_calibration)")}
        if "native" not in cols:  # a file from before native re-zeros
            self._db.execute("ALTER TABLE field_calibration ADD COLUMN native TEXT")
        self._lock = threading.Lock()
        self.sensors = sensors  # the pipeline's SensorSet (None: no sensors configured)
        self.active: dict[tuple[str, str], dict[str, Any]] = {}
        self.native: dict[str, dict[str, Any]] = {}  # sensor -> its newest native re-zero
        for row in self._db.execute("SELECT id, key, quantity, gain, offset, at, native FROM "
                                    "field_calibration ORDER BY n"):
            if row[6] is not None:
                self._install(row[1], row[0], json.loads(row[6]), row[5])
            else:
                self.active[(row[1], row[2])] = {"id": row[0], "gain": row[3],
                                                 "offset": row[4], "at": row[5]}
        self.last: dict[tuple[str, str], tuple[float, float]] = {}  # uncorrected (ts, value)

    def _install(self, key: str, cal_id: str, zero: dict[str, Any], at: float) -> None:
        """A native re-zero in force: the sensor converts with it; linear ones go."""
        self.native[key] = {"id": cal_id, "zero": zero, "at": at}
        for k in [k for k in self.active if k[0] == key]:
            del self.active[k]
        if self.sensors is not None and self.sensors.native_zero(key):
            self.sensors.zero(key, zero, {"id": cal_id, "method": "zero", "zero": zero})

    # -- before the commit: every reading of a calibrated quantity is corrected ----------

    def wrap(self, outbox: Any) -> None:
        add = outbox.add

        def corrected(items: Any, **kw: Any) -> list[int]:
            result: list[int] = add([self._correct(t, r) for t, r in items], **kw)
            return result

        outbox.add = corrected

    def _correct(self, topic: str, r: Any) -> tuple[str, Any]:
        if r.value is None or r.lane == Lane.ALARM or is_entered(r):
            return topic, r
        for key in (r.sensor, r.channel):
            if key is None:
                continue
            k = (str(key), r.quantity)
            self.last[k] = (r.ts.timestamp(), float(r.value))
            cal = self.active.get(k)
            if cal is None:
                continue
            value = cal["gain"] * float(r.value) + cal["offset"]
            field = {"id": cal["id"], "gain": cal["gain"], "offset": cal["offset"],
                     "uncorrected": r.value}
            prior = (r.calibration or {}).get("field")
            if prior is not None:  # on top of a native re-zero
                field["zero"] = prior
            return topic, replace(r, value=value,
                                  calibration={**(r.calibration or {}), "field": field})
        return topic, r

    # -- commands -------------------------------------------------------------------------

    def _quantity(self, key: str, quantity: str | None) -> str:
        seen = sorted(q for k, q in self.last if k == key)
        if quantity is not None:
            if quantity not in seen:
                raise CalibrationError("no_reading", f"no reading of {key} {quantity} yet; "
                                       f"quantities seen: {', '.join(seen) or 'none'}")
            return quantity
        if len(seen) != 1:
            raise CalibrationError("which_quantity" if seen else "no_reading",
                                   f"{key}: give --quantity, one of {', '.join(seen)}" if seen
                                   else f"no reading of {key!r} yet: nothing to calibrate")
        return seen[0]

    def calibrate(self, key: str, method: str, by: str, *, quantity: str | None = None,
                  reference: float | None = None, points: list[list[float]] | None = None,
                  comment: str | None = None) -> dict[str, Any]:
        if (method == "zero" and self.sensors is not None
                and self.sensors.native_zero(key, quantity)):
            return self._native(key, by, comment, quantity, reference)
        note = self._why_linear(key, quantity) if method == "zero" else None
        reference = 0.0 if reference is None else reference
        with self._lock:
            q = self._quantity(key, quantity)
            old = self.active.get((key, q), {"id": None, "gain": 1.0, "offset": 0.0})
            ts, raw = self.last[(key, q)]
            if method == "zero":
                gain = float(old["gain"])
                offset = reference - gain * raw
            elif method == "two-point":
                if not points or len(points) != 2:
                    raise CalibrationError("bad_points", "two-point needs two READING=REF")
                (x1, r1), (x2, r2) = points
                if x1 == x2:
                    raise CalibrationError("bad_points", "the two readings must differ")
                gain = (r2 - r1) / (x2 - x1)
                offset = r1 - gain * x1
            else:
                raise CalibrationError("bad_method", f"no method {method!r}")
            now = time.time()
            cal_id = self._new_id(now)
            before = {"id": old["id"], "gain": old["gain"], "offset": old["offset"],
                      "value": old["gain"] * raw + old["offset"], "uncorrected": raw,
                      "reading_ts": format_ts_epoch(ts)}
            after = {"id": cal_id, "gain": gain, "offset": offset, "value": gain * raw + offset}
            self._db.execute(
                "INSERT INTO field_calibration(id, key, quantity, gain, offset, method, by, at,"
                " before, after, comment) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (cal_id, key, q, gain, offset, method, by, now, json.dumps(before),
                 json.dumps(after), comment))
            self.active[(key, q)] = {"id": cal_id, "gain": gain, "offset": offset, "at": now}
        log.info("field_calibration", sensor=key, quantity=q, id=cal_id, by=by,
                 gain=gain, offset=offset)
        out = {"id": cal_id, "sensor": key, "quantity": q, "method": method, "by": by,
               "at": format_ts_epoch(now), "before": before, "after": after}
        if note is not None:
            out["note"] = f"{note}: re-zeroed as a linear offset on {q}"
        return out

    def _why_linear(self, key: str, quantity: str | None) -> str:
        """Why a ``zero`` of ``key`` is a linear offset and not the sensor's own zero."""
        kind = self.sensors.kind(key) if self.sensors is not None else None
        if kind is None:
            return f"{key} is not a configured sensor (a device channel)"
        if self.sensors is not None and self.sensors.native_zero(key):
            return f"the zero of {key} ({kind}) does not move {quantity}"
        return f"{key} ({kind}) has no zero of its own"

    def _new_id(self, now: float) -> str:
        n = 1 + int(self._db.execute("SELECT COUNT(*) FROM field_calibration").fetchone()[0])
        return f"field-{n}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(now))}"

    def _native(self, key: str, by: str, comment: str | None, quantity: str | None,
                reference: float | None) -> dict[str, Any]:
        """Re-zero sensor ``key`` in its own unit from its latest poll: its zero, or the
        zero that makes ``quantity`` (else its main output) read ``reference``."""
        assert self.sensors is not None
        with self._lock:
            try:
                ts, old_zero, zero, old_out, new_out, main = self.sensors.take_zero(
                    key, quantity, reference)
            except ValueError as err:
                code = "no_reading" if "no reading" in str(err) else "cannot_zero"
                raise CalibrationError(code, str(err)) from None
            now = time.time()
            cal_id = self._new_id(now)
            old = self.native.get(key)
            superseded = sorted({c["id"] for k, c in self.active.items() if k[0] == key})

            def side(cid: str | None, z: dict[str, Any], outs: list[Any]) -> dict[str, Any]:
                values = {o.quantity: o.value for o in outs}
                return {"id": cid, "zero": z, "quantity": main, "value": values[main],
                        "values": values, "units": {o.quantity: o.unit for o in outs},
                        "gain": 1.0, "offset": 0.0}

            before = {**side(old["id"] if old else None, old_zero, old_out),
                      "reading_ts": format_ts(ts), "superseded": superseded}
            after = side(cal_id, zero, new_out)
            if reference is not None:
                after["reference"] = reference
            self._db.execute(
                "INSERT INTO field_calibration(id, key, quantity, gain, offset, method, by, at,"
                " before, after, comment, native) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (cal_id, key, NATIVE, 1.0, 0.0, "zero", by, now, json.dumps(before),
                 json.dumps(after), comment, json.dumps(zero)))
            self._install(key, cal_id, zero, now)
        log.info("field_zero", sensor=key, id=cal_id, by=by, zero=zero, reference=reference)
        reads = (f"{main} reads {reference:g} {after['units'][main]} now" if reference is not
                 None else f"{main} reads {_g(after['value'])} {after['units'][main]} now")
        return {"id": cal_id, "sensor": key, "quantity": NATIVE, "method": "zero", "by": by,
                "at": format_ts_epoch(now), "native": zero, "before": before, "after": after,
                "note": f"{key} re-zeroed in its own unit ({describe(zero)}): {reads}"}

    def history(self, key: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            cur = self._db.execute(
                "SELECT id, key, quantity, gain, offset, method, by, at, before, after, comment,"
                " native FROM field_calibration" + (" WHERE key=?" if key else "") +
                " ORDER BY n", (key,) if key else ())
            return [{"id": r[0], "sensor": r[1], "quantity": r[2], "gain": r[3],
                     "offset": r[4], "method": r[5], "by": r[6], "at": format_ts_epoch(r[7]),
                     "before": json.loads(r[8]), "after": json.loads(r[9]), "comment": r[10],
                     "native": json.loads(r[11]) if r[11] else None}
                    for r in cur]

    def register(self, server: Any) -> None:
        from ..control import RequestError

        def cal(args: dict[str, Any]) -> Any:
            try:
                return self.calibrate(args["sensor"], args["method"], args.get("by") or
                                      "unknown", quantity=args.get("quantity"),
                                      reference=(None if args.get("reference") is None
                                                 else float(args["reference"])),
                                      points=args.get("points"), comment=args.get("comment"))
            except CalibrationError as err:
                raise RequestError(err.code, err.message) from None

        server.register("calibrate", cal, params={
            "sensor": str, "method": str, "by": str, "quantity": str,
            "reference": (int, float), "points": list, "comment": str},
            required=("sensor", "method"))
        server.register("calibration_history", lambda a: {"history": self.history(
            a.get("sensor"))}, params={"sensor": str})

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _g(v: float | None) -> str:
    return "-" if v is None else f"{v:.6g}"


def format_ts_epoch(t: float) -> str:
    from datetime import UTC, datetime

    return format_ts(datetime.fromtimestamp(t, UTC))
