"""How issue 11's parts attach to a :class:`daq.daemon.Daemon`: one call, one place.

Each part wraps ``outbox.add`` (after the control socket's tap): the manual-readings and
alarm services see every committed reading or result; the field calibration, outermost,
corrects values before the commit, so everything after it sees corrected values.
"""

from __future__ import annotations

from typing import Any


def attach(daemon: Any) -> None:
    """Sets ``daemon.manual``, ``daemon.alarms`` (None when not configured) and
    ``daemon.fieldcal``, and registers their control-socket commands."""
    cfg, outbox, server = daemon.cfg, daemon.outbox, daemon.control.server
    daemon.manual = daemon.alarms = None
    alarms_cfg = cfg.alarms
    if cfg.manual is not None and cfg.manual.sensors:  # manual readings (daq/manual/)
        from ..manual.service import ManualService, with_manual_rules

        daemon.manual = ManualService(cfg.manual, outbox, cfg.rtu)
        daemon.manual.watch(outbox)
        daemon.manual.register(server)
        alarms_cfg = with_manual_rules(cfg.alarms, cfg.manual)
    if alarms_cfg is not None and alarms_cfg.rules:  # the alarm engine
        from .service import AlarmService

        def uplink() -> bool:
            return daemon.publisher is not None and bool(daemon.publisher.state.connected)

        daemon.alarms = AlarmService(alarms_cfg, outbox, on_event=daemon._wake_publisher,
                                     workers=daemon.workers, uplink=uplink)
        daemon.alarms.watch(outbox)  # every accepted reading or result
        daemon.alarms.register(server)
        if daemon.publisher is not None:
            daemon.publisher.retained = daemon.alarms.retained
    from ..fieldcal.service import FieldCalibration  # daq calibrate (daq/fieldcal/)

    daemon.fieldcal = FieldCalibration(outbox, daemon.pipeline.sensors)
    daemon.fieldcal.wrap(outbox)  # outermost
    daemon.fieldcal.register(server)
