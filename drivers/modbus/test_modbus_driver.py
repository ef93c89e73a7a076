"""The generic Modbus driver against real pymodbus servers (TCP on loopback, RTU on a pty)."""

from __future__ import annotations

import math

import pytest

from daq.errors import ConfigError, NoResponse, ProtocolError
from daq.model import Quality
from daq.testing import ModbusTestServer, build_driver
from daq_drivers.modbus import ModbusDriver, RegisterRef, plan_reads

# (type, word order, value written, expected decoded value, tolerance)
CASES = [
    ("int16", "big", -12345, -12345, 0),
    ("uint16", "big", 54321, 54321, 0),
    ("int32", "big", -123456789, -123456789, 0),
    ("int32", "little", -123456789, -123456789, 0),
    ("uint32", "big", 3_000_000_000, 3_000_000_000, 0),
    ("uint32", "little", 3_000_000_000, 3_000_000_000, 0),
    ("float32", "big", 81.99, 81.99, 1e-5),
    ("float32", "little", -0.0123, -0.0123, 1e-9),
    ("float32", "BADC", 81.99, 81.99, 1e-5),
    ("float32", "DCBA", -7.25, -7.25, 0),
    ("int32", "BADC", -2, -2, 0),
    ("uint32", "DCBA", 0x01020304, 0x01020304, 0),
    ("int64", "ABCD", -(2**62) - 5, -(2**62) - 5, 0),
    ("int64", "CDAB", -1234567890123, -1234567890123, 0),
    ("uint64", "BADC", 2**64 - 2, 2**64 - 2, 0),
    ("uint64", "DCBA", 0x0102030405060708, 0x0102030405060708, 0),
    ("float64", "ABCD", 123.456789012345, 123.456789012345, 0),
    ("float64", "CDAB", -1e-300, -1e-300, 0),
    ("float64", "BADC", 6.02214076e23, 6.02214076e23, 0),
    ("float64", "DCBA", 3.141592653589793, 3.141592653589793, 0),
]

# byte-order vectors: the value 0x01020304 (and 0x0102030405060708) as a device sends it
ORDER_VECTORS = [
    ("uint32", "ABCD", [0x0102, 0x0304], 0x01020304),
    ("uint32", "CDAB", [0x0304, 0x0102], 0x01020304),
    ("uint32", "BADC", [0x0201, 0x0403], 0x01020304),
    ("uint32", "DCBA", [0x0403, 0x0201], 0x01020304),
    ("uint64", "ABCD", [0x0102, 0x0304, 0x0506, 0x0708], 0x0102030405060708),
    ("uint64", "CDAB", [0x0708, 0x0506, 0x0304, 0x0102], 0x0102030405060708),
    ("uint64", "BADC", [0x0201, 0x0403, 0x0605, 0x0807], 0x0102030405060708),
    ("uint64", "DCBA", [0x0807, 0x0605, 0x0403, 0x0201], 0x0102030405060708),
]


@pytest.mark.parametrize("dtype,order,words,value", ORDER_VECTORS)
def test_byte_order_vectors(dtype: str, order: str, words: list[int], value: int) -> None:
    from daq.modbus import decode, encode

    assert decode(words, dtype, order) == value
    assert encode(value, dtype, order) == words


def _layout() -> tuple[list[dict], int]:
    """Every case at its own address, packed back to back in holding registers."""
    regs, addr = [], 0
    for i, (dtype, order, *_) in enumerate(CASES):
        key = "word_order" if order in ("big", "little") else "byte_order"
        regs.append({"name": f"c{i}", "address": addr, "type": dtype, key: order})
        addr += {"16": 1, "32": 2, "64": 4}[dtype[-2:]]
    return regs, addr


def _check_all_types(srv: ModbusTestServer, client: object) -> None:
    regs, _ = _layout()
    for reg, (dtype, order, written, _, _) in zip(regs, CASES, strict=True):
        srv.set_value(1, reg["address"], written, dtype, order)
    drv = build_driver(ModbusDriver, {"registers": regs})
    values = {v.channel: v for v in drv.poll(client)}
    for i, (_, _, _, expected, tol) in enumerate(CASES):
        assert values[f"c{i}"].value == pytest.approx(expected, abs=tol)
        assert values[f"c{i}"].quality is Quality.GOOD


def test_every_type_and_word_order_decodes_over_tcp(tcp_server, tcp_client):
    _check_all_types(tcp_server, tcp_client)


def test_every_type_and_word_order_decodes_over_rtu_pty_and_dead_unit_is_silent():
    with ModbusTestServer.rtu(units=(1,)) as srv:
        client = srv.client(timeout=0.5)
        try:
            _check_all_types(srv, client)
            dead = build_driver(ModbusDriver, {"registers": [{"name": "x", "address": 0}]},
                                address=9)
            with pytest.raises(NoResponse):
                dead.poll(client)
        finally:
            client.close()


