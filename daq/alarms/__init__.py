"""Alarms: limits, rates and sensor faults with an operator's state model (issue 11).

:mod:`.alarm_config` (the ``alarms:`` section), :mod:`.engine` (the state machine, sans
I/O), :mod:`.store` (durable state and audit trail in the outbox's file), :mod:`.service`
(the daemon's side), :mod:`.cli` (``daq alarm``).
"""
