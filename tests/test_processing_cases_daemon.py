"""DOMAIN.md D14–D16 through the daemon, end to end.

The in-process daemon (bus worker, pipeline, processing chains, outbox, publisher, the
supervisor's day roll-over) polls scripted sensors that play the worked cases' samples,
under a simulated clock (tests/simclock.py: each poll exactly on its slot, simulated days
in seconds), and publishes to the test's own mosquitto. What is checked is what arrives
at the broker: the 10-minute summaries (D14), the despiked raw readings (D15) and the
daily reports of 30 days (D16), against DOMAIN.md's figures; and the reports of whole days
the daemon was down, published at its restart.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from daq.config import loads
from daq.driver import ChannelSpec, Driver
from daq.errors import NoResponse
from daq.model import ChannelValue, Quality
from daq.schema import Field, Schema

from .conftest import Broker, Subscriber, validator
from .simclock import SimClock, run_simulated

pytestmark = pytest.mark.slow

Script = Callable[[float], list[ChannelValue]]


def scripted(clock: SimClock, scripts: dict[str, Script]) -> type[Driver]:
    """A driver whose device plays ``scripts[case](t)`` at the poll's (simulated) time t;
    a script raises NoResponse for a poll that gets no answer."""

    class Scripted(Driver):
        link_kind: ClassVar[str] = "serial"
        options_schema: ClassVar[Schema] = Schema({
            "case": Field("str", required=True),
            "channels": Field("int", default=1, min=1, max=1000),
            "unit": Field("str", default=""),
        })

        @property
        def channels(self) -> list[ChannelSpec]:
            n = self.options["channels"]
            names = ["value"] if n == 1 else [f"ch{i}" for i in range(1, n + 1)]
            return [ChannelSpec(c, "level", self.options["unit"]) for c in names]

        def poll(self, link: Any) -> list[ChannelValue]:
            return scripts[self.options["case"]](clock.time())

    return Scripted


def ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def run(cfg_text: str, clock: SimClock, scripts: dict[str, Script], state: Path,
        done: Callable[[], Any], what: str) -> None:
    cfg = loads(cfg_text, source="c.yaml", drivers={"scripted": scripted(clock, scripts)})
    run_simulated(cfg, clock, state, done, what)


def config(broker: Broker, devices: dict[str, Any], chains: dict[str, Any]) -> str:
    return yaml.safe_dump({
        "site": "cases", "rtu": "rtu-cases",
        "mqtt": {"url": f"mqtt://127.0.0.1:{broker.port}", "reconnect_min": "200ms",
                 "reconnect_max": "1s"},
        "outbox": {"commit_interval": "200ms", "sync_interval": "200ms"},
        "buses": {"script": {"protocol": "serial", "url": "loop://", "devices": devices}},
        "processing": {"timezone": "Asia/Shanghai", "day_start": 8, "chains": chains},
    }, sort_keys=False)


# -- D14 and D15 ------------------------------------------------------------------------

A = ts("2026-11-23T08:00:00+08:00")  # a hydrological day's start, and a 10-min window's


def d14(t: float) -> list[ChannelValue]:
    """1 Hz level: 81.950 + 0.0001·i in the window from A (i its second), the same in the
    next one with i = 100…111 not answered; 81.950 before and after."""
    i = round(t - A)
    if 600 <= i < 1200:
        i -= 600
        if 100 <= i <= 111:
            raise NoResponse("scripted: no answer")
    elif not 0 <= i < 600:
        i = 0
    return [ChannelValue("value", 81.950 + 0.0001 * i, "m", quantity="level")]


D15 = [10.00, 10.01, 10.02, 10.50, 10.03, 10.04, 10.05]


def d15(t: float) -> list[ChannelValue]:
    """The seven samples of D15 from A on, then silence."""
    i = round(t - A)
    if not 0 <= i < len(D15):
        raise NoResponse("scripted: no answer")
    return [ChannelValue("value", D15[i], "m", quantity="level")]


def test_d14_and_d15_through_the_daemon(broker: Broker, subscriber: Subscriber,
                                         tmp_path: Path) -> None:
    clock = SimClock(A - 60.5, A + 1200.5)  # a minute of the window before, then two
    devices = {
        "level": {"driver": "scripted", "interval": "1s", "backoff_max": "1s",
                  "options": {"case": "d14", "unit": "m"}},
        "spiky": {"driver": "scripted", "interval": "1s", "backoff_max": "1s",
                  "options": {"case": "d15", "unit": "m"}},
    }
    chains = {"level/value": {"summaries": ["10min"]},
              "spiky/value": {"despike": {"window": 7, "threshold": 3}}}

    def summaries() -> dict[str, dict[str, Any]]:
        out = {}
        for m in subscriber.payloads("/summary/"):
            validator("summary.json").validate(m)
            out.update({r["window"]["start"]: r for r in m["readings"]})
        return out

    def spiky() -> list[dict[str, Any]]:
        return sorted((r for r in subscriber.readings() if r["channel"] == "spiky/value"
                       and r["value"] is not None), key=lambda r: r["ts"])

    run(config(broker, devices, chains), clock, {"d14": d14, "d15": d15}, tmp_path / "s",
        lambda: len(summaries()) >= 3 and len(spiky()) >= 7, "the summaries and D15")

    got = summaries()
    full, cut = got["2026-11-23T00:00:00.000Z"], got["2026-11-23T00:10:00.000Z"]
    # D14: mean 81.97995, min 81.9500, max 82.0099, population σ 0.017320
    assert (full["n_valid"], full["n_expected"], full["completeness"]) == (600, 600, 1.0)
    assert full["quality"] == "good" and full.get("flags", []) == []
    assert full["channel"] == "level/value/10min" and full["ts"] == "2026-11-23T00:10:00.000Z"
    assert full["value"] == full["mean"] == pytest.approx(81.97995, abs=1e-9)
    assert full["min"] == pytest.approx(81.9500, abs=1e-9)
    assert full["max"] == pytest.approx(82.0099, abs=1e-9)
    assert full["min_ts"] == "2026-11-23T00:00:00.000Z"
    assert full["max_ts"] == "2026-11-23T00:09:59.000Z"
    assert full["std_pop"] == pytest.approx(0.017320, abs=5e-7)
    # … with i = 100…111 missing: n 588, completeness 98.0 %, mean 81.980346
    assert (cut["n_valid"], cut["n_expected"], cut["n_invalid"]) == (588, 600, 12)
    assert cut["completeness"] == pytest.approx(0.98)
    assert cut["mean"] == pytest.approx(81.980346, abs=5e-7)
    assert cut["flags"] == ["incomplete"] and cut["quality"] == "good"
    # D15: index 3 flagged, replaced by 10.03; the others pass as measured
    got15 = spiky()[:7]
    assert [r["ts"] for r in got15] == [
        f"2026-11-23T00:00:0{i}.000Z" for i in range(7)]
    flagged = [i for i, r in enumerate(got15) if "despiked" in r.get("flags", ())]
    assert flagged == [3]
    assert got15[3]["value"] == pytest.approx(10.03) and got15[3]["quality"] == "suspect"
    assert got15[3]["raw"]["original"] == 10.50
    assert [r["value"] for i, r in enumerate(got15) if i != 3] == [
        v for i, v in enumerate(D15) if i != 3]


# -- D16 --------------------------------------------------------------------------------

D0 = ts("2026-11-01T08:00:00+08:00")
SCAN = 600.0
CHANNELS = 120
DAYS = 30
UNANSWERED = {100 + 240 * j for j in range(18)}       # 18 scans × 120 channels = 2160
BAD = {k for k in range(DAYS * 144) if k % 10 == 7}   # 432 scans with one bad value


def d16(t: float) -> list[ChannelValue]:
    """120 channels scanned every 10 min: 18 scans unanswered (gap records), and in 432
    scans one channel out of range (quality bad): 2592 values missing in 30 days."""
    k = round((t - D0) / SCAN)
    if k in UNANSWERED:
        raise NoResponse("scripted: no answer")
    bad = k % CHANNELS if k in BAD else -1
    return [ChannelValue(f"ch{c + 1}", None if c == bad else 10.0 + c, "m",
                         Quality.BAD if c == bad else Quality.GOOD, "level",
                         ("over_range",) if c == bad else ())
            for c in range(CHANNELS)]


def test_d16_missing_rate_of_30_days_through_the_daemon(broker: Broker, subscriber: Subscriber,
                                                        tmp_path: Path) -> None:
    clock = SimClock(D0 - 0.5, D0 + DAYS * 86400 + 0.5)  # the 31st day's first scan ends
    devices = {"logger": {"driver": "scripted", "interval": "10min", "backoff_max": "1s",
                          "options": {"case": "d16", "channels": CHANNELS, "unit": "m"}}}
    chains = {f"logger/ch{c}": {"summaries": ["1d"], "raw": "drop"}
              for c in range(1, CHANNELS + 1)}
    dates = [datetime.fromtimestamp(D0 + 86400 * d, UTC).date().isoformat()
             for d in range(DAYS)]

    def reports() -> dict[str, dict[str, Any]]:
        out = {}
        for m in subscriber.payloads("/report/daily"):
            validator("daily_report.json").validate(m)
            out.update({r["report"]["date"]: r for r in m["readings"]})
        return out

    run(config(broker, devices, chains), clock, {"d16": d16}, tmp_path / "s",
        lambda: set(dates) <= set(reports()), "30 daily reports")

    got = reports()
    expected = missing = 0
    for d, date in enumerate(dates):
        r = got[date]["report"]
        scans = range(144 * d, 144 * (d + 1))
        lost = sum(CHANNELS for k in scans if k in UNANSWERED) + sum(
            1 for k in scans if k in BAD)
        assert (r["expected"], r["missing"]) == (CHANNELS * 144, lost), date
        assert r["fr"] == got[date]["value"] == pytest.approx(lost / (CHANNELS * 144))
        assert r["covered_s"] == 86400 and len(r["channels"]) == CHANNELS
        assert all(c["expected"] == 144 for c in r["channels"].values())
        expected += r["expected"]
        missing += r["missing"]
    # D16: 120 channels, 10-min scans, 30 days, 2592 missing → FR = 0.50 %
    assert (expected, missing) == (120 * 144 * 30, 2592)
    assert math.isclose(missing / expected, 0.0050)


# -- whole days down ----------------------------------------------------------------------

def steady(t: float) -> list[ChannelValue]:
    return [ChannelValue(f"ch{c}", 10.0, "m", quantity="level") for c in (1, 2)]


def test_whole_days_the_daemon_was_down_reach_the_broker_at_its_restart(
        broker: Broker, subscriber: Subscriber, tmp_path: Path) -> None:
    """Stopped six hours into the hydrological day of 1 November, started again on the 4th
    at 13:00: the reports of the 1st (18 of 24 hours missing), the 2nd and the 3rd (all
    missing) arrive at the broker, with no hole in the dates."""
    devices = {"logger": {"driver": "scripted", "interval": "10min",
                          "options": {"case": "steady", "channels": 2, "unit": "m"}}}
    chains = {f"logger/ch{c}": {"summaries": ["1h"]} for c in (1, 2)}
    text = config(broker, devices, chains)

    def reports() -> dict[str, dict[str, Any]]:
        out = {}
        for m in subscriber.payloads("/report/daily"):
            validator("daily_report.json").validate(m)
            out.update({r["report"]["date"]: r["report"] for r in m["readings"]})
        return out

    def hourly() -> int:
        return sum(len(m["readings"]) for m in subscriber.payloads("/summary/"))

    run(text, SimClock(D0 - 0.5, D0 + 6 * 3600 + 0.5), {"steady": steady}, tmp_path / "s",
        lambda: hourly() >= 12, "six hourly summaries of each channel")
    assert "2026-11-01" not in reports()
    restart = D0 + 3 * 86400 + 5 * 3600
    run(text, SimClock(restart - 0.5, restart + 3600.5), {"steady": steady}, tmp_path / "s",
        lambda: {"2026-11-01", "2026-11-02", "2026-11-03"} <= set(reports()),
        "the reports of the days missed")
    got = reports()
    first = got["2026-11-01"]
    assert first["channels"]["logger/ch1"]["valid"] == 37  # 08:00 … 14:00 inclusive
    assert first["missing"] == 2 * (144 - 37)
    for date in ("2026-11-02", "2026-11-03"):
        r = got[date]
        assert (r["expected"], r["missing"], r["fr"]) == (2 * 144, 2 * 144, 1.0)
        assert (r["running_s"], r["not_running_s"]) == (0, 86400)
        assert r["units"]["logger"]["online_rate"] == 0.0
    assert "2026-11-04" not in got  # the day under way


def test_the_reports_leave_even_with_no_poll_to_carry_them(
        broker: Broker, subscriber: Subscriber, tmp_path: Path) -> None:
    """A logger scanned every 4 h (00:00, 04:00 … UTC) restarted at 05:00 UTC: its next
    scan is three hours away, and the reports of the days missed leave at once all the
    same (the pipeline commits what the processing has queued even without a poll)."""
    devices = {"logger": {"driver": "scripted", "interval": "4h",
                          "options": {"case": "steady", "channels": 2, "unit": "m"}}}
    chains = {f"logger/ch{c}": {"summaries": ["1d"]} for c in (1, 2)}
    text = config(broker, devices, chains)

    def reports() -> dict[str, dict[str, Any]]:
        return {r["report"]["date"]: r["report"] for m in subscriber.payloads("/report/")
                for r in m["readings"]}

    run(text, SimClock(D0 - 0.5, D0 + 4 * 3600 + 0.5), {"steady": steady}, tmp_path / "s",
        lambda: sum(len(m["readings"]) for m in subscriber.payloads("/data/")) >= 4,
        "two scans")
    restart = D0 + 3 * 86400 + 5 * 3600
    run(text, SimClock(restart - 0.5, restart + 3600.5), {"steady": steady}, tmp_path / "s",
        lambda: {"2026-11-01", "2026-11-02", "2026-11-03"} <= set(reports()),
        "the reports of the days missed, with no scan")
    got = reports()
    assert got["2026-11-01"]["channels"]["logger/ch1"] == {
        "expected": 6, "valid": 2, "gaps": 0, "missing": 4, "fr": 4 / 6}
    assert got["2026-11-02"]["fr"] == got["2026-11-03"]["fr"] == 1.0
