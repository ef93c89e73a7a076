"""The rain-gauge driver: counts, rollovers and resets against a real TCP server."""

from __future__ import annotations

import pytest

from daq.model import Quality
from daq.testing import build_driver
from daq_drivers.rain_gauge import RainGaugeDriver


def _driver(dtype: str = "uint16", **extra: object) -> RainGaugeDriver:
    drv = build_driver(RainGaugeDriver, {"counter": {"address": 0, "kind": "input",
                                                     "type": dtype}, **extra}, address=1)
    assert isinstance(drv, RainGaugeDriver)
    return drv


def _poll(srv, client, drv, count, dtype="uint16"):
    srv.set_value(1, 0, count, dtype, kind="input")
    return {v.channel: v for v in drv.poll(client)}


def test_first_poll_takes_the_baseline(tcp_server, tcp_client):
    out = _poll(tcp_server, tcp_client, _driver(), 1234)
    assert (out["tips"].value, out["rain_total"].value) == (0.0, 0.0)
    assert out["tips"].flags == ("baseline",)
    assert out["tips"].raw == {"count": 1234}


def test_tips_become_interval_and_total_rain(tcp_server, tcp_client):
    drv = _driver()
    for count in (100, 105, 105, 117):
        out = _poll(tcp_server, tcp_client, drv, count)
    assert out["tips"].value == 12
    assert out["rain_interval"].value == pytest.approx(2.4)
    assert out["rain_total"].value == pytest.approx(17 * 0.2)
    assert out["rain_total"].quality is Quality.GOOD


@pytest.mark.parametrize(("dtype", "before", "after", "tips"), [
    ("uint16", 65530, 4, 10),
    ("uint32", 4_294_967_290, 3, 9),
])
def test_counter_rollover_is_counted_and_flagged(tcp_server, tcp_client, dtype, before,
                                                 after, tips):
    drv = _driver(dtype)
    _poll(tcp_server, tcp_client, drv, before, dtype)
    out = _poll(tcp_server, tcp_client, drv, after, dtype)
    assert out["tips"].value == tips
    assert out["tips"].flags == ("rollover",)
    assert drv.rollovers == 1 and drv.resets == 0


def test_power_cycle_reset_is_told_apart_when_configured(tcp_server, tcp_client):
    drv = _driver(max_tips_per_poll=1000)
    _poll(tcp_server, tcp_client, drv, 30000)
    out = _poll(tcp_server, tcp_client, drv, 3)   # rollover would mean 35539 tips
    assert out["tips"].value == 3
    assert out["tips"].flags == ("counter_reset",)
    assert out["rain_total"].value == pytest.approx(0.6)
    assert (drv.resets, drv.rollovers) == (1, 0)
    out = _poll(tcp_server, tcp_client, drv, 5003)  # 5000 tips in one poll: a jump
    assert out["tips"].flags == ("implausible",) and out["tips"].quality is Quality.SUSPECT


def test_without_reset_detection_every_decrease_is_a_rollover(tcp_server, tcp_client):
    drv = _driver()
    _poll(tcp_server, tcp_client, drv, 30000)
    out = _poll(tcp_server, tcp_client, drv, 3)
    assert out["tips"].value == 3 + 65536 - 30000 and drv.rollovers == 1


def test_a_silent_poll_leaves_the_state_for_the_next_answer(tcp_server, tcp_client):
    drv = _driver()
    _poll(tcp_server, tcp_client, drv, 10)
    tcp_server.mute(1)
    with pytest.raises(Exception):  # noqa: B017 - NoResponse; the state is what matters
        _poll(tcp_server, tcp_client, drv, 20)
    tcp_server.unmute(1)
    assert _poll(tcp_server, tcp_client, drv, 25)["tips"].value == 15


def test_sample_yaml_is_valid_and_builds(sample_driver):
    drv = sample_driver(RainGaugeDriver, "rain_gauge")
    assert [c.name for c in drv.channels] == ["tips", "rain_interval", "rain_total"]