def test_contiguous_registers_of_one_kind_are_read_in_one_transaction(tcp_server, tcp_client):
    regs, _ = _layout()
    drv = build_driver(ModbusDriver, {"registers": regs})
    assert isinstance(drv, ModbusDriver)
    drv.poll(tcp_client)
    assert len(tcp_server.requests) == 1 == len(drv.transactions())
    assert tcp_server.requests[0].count == sum(
        {"16": 1, "32": 2, "64": 4}[c[0][-2:]] for c in CASES)


def test_scale_offset_unit_and_quantity_are_applied(tcp_server, tcp_client):
    tcp_server.set_value(1, 20, 215, "int16", kind="input")
    drv = build_driver(ModbusDriver, {"registers": [
        {"name": "t", "kind": "input", "address": 20, "type": "int16", "scale": 0.1,
         "offset": -1.5, "unit": "degC", "quantity": "water_temperature"}]})
    (v,) = drv.poll(tcp_client)
    assert v.value == pytest.approx(20.0)
    assert (v.unit, v.quantity, v.raw) == ("degC", "water_temperature", {"registers": [215]})


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_float_is_bad_not_finite(tcp_server, tcp_client, bad):
    tcp_server.set_value(1, 0, bad, "float32")
    drv = build_driver(ModbusDriver, {"registers": [
        {"name": "x", "address": 0, "type": "float32"}]})
    (v,) = drv.poll(tcp_client)
    assert (v.value, v.quality, v.flags) == (None, Quality.BAD, ("not_finite",))


def test_dead_unit_raises_no_response(tcp_server, tcp_client):
    drv = build_driver(ModbusDriver, {"registers": [{"name": "x", "address": 0}]}, address=9)
    with pytest.raises(NoResponse):
        drv.poll(tcp_client)


def test_muted_unit_raises_no_response_then_recovers(tcp_server, tcp_client):
    tcp_server.set_value(1, 0, 42)
    drv = build_driver(ModbusDriver, {"registers": [{"name": "x", "address": 0}]})
    tcp_server.mute(1)
    with pytest.raises(NoResponse):
        drv.poll(tcp_client)
    tcp_server.unmute(1)
    assert drv.poll(tcp_client)[0].value == 42


def test_address_beyond_device_map_raises_protocol_error(tcp_server, tcp_client):
    drv = build_driver(ModbusDriver, {"registers": [{"name": "x", "address": 5000}]})
    with pytest.raises(ProtocolError):
        drv.poll(tcp_client)


def test_plan_splits_at_gaps_kinds_and_125_registers():
    refs = [RegisterRef("holding", a, "uint16") for a in range(0, 200)]
    refs += [RegisterRef("holding", 300, "float32"), RegisterRef("input", 0, "uint32")]
    plan = [(r.kind, r.address, r.count) for r in plan_reads(refs)]
    assert plan == [("holding", 0, 125), ("holding", 125, 75), ("holding", 300, 2),
                    ("input", 0, 2)]


def test_overlapping_references_share_one_request():
    refs = [RegisterRef("input", 0, "uint32"), RegisterRef("input", 1, "uint16")]
    assert [(r.address, r.count) for r in plan_reads(refs)] == [(0, 2)]


def test_config_problems_are_all_reported():
    with pytest.raises(ConfigError) as err:
        build_driver(ModbusDriver, {"registers": [
            {"name": "a", "address": -1, "type": "float128"},
            {"name": "b", "address": 0, "word_ordr": "big"}]})
    paths = {p.path for p in err.value.problems}
    assert paths == {"options.registers[0].address", "options.registers[0].type",
                     "options.registers[1].word_ordr"}


def test_duplicate_channel_names_are_rejected():
    with pytest.raises(ConfigError, match="duplicate"):
        build_driver(ModbusDriver, {"registers": [{"name": "a", "address": 0},
                                                  {"name": "a", "address": 1}]})


def test_sample_yaml_is_valid_and_builds(sample_driver):
    drv = sample_driver(ModbusDriver, "modbus")
    assert [c.name for c in drv.channels] == ["level", "temperature", "flow_total",
                                              "pump_running", "door_open"]


def test_bits_need_type_bool_and_bool_needs_a_bit_kind():
    with pytest.raises(ConfigError) as err:
        build_driver(ModbusDriver, {"registers": [
            {"name": "a", "kind": "coil", "address": 0, "type": "float32"},
            {"name": "b", "address": 0, "type": "bool"}]})
    assert {p.path for p in err.value.problems} == {"registers[0].type", "registers[1].type"}


def test_sample_yaml_device_keys_are_valid():
    """The sample's device-level keys (timeout, pause, ...) pass the daemon's schema."""
    from pathlib import Path

    from daq.config_schema import DEVICE
    from daq.schema import Ctx, load_yaml

    doc = load_yaml((Path(__file__).parent / "sample.yaml").read_text())
    ctx = Ctx()
    out = DEVICE.check(doc, "dev", 1, ctx)
    assert not ctx.problems and out["pause"] == 0.0 and out["timeout"] == 0.3
