"""daq.testing.ModbusTestServer: the helper other tests build on behaves as documented."""

from __future__ import annotations

import pytest

from daq.errors import NoResponse, ProtocolError
from daq.modbus import decode, read_registers
from daq.testing import ModbusTestServer


@pytest.mark.parametrize("make", [ModbusTestServer.tcp, ModbusTestServer.rtu])
def test_values_mute_unmute_and_request_log(make):
    with make(units=(1, 7)) as srv:
        client = srv.client(timeout=0.2)
        try:
            srv.set_value(7, 10, 81.99, "float32", "little", kind="input")
            words = read_registers(client, "input", 10, 2, 7)
            assert decode(words, "float32", "little") == pytest.approx(81.99, abs=1e-5)
            srv.mute(7)
            with pytest.raises(NoResponse):
                read_registers(client, "input", 10, 2, 7)
            assert read_registers(client, "holding", 0, 1, 1) == [0]  # others still answer
            srv.unmute(7)
            assert read_registers(client, "input", 10, 2, 7) == words
            with pytest.raises(NoResponse):
                read_registers(client, "holding", 0, 1, 3)  # not on the line: silence
            with pytest.raises(ProtocolError):
                read_registers(client, "holding", srv.size - 1, 2, 1)  # beyond the map
        finally:
            client.close()
        assert [(r.unit, r.function_code) for r in srv.requests] == [
            (7, 4), (7, 4), (1, 3), (7, 4), (3, 3), (1, 3)]
        assert len(srv.requests_for(7)) == 3


def test_two_servers_run_side_by_side_on_their_own_ports():
    with ModbusTestServer.tcp() as a, ModbusTestServer.tcp() as b:
        a.set_value(1, 0, 1)
        b.set_value(1, 0, 2)
        ca, cb = a.client(), b.client()
        try:
            assert a.port != b.port
            assert read_registers(ca, "holding", 0, 1, 1) == [1]
            assert read_registers(cb, "holding", 0, 1, 1) == [2]
        finally:
            ca.close()
            cb.close()


def test_writes_from_a_client_land_in_the_register_store():
    with ModbusTestServer.tcp() as srv:
        client = srv.client()
        try:
            client.write_registers(5, [11, 12], device_id=1)
        finally:
            client.close()
        assert srv.get_registers(1, 5, 2) == [11, 12]


def test_setting_registers_outside_the_map_is_refused():
    with ModbusTestServer.tcp(size=10) as srv, pytest.raises(IndexError):
        srv.set_registers(1, 9, [1, 2])
