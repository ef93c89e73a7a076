"""The vibrating-wire logger driver against a real pymodbus TCP server."""

from __future__ import annotations

import math

import pytest

from daq.errors import ConfigError
from daq.model import Quality
from daq.testing import build_driver
from daq_drivers.vw_logger import VWLoggerDriver, wire_to_hz


def _set_channel(srv, ch, freq=2828.427, ohm=3000.0, amp=1.2, snr=35.0, base=0):
    a = base + 8 * (ch - 1)
    for off, v in ((0, freq), (2, ohm), (4, amp), (6, snr)):
        srv.set_value(2, a + off, v, "float32")


def _by_name(values):
    return {v.channel: v for v in values}


def test_default_map_reads_nine_channels_in_one_transaction(tcp_server, tcp_client):
    for ch in range(1, 10):
        _set_channel(tcp_server, ch, freq=2000.0 + ch, ohm=3000.0 + ch)
    drv = build_driver(VWLoggerDriver, {"count": 9}, address=2)
    out = _by_name(drv.poll(tcp_client))
    assert len(tcp_server.requests) == 1 and tcp_server.requests[0].count == 72
    assert out["ch07.freq"].value == pytest.approx(2007.0)
    assert out["ch07.therm"].value == pytest.approx(3007.0)
    assert out["ch09.snr"].value == pytest.approx(35.0)
    assert (out["ch01.freq"].unit, out["ch01.therm"].unit) == ("Hz", "ohm")
    assert len(out) == 9 * 4 == len(drv.channels)


@pytest.mark.parametrize(("form", "served"), [
    ("frequency", 3000.0),
    ("period", 1e6 / 3000.0),     # µs
    ("digits", 9000.0),           # f²/1000 (DOMAIN D2)
    ("lc2", 9.0),                 # f²·10⁻⁶ (DOMAIN D6)
])
def test_every_wire_form_is_returned_in_hz_with_raw_kept(tcp_server, tcp_client, form, served):
    tcp_server.set_value(2, 100, served, "float32", "little", kind="input")
    drv = build_driver(VWLoggerDriver, {"kind": "input", "channels": [
        {"ch": 3, "wire": {"address": 100, "form": form, "word_order": "little"}}]}, address=2)
    (freq,) = drv.poll(tcp_client)
    assert freq.channel == "ch03.freq"
    assert freq.value == pytest.approx(3000.0, rel=1e-6)
    assert freq.raw is not None and freq.raw[form] == pytest.approx(served, rel=1e-6)


def test_integer_digits_with_scale_convert_to_hz(tcp_server, tcp_client):
    tcp_server.set_value(2, 0, 80000, "uint32")  # digits × 10
    drv = build_driver(VWLoggerDriver, {"channels": [
        {"ch": 1, "wire": {"address": 0, "form": "digits", "type": "uint32", "scale": 0.1}}]},
        address=2)
    assert drv.poll(tcp_client)[0].value == pytest.approx(2828.427, abs=0.001)  # DOMAIN D1


@pytest.mark.parametrize(("freq", "value"), [(0.0, 0.0), (math.nan, None), (-5.0, 0.0)])
def test_no_wire_signal_is_bad_no_signal(tcp_server, tcp_client, freq, value):
    _set_channel(tcp_server, 1, freq=freq)
    out = _by_name(build_driver(VWLoggerDriver, {"count": 1}, address=2).poll(tcp_client))
    assert (out["ch01.freq"].quality, out["ch01.freq"].flags) == (Quality.BAD, ("no_signal",))
    assert out["ch01.freq"].value == value


@pytest.mark.parametrize("ohm", [2.0e6, 0.0, -1.0, math.inf])
def test_open_thermistor_is_bad_open_circuit(tcp_server, tcp_client, ohm):
    _set_channel(tcp_server, 1, ohm=ohm)
    out = _by_name(build_driver(VWLoggerDriver, {"count": 1}, address=2).poll(tcp_client))
    assert (out["ch01.therm"].quality, out["ch01.therm"].flags) == (Quality.BAD,
                                                                    ("open_circuit",))
    assert out["ch01.freq"].quality is Quality.GOOD


def test_signal_quality_below_thresholds_makes_frequency_suspect(tcp_server, tcp_client):
    _set_channel(tcp_server, 1, amp=0.1, snr=12.0)
    _set_channel(tcp_server, 2, amp=0.5, snr=30.0)
    opts = {"count": 2, "map": {"wire": {"offset": 0}, "therm": {"offset": 2},
                                "amplitude": {"offset": 4, "min": 0.2},
                                "snr": {"offset": 6, "min": 20.0}}}
    out = _by_name(build_driver(VWLoggerDriver, opts, address=2).poll(tcp_client))
    assert out["ch01.freq"].quality is Quality.SUSPECT
    assert out["ch01.freq"].flags == ("amplitude_low", "snr_low")
    assert out["ch01.freq"].value == pytest.approx(2828.427, abs=1e-3)
    assert out["ch02.freq"].quality is Quality.GOOD


def test_decay_ratio_above_maximum_is_flagged_high(tcp_server, tcp_client):
    _set_channel(tcp_server, 1)
    tcp_server.set_value(2, 200, 0.95, "float32")
    opts = {"count": 1, "channels": [{"ch": 1, "decay": {"address": 200, "max": 0.9}}]}
    out = _by_name(build_driver(VWLoggerDriver, opts, address=2).poll(tcp_client))
    assert out["ch01.freq"].flags == ("decay_high",)
    assert out["ch01.decay"].value == pytest.approx(0.95)
    assert len(tcp_server.requests) == 2  # the decay register is not contiguous


def test_logger_without_channels_is_a_config_error():
    with pytest.raises(ConfigError, match="no channels"):
        build_driver(VWLoggerDriver, {}, address=2)


def test_explicit_channel_without_wire_register_is_a_config_error():
    with pytest.raises(ConfigError, match="no wire register"):
        build_driver(VWLoggerDriver, {"channels": [{"ch": 4, "therm": {"address": 0}}]})


def test_map_offsets_past_the_stride_are_a_config_error():
    with pytest.raises(ConfigError) as err:
        build_driver(VWLoggerDriver, {"count": 4, "stride": 4})  # default map needs 8
    assert {p.path for p in err.value.problems} == {"map.amplitude.offset", "map.snr.offset"}


def test_misspelt_form_gets_a_hint():
    with pytest.raises(ConfigError) as err:
        build_driver(VWLoggerDriver, {"channels": [{"ch": 1, "wire": {"address": 0,
                                                                      "form": "digit"}}]})
    (problem,) = err.value.problems
    assert problem.path == "options.channels[0].wire.form"
    assert problem.hint == "did you mean 'digits'?"


def test_wire_conversions_match_domain_cases():
    assert wire_to_hz(8000.0, "digits") == pytest.approx(2828.427, abs=1e-3)
    assert wire_to_hz(353.5534, "period") == pytest.approx(2828.427, abs=1e-3)
    assert math.isnan(wire_to_hz(0.0, "frequency"))


def test_sample_yaml_is_valid_and_builds(sample_driver):
    drv = sample_driver(VWLoggerDriver, "vw_logger")
    assert len(drv.channels) == 36
