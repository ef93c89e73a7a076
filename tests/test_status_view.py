"""``daq status`` rendering: fields it does not know yet are shown by name, not hidden."""

from __future__ import annotations

from datetime import UTC, datetime

from daq.status_view import show_status, unknown_name

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def status(**extra_device: object) -> dict:
    dev = {"name": "P07", "driver": "modbus", "interval": 1.0, "up": False, "polls": 10,
           "failures": 4, "no_response": 2, "protocol_errors": 1, "driver_errors": 0,
           "gaps": 4, "skipped": 0, "consecutive_failures": 4,
           "last_ok": "2026-12-01T11:50:00.000Z", "last_error": "no_response: silent",
           "last_values": {}, "backoff": 2.0, **extra_device}
    return {
        "version": "0", "pid": 1, "site": "s", "rtu": "r", "running": True, "age_s": 1,
        "started": "2026-12-01T10:00:00.000Z", "updated": "2026-12-01T12:00:00.000Z",
        "buses": [{"name": "rs485", "devices": [dev]}],
        "outbox": {"depth": {"alarm": 0, "result": 0, "raw": 5}, "cap_rows": 100,
                   "counters": {"evicted_raw": 0, "disk_full": 3}, "accepted": 9,
                   "commit_failures": 2},
        "broker": {"configured": True, "connected": False, "since": "2026-12-01T09:00:00Z",
                   "last_error": "refused", "connects": 1, "messages_sent": 1,
                   "readings_acked": 1, "inflight": 0, "broker": "h:1883",
                   "extra": {"last_disconnect": "keepalive timeout",
                             "disconnected_at": "2026-12-01T11:00:00.000Z"}},
        "broker_down_since": "2026-12-01T11:00:00.000Z",
        "completeness_24h": {"P07": {"ok": 6, "expected": 10, "ratio": 0.6}},
        "outbox_oldest_unsent": "2026-12-01T11:00:00.000Z", "sensor_ids": ["P07A"],
        "quarantined": [{"path": "sensors.P09.kind", "message": "unknown kind", "line": 4,
                         "hint": None}],
        "clock": {"synchronised": False, "source": "adjtimex"},
    }


def test_the_answers_are_on_the_first_lines() -> None:
    text = show_status(status(), now=NOW)
    assert "QUARANTINED: 1 problem(s)" in text and "sensors.P09.kind (line 4)" in text
    assert "DOWN since 2026-12-01T11:00:00.000Z (60 min)" in text  # not the connect time
    assert "last disconnect: keepalive timeout" in text
    assert "oldest unsent 2026-12-01T11:00:00.000Z (60 min old)" in text
    assert "60.0 % of 10" in text and "no response 2, protocol 1, other 1" in text
    assert "clock: NOT synchronised" in text


def test_unknown_fields_are_shown_by_name() -> None:
    text = show_status(status(errors={"crc": 3, "late_reply": 1}, frames_sent=40), now=NOW)
    assert "errors: crc 3, late_reply 1" in text and "frames_sent 40" in text
    assert "commit_failures 2" in text and "disk_full 3" in text


def test_unknown_names_get_a_suggestion() -> None:
    st = status()
    assert unknown_name(st, "P7", None) == (
        "no device 'P7' in the running daemon; did you mean 'P07'?")
    assert "did you mean 'P07A'" in (unknown_name(st, None, "P07") or "")
    assert unknown_name(st, None, "P09") is None  # quarantined: known, not a typo
    assert unknown_name(st, "P07", "P07A") is None
