"""Simulated sensors behind a pyserial URL handler: ``sim://NAME?seed=N&dropout=P&spikes=P``.

Importing this package appends ``"daq.sim"`` to ``serial.protocol_handler_packages``, so
``serial.serial_for_url("sim://reservoir")`` (and pymodbus's ``ModbusSerialClient``) reach
the simulated RS-485 line of :mod:`daq.sim.protocol_sim`. The model behind it is
:class:`Reservoir`, a pure function of (seed, time); see ``daq/sim/README.md``.
"""

import serial

from .protocol_sim import SimLine, line
from .reservoir import Reservoir, Truth

if "daq.sim" not in serial.protocol_handler_packages:
    serial.protocol_handler_packages.append("daq.sim")

__all__ = ["Reservoir", "SimLine", "Truth", "line"]
