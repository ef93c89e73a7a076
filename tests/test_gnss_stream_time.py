"""A stream's time (issue 13, part 3): a wrong system clock is corrected by the data, and one
future-dated epoch neither closes a session early nor moves the data clock.

Real data: the F9P base's RTCM 3 log (867 epochs of MSM7 1077/1087/1097/1127 at 1 Hz,
2021-08-09 15:11:16 … 15:25:42 UTC, an RTCM 1013 every 10 s).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from daq.gnss.obs import GNSSTime
from daq.gnss.sessions.ingest import StreamIngest
from daq.gnss.sessions.store import SessionStore
from daq.gnss.streams.framing import Framer, crc24q

DATA = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "gnss").resolve()
RTCM_LOG = DATA / "raw" / "f9p_2021" / "20210809-111055-rtcm3-base-corrections.rtcm3"
pytestmark = pytest.mark.skipif(not RTCM_LOG.exists(), reason="shared GNSS data not present")
MSM = (1077, 1087, 1097, 1127)
WEEK_MS = 604_800_000


def frames() -> list[Any]:
    f = Framer()
    return f.feed(RTCM_LOG.read_bytes()) + f.flush()


def gps(text: str) -> float:
    return GNSSTime.from_calendar(datetime.fromisoformat(text), "GPST").gps_seconds


def shifted(frame: Any, seconds: int) -> bytes:
    """The MSM frame with its epoch time moved by ``seconds`` (CRC recomputed)."""
    p = bytearray(frame.payload)
    bits = int.from_bytes(p, "big")
    n = len(p) * 8
    if frame.msg == 1087:                     # GLONASS: day of week (3) + time of day (27)
        shift, width, mod = n - 24 - 30, 27, 86_400_000
    else:                                     # GPS, Galileo, BeiDou: time of week (30)
        shift, width, mod = n - 24 - 30, 30, WEEK_MS
    mask = (1 << width) - 1
    value = (bits >> shift) & mask
    bits = (bits & ~(mask << shift)) | (((value + seconds * 1000) % mod) << shift)
    payload = bits.to_bytes(len(p), "big")
    head = bytes([0xD3, len(payload) >> 8, len(payload) & 0xFF]) + payload
    return head + crc24q(head).to_bytes(3, "big")


def feed(ing: StreamIngest, data: bytes) -> None:
    for i in range(0, len(data), 4096):
        ing.feed(data[i:i + 4096])
    ing.flush()


def test_one_future_dated_epoch_neither_closes_the_session_nor_moves_the_data_clock(
        tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "gnss", session_hours=1)
    ing = StreamIngest("base", "REF", store, fmt="rtcm3")
    seen: list[float] = []
    ing.on_epoch = seen.append
    out, epoch = [], -1
    for f in frames():
        if f.msg == 1077:
            epoch += 1
        out.append(shifted(f, 2 * 3600) if epoch == 400 and f.msg in MSM else f.raw)
    feed(ing, b"".join(out))
    assert store.counters["sessions_closed"] == 0 and store.counters["late_epochs"] == 0
    (info,) = store.list("REF")
    assert info.id == "REF/20210809T1500Z" and info.epochs == 866
    assert max(seen) == gps("2021-08-09 15:26:00")       # the data clock never jumped ahead
    c = ing.counters
    assert (c.epochs, c.epochs_dropped, c.time_jumps_rejected) == (866, 1, 1)


def test_a_receiver_back_after_an_outage_is_followed_once_the_next_epochs_confirm(
        tmp_path: Path) -> None:
    """Every epoch after number 400 moved 2 h later (an outage): nothing dropped, two
    sessions, the held epochs stored once confirmed."""
    store = SessionStore(tmp_path / "gnss", session_hours=1)
    ing = StreamIngest("base", "REF", store, fmt="rtcm3")
    out, epoch = [], -1
    for f in frames():
        if f.msg == 1077:
            epoch += 1
        out.append(shifted(f, 2 * 3600) if epoch >= 400 and f.msg in MSM else f.raw)
    feed(ing, b"".join(out))
    c = ing.counters
    assert (c.epochs, c.epochs_dropped, c.time_jumps_rejected) == (867, 0, 0)
    assert [(i.id, i.epochs) for i in store.list("REF")] == [
        ("REF/20210809T1500Z", 400), ("REF/20210809T1700Z", 467)]


def test_a_week_taken_from_a_wrong_clock_is_corrected_by_a_later_1013(tmp_path: Path) -> None:
    """No 1013 in the first 300 epochs: after 40 records the clock (a week ahead) dates the
    stream; the first 1013 then re-dates it and the misdated session is set aside."""
    store = SessionStore(tmp_path / "gnss", session_hours=1)
    wrong = gps("2021-08-16 15:20:00")                    # the RTU clock: one week ahead
    ing = StreamIngest("base", "REF", store, fmt="rtcm3", max_pending=40, clock=lambda: wrong)
    out, epoch = [], -1
    for f in frames():
        if f.msg == 1077:
            epoch += 1
        if f.msg == 1013 and epoch < 300:
            continue
        out.append(f.raw)
    feed(ing, b"".join(out))
    (info,) = store.list("REF")                           # only the rightly dated session
    assert info.id == "REF/20210809T1500Z"
    assert info.last == datetime(2021, 8, 9, 15, 25, 42)          # UTC
    assert 560 <= info.epochs <= 567                     # from the first 1013 on
    (aside,) = (tmp_path / "gnss" / "REF").glob("*.misdated")
    assert aside.name == "20210816T1500Z.misdated" and store.counters["sessions_set_aside"] == 1
    c = ing.counters
    assert (c.time_source, c.time_corrections) == ("rtcm1013", 1)


def test_a_clock_off_by_less_than_half_a_week_dates_right_and_is_not_corrected(
        tmp_path: Path) -> None:
    """Two days ahead still gives every epoch its week: nothing set aside, nothing lost."""
    store = SessionStore(tmp_path / "gnss", session_hours=1)
    right = gps("2021-08-11 15:20:00")
    ing = StreamIngest("base", "REF", store, fmt="rtcm3", max_pending=40, clock=lambda: right)
    out, epoch = [], -1
    for f in frames():
        if f.msg == 1077:
            epoch += 1
        if not (f.msg == 1013 and epoch < 300):
            out.append(f.raw)
    feed(ing, b"".join(out))
    c = ing.counters
    assert (c.time_source, c.time_corrections, c.epochs, c.epochs_dropped) == (
        "rtcm1013", 0, 867, 0)
    assert [i.id for i in store.list("REF")] == ["REF/20210809T1500Z"]
    assert store.counters["sessions_set_aside"] == 0
