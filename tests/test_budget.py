"""The bus wire budget, checked against the measured limits in FIELD-NOTES.md."""

from __future__ import annotations

import textwrap

import pytest

from daq import config
from daq.budget import bus_budget, transaction_seconds
from daq.bus import next_slot


def bus(baud: int, parity: str = "N") -> config.BusConfig:
    return config.BusConfig("b", "modbus_rtu", "/dev/null", baud, 8, parity, 1, 0.5, 0, ())


@pytest.mark.parametrize("baud,regs,per_s", [
    (9600, 2, 40), (9600, 10, 24), (9600, 60, 6.9),
    (19200, 2, 80), (19200, 10, 48), (19200, 60, 13.7),
    (115200, 2, 201), (115200, 10, 157), (115200, 60, 66),
])
def test_transaction_rate_matches_field_notes(baud: int, regs: int, per_s: float) -> None:
    """Read-holding-registers transactions/s at 8N1 within 3 % of the measured table."""
    assert 1 / transaction_seconds(bus(baud), regs) == pytest.approx(per_s, rel=0.03)


def test_parity_costs_about_ten_percent() -> None:
    ratio = transaction_seconds(bus(9600, "E"), 10) / transaction_seconds(bus(9600), 10)
    assert ratio == pytest.approx(1.1, abs=0.01)


def test_thirty_devices_at_1hz_do_not_fit_a_9600_line() -> None:
    """daq check says so: 30 devices × 10 registers at 1 Hz on 9600 baud is over budget
    (24 transactions/s fit), while 115200 baud carries them easily."""
    devices = "\n".join(
        f"      d{i}: {{driver: modbus, address: {i + 1}, interval: 1s, options: "
        "{registers: [" + ", ".join(f"{{name: r{j}, address: {2 * j}, type: float32}}"
                                    for j in range(5)) + "]}}" for i in range(30))
    text = textwrap.dedent("""\
        site: s
        rtu: r
        buses:
          rs485:
            protocol: modbus_rtu
            url: /dev/ttyUSB0
            baudrate: 9600
            devices:
        """) + devices + "\n"
    cfg = config.loads(text)
    b = bus_budget(cfg.buses[0], cfg.drivers)
    assert b["verdict"] == "over budget" and b["load"] == pytest.approx(30 / 24, rel=0.05)
    fast = config.loads(text.replace("9600", "115200"))
    assert bus_budget(fast.buses[0], fast.drivers)["verdict"] == "ok"


@pytest.mark.parametrize("now,interval,expected", [
    (1000.2, 1.0, 1001.0), (1000.0, 1.0, 1001.0), (1_700_000_123.0, 600.0, 1_700_000_400.0),
    (7199.9, 14400.0, 14400.0),
])
def test_schedule_aligns_to_the_wall_clock(now: float, interval: float, expected: float
                                           ) -> None:
    """A 10-minute scan fires at :00, :10 …; the next slot is always strictly later."""
    assert next_slot(now, interval) == expected
