"""The NMEA driver reading a receiver's sentences through a real pseudo-terminal pair."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import serial

from daq.driver import discover
from daq.errors import NoResponse, ProtocolError
from daq.gnss.solver.receiver_rtk import enu_offset, session_stats
from daq.gnss.streams.framing import nmea_checksum
from daq.model import Quality
from daq.schema import Ctx, load_yaml
from daq.testing_serial import pty_pair
from daq_drivers.nmea import NmeaDriver

DATA = (Path(__file__).resolve().parents[2] / "../shared/data/gnss").resolve()
F9P_UBX = DATA / "raw/f9p_2021/20210809-121012-ubx-nmea-data.ubx"
REF = {"lat": 18.461989, "lon": -69.9153515, "height": -19.1}   # the F9P log's fixed pier


def sentence(body: str) -> bytes:
    return f"${body}*{nmea_checksum(body.encode()):02X}\r\n".encode()


GGA_FIXED = sentence("GNGGA,161014.00,1827.72064,N,06954.92124,W,4,12,0.48,22.6,M,-41.5,M,"
                     "1.0,0000")
GGA_FLOAT = sentence("GNGGA,161015.00,1827.72070,N,06954.92130,W,5,11,0.60,22.8,M,-41.5,M,"
                     "2.0,0000")
GST = sentence("GNGST,161014.00,0.010,0.012,0.009,45.0,0.011,0.010,0.020")


def make(**options: Any) -> NmeaDriver:
    ctx = Ctx()
    checked = NmeaDriver.options_schema.check(options, "options", None, ctx)
    assert ctx.problems == []
    return NmeaDriver("rover", None, checked)


def send(fd: int, data: bytes, port: serial.Serial) -> None:
    """Write as the receiver would and wait until the port has every byte (≤ 30 s: a
    loaded machine)."""
    os.write(fd, data)
    deadline = time.monotonic() + 30.0
    while port.in_waiting < len(data) and time.monotonic() < deadline:
        time.sleep(0.0005)


@pytest.fixture
def pty() -> Iterator[tuple[serial.Serial, int]]:
    with pty_pair(timeout=0.05, baudrate=115200) as pair:
        yield pair


def values(vals: list[Any]) -> dict[str, Any]:
    return {v.channel: v for v in vals}


def test_sample_config_passes_the_schema_and_builds_a_driver() -> None:
    entry = load_yaml((Path(__file__).parent / "sample.yaml").read_text())
    ctx = Ctx()
    options = NmeaDriver.options_schema.check(entry["options"], "options", None, ctx)
    assert ctx.problems == [] and entry["driver"] == "nmea"
    driver = NmeaDriver("sample", None, options)
    assert driver.reference == (18.461989, -69.9153515, -19.1)
    assert [c.name for c in driver.channels][:3] == ["latitude", "longitude", "height"]


def test_driver_is_found_through_its_entry_point() -> None:
    found, _ = discover()
    assert found["nmea"] is NmeaDriver and found["nmea"].link_kind == "serial"


def test_a_reference_outside_the_globe_is_a_config_problem() -> None:
    ctx = Ctx()
    NmeaDriver.options_schema.check({"reference": {"lat": 95.0, "lon": 0.0}}, "options",
                                    None, ctx)
    assert {p.path for p in ctx.problems} == {"options.reference.lat",
                                               "options.reference.height"}


def test_fixed_epoch_gives_position_sigma_and_enu_offset_in_mm(pty: Any) -> None:
    port, fd = pty
    driver = make(reference=REF)
    send(fd, GST + GGA_FIXED, port)
    v = values(driver.poll(port))
    assert v["fix_quality"].value == 4 and v["latitude"].quality is Quality.GOOD
    assert v["latitude"].value == pytest.approx(18 + 27.72064 / 60, abs=1e-9)
    assert v["longitude"].value == pytest.approx(-(69 + 54.92124 / 60), abs=1e-9)
    assert v["height"].value == pytest.approx(22.6 - 41.5)
    assert (v["satellites"].value, v["age_of_corrections"].value) == (12.0, 1.0)
    assert (v["sigma_lat"].value, v["sigma_lon"].value, v["sigma_h"].value) == (0.011, 0.010,
                                                                                0.020)
    e, n, u = enu_offset(v["latitude"].value, v["longitude"].value, v["height"].value,
                         (REF["lat"], REF["lon"], REF["height"]))
    assert v["east"].value == pytest.approx(e * 1000) and v["east"].unit == "mm"
    assert v["north"].value == pytest.approx(n * 1000) and 2000 < v["north"].value < 3000
    assert v["up"].value == pytest.approx(u * 1000, abs=1e-6)


def test_float_epoch_is_suspect_and_has_no_enu_offset(pty: Any) -> None:
    port, fd = pty
    driver = make(reference=REF)
    send(fd, GGA_FLOAT, port)
    v = values(driver.poll(port))
    assert v["latitude"].quality is Quality.SUSPECT and v["latitude"].flags == ("rtk_float",)
    assert v["east"].value is None and v["east"].flags == ("no_rtk_fix",)
    assert v["sigma_h"].quality is Quality.MISSING     # no GST received yet


def test_a_sentence_split_across_polls_is_completed_by_the_next_poll(pty: Any) -> None:
    port, fd = pty
    driver = make()
    send(fd, GGA_FIXED[:30], port)
    with pytest.raises(NoResponse):
        driver.poll(port)
    send(fd, GGA_FIXED[30:], port)
    assert values(driver.poll(port))["fix_quality"].value == 4


def test_silence_is_no_response_and_garbled_sentences_are_a_protocol_error(pty: Any) -> None:
    port, fd = pty
    driver = make()
    with pytest.raises(NoResponse):
        driver.poll(port)
    send(fd, GGA_FIXED.replace(b"1827", b"1828"), port)    # checksum no longer matches
    with pytest.raises(ProtocolError):
        driver.poll(port)
    assert driver.stream.framer.rejected["nmea_checksum"] == 1


@pytest.mark.skipif(not DATA.is_dir(), reason=f"GNSS data folder {DATA} absent")
def test_a_real_f9p_capture_fed_through_the_port_yields_session_statistics(pty: Any) -> None:
    port, fd = pty
    driver = make(reference=REF)
    data = F9P_UBX.read_bytes()
    polled = 0
    for i in range(0, len(data), 3000):                  # the whole log, in poll-sized chunks
        send(fd, data[i:i + 3000], port)
        try:
            driver.poll(port)
            polled += 1
        except (NoResponse, ProtocolError):
            pass
    st = session_stats(driver.fixes)
    assert polled > 300 and st.epochs == len(driver.fixes) == 606   # every GGA of the log
    assert st.fixed == 544                       # the float start (≈ 2.4 m off) is left out
    assert st.e is not None and st.n is not None and st.u is not None
    for c in (st.e, st.n, st.u):                 # static pier: cm-level, NMEA-quantised
        assert abs(c.mean) < 0.01 and c.spread < 0.05


def gga(hhmmss: str, quality: int, north_min: float) -> bytes:
    return sentence(f"GNGGA,{hhmmss},1827.{north_min:05.0f},N,06954.92124,W,{quality},12,0.48,"
                    "22.6,M,-41.5,M,1.0,0000")


def test_a_session_is_published_as_a_result_when_the_next_one_begins() -> None:
    """With 1-hour sessions, the first GGA after 11:00 closes 10:00-11:00: its robust
    statistics over RTK-fixed epochs only go out as result-lane values on gnss/{device},
    in mm; a session with too few fixed epochs is published bad without millimetres."""
    from daq.model import Lane

    driver = make(reference=REF, session="1h", min_fixed_ratio=0.5)
    epochs = [gga(f"10{m:02d}00.00", 4, 72064) for m in range(0, 50)]
    epochs += [gga(f"10{m:02d}00.00", 5, 72900) for m in range(50, 60)]  # float: ignored
    for data in epochs:
        assert not [v for v in driver.feed(data) if v.channel.startswith("session.")]
    closing = values(driver.feed(gga("110000.00", 1, 72064)))
    ratio = closing["session.fixed_ratio"]
    assert ratio.value == pytest.approx(50 / 60) and ratio.lane is Lane.RESULT
    assert ratio.topic == "gnss/rover" and ratio.raw["session_start_s"] == 36000
    single = values(driver.feed(gga("110000.00", 4, 72064)))["north"].value
    assert closing["session.north"].value == pytest.approx(single, abs=1e-6)
    assert closing["session.north"].quality is Quality.GOOD
    assert closing["session.north_sigma"].value == pytest.approx(0.0)
    # 11:00-12:00: one fixed epoch in 30 → bad, no coordinates
    for m in range(1, 30):
        driver.feed(gga(f"11{m:02d}00.00", 5, 72064))
    poor = values(driver.feed(gga("120000.00", 4, 72064)))
    assert poor["session.fixed_ratio"].value == pytest.approx(1 / 31)
    assert poor["session.east"].quality is Quality.BAD and poor["session.east"].value is None
    assert "few_rtk_fixed" in poor["session.east"].flags


def test_a_session_joined_near_its_end_is_published_partial_never_as_millimetres() -> None:
    """Started at 10:59:57 with 1-s GGA, the daemon sees 3 epochs of 10:00-11:00: all fixed
    (ratio 1.0), but 3 of 3600 expected is no session mean: bad, flagged, no values."""
    driver = make(reference=REF, session="1h", min_fixed_ratio=0.5)
    for t in ("105957.00", "105958.00", "105959.00"):
        driver.feed(gga(t, 4, 72064))
    closing = values(driver.feed(gga("110000.00", 4, 72064)))
    assert closing["session.fixed_ratio"].value == pytest.approx(1.0)
    for name in ("session.east", "session.north_sigma", "session.up_spread"):
        assert closing[name].value is None and closing[name].quality is Quality.BAD
        assert closing[name].flags == ("partial_session",)
    # the next hour, seen whole at 1 s, is a session again
    for sec in range(1, 3600):
        driver.feed(gga(f"11{sec // 60:02d}{sec % 60:02d}.00", 4, 72064))
    whole = values(driver.feed(gga("120000.00", 4, 72064)))
    assert whole["session.north"].quality is Quality.GOOD
    assert whole["session.north"].value is not None


def test_a_session_length_must_divide_the_day() -> None:
    from daq.errors import ConfigError

    with pytest.raises(ConfigError):
        make(reference=REF, session="7h")


def test_epochs_without_a_time_never_pile_up_in_a_session() -> None:
    """A receiver that sends GGA with an empty time field gets positions reported, but
    nothing accumulates for a session that could never close."""
    driver = make(reference=REF, session="1h")
    for _ in range(500):
        v = values(driver.feed(sentence("GNGGA,,1827.72064,N,06954.92124,W,4,12,0.48,22.6,M,"
                                        "-41.5,M,1.0,0000")))
        assert v["fix_quality"].value == 4
    assert len(driver.session_fixes) == 0 and len(driver.session_times) == 0


def test_compact_fixes_give_the_statistics_of_the_former_lists_of_enufix() -> None:
    """Two hours of 1-s GGA (fixed, float and single epochs, cm noise) with 1-h sessions
    and ``keep_fixes: 3000``: each published session equals the statistics of the same
    epochs kept as a list of EnuFix (the former form), bit for bit; the day's history
    (``fixes``, 4-byte offsets) gives the same counts and every statistic within 1 µm."""
    import random

    from daq.gnss.solver.receiver_rtk import EnuFix
    from daq.gnss.streams.stream import GnssStream

    ref = (REF["lat"], REF["lon"], REF["height"])
    driver = make(reference=REF, session="1h", keep_fixes=3000)
    rng = random.Random(5)
    stream = GnssStream()
    old_fixes: list[EnuFix] = []
    old_session: list[EnuFix] = []
    old_times: list[float] = []
    window: int | None = None
    expected, published = [], []
    for sec in range(2 * 3600 + 1):
        quality = rng.choice([4] * 8 + [5, 1])
        north = 72064 + rng.randint(-40, 40) + (0 if quality == 4 else 900)
        data = gga(f"{10 + sec // 3600:02d}{sec // 60 % 60:02d}{sec % 60:02d}.00", quality,
                   north)
        for _frame, rec in stream.feed(data):        # the former driver's bookkeeping
            if window is not None and int(rec.time // 3600) != window:
                expected.append(driver.session_values(window, old_session, old_times))
                old_session, old_times = [], []
            window = int(rec.time // 3600)
            fix = EnuFix(rec.quality, *enu_offset(rec.lat, rec.lon, rec.height, ref))
            old_fixes.append(fix)
            old_session.append(fix)
            old_times.append(rec.time)
        if closed := [v for v in driver.feed(data) if v.channel.startswith("session.")]:
            published.append(closed)
    assert len(published) == 2 and published == expected
    assert published[0][0].raw["epochs"] == 3600
    assert list(driver.session_fixes) == old_session and list(driver.session_times) == [
        old_times[0]]
    assert len(driver.fixes) == 3000
    new, old = session_stats(driver.fixes), session_stats(old_fixes[-3000:])
    assert (new.epochs, new.fixed, new.fixed_ratio) == (old.epochs, old.fixed, old.fixed_ratio)
    for a, b in ((new.e, old.e), (new.n, old.n), (new.u, old.u)):
        assert a is not None and b is not None and a.rejected == b.rejected
        for what in ("median", "mean", "sigma", "spread"):
            assert abs(getattr(a, what) - getattr(b, what)) < 1e-6, what


def test_a_day_of_fixes_at_1_hz_takes_little_memory() -> None:
    """86,400 epochs in under 1.5 MB (as EnuFix objects they took 11 MB:
    bench/bench_rss.py); the oldest are dropped, the last kept in order."""
    from array import array

    from daq.gnss.solver.receiver_rtk import EnuFix
    from daq_drivers.nmea.driver import FixColumns

    day = FixColumns("f", keep=86400)
    for i in range(86400 + 5000):
        day.append(EnuFix(4 if i % 5 else 5, 0.001 * i, -0.002, 0.5))
    assert len(day) == 86400 and day.nbytes() < 1.5e6
    first, *_, last = day
    assert first == EnuFix(4 if 5000 % 5 else 5, array("f", [5.0])[0], array("f", [-0.002])[0],
                           0.5)
    assert last.e == array("f", [0.001 * 91399])[0] and last.quality == 4
