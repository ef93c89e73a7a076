"""Fixtures shared by the driver tests: real pymodbus servers and connected clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from daq.driver import Driver
from daq.schema import load_yaml
from daq.testing import ModbusTestServer, build_driver

DRIVERS = Path(__file__).parent


@pytest.fixture
def tcp_server() -> Iterator[ModbusTestServer]:
    """A pymodbus TCP server on a free loopback port serving units 1 and 2."""
    with ModbusTestServer.tcp(units=(1, 2)) as srv:
        yield srv


@pytest.fixture
def tcp_client(tcp_server: ModbusTestServer) -> Iterator[Any]:
    """A connected ModbusTcpClient (0.3 s timeout, no retries) for ``tcp_server``."""
    client = tcp_server.client(timeout=0.3)
    yield client
    client.close()


@pytest.fixture
def sample_driver() -> Callable[[type[Driver], str], Driver]:
    """Build a driver from ``drivers/<folder>/sample.yaml`` (fails on any schema problem)."""
    def build(driver_cls: type[Driver], folder: str) -> Driver:
        doc = load_yaml((DRIVERS / folder / "sample.yaml").read_text())
        return build_driver(driver_cls, doc.get("options"), doc.get("address", 1), folder)
    return build
