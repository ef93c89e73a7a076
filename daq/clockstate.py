"""The system clock's sync state as the kernel sees it (what ``timedatectl`` reports).

``adjtimex(2)`` in read-only mode (modes = 0) gives the clock state, the NTP status bits
(STA_UNSYNC) and the estimated and maximum error; systemd-timesyncd also leaves a flag file.
"""

from __future__ import annotations

import ctypes
import os
from typing import Any

TIME_STATES = {0: "ok", 1: "leap second insert", 2: "leap second delete",
               3: "leap second in progress", 4: "leap second done", 5: "not synchronised"}
STA_UNSYNC = 0x0040
TIMESYNC_FLAG = "/run/systemd/timesync/synchronized"


class _Timex(ctypes.Structure):
    _fields_ = [("modes", ctypes.c_uint), ("offset", ctypes.c_long),
                ("freq", ctypes.c_long), ("maxerror", ctypes.c_long),
                ("esterror", ctypes.c_long), ("status", ctypes.c_int),
                ("constant", ctypes.c_long), ("precision", ctypes.c_long),
                ("tolerance", ctypes.c_long), ("tv_sec", ctypes.c_long),
                ("tv_usec", ctypes.c_long), ("tick", ctypes.c_long),
                ("pad", ctypes.c_byte * 256)]


def clock_state() -> dict[str, Any]:
    """``synchronised`` True/False/None (unknown) with the kernel's figures when readable."""
    out: dict[str, Any] = {"synchronised": None, "source": None}
    if os.path.exists(TIMESYNC_FLAG):
        out.update(synchronised=True, source="systemd-timesyncd")
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        tx = _Timex()
        state = libc.adjtimex(ctypes.byref(tx))
    except (OSError, AttributeError):
        return out
    if state < 0:
        return out
    unsync = state == 5 or bool(tx.status & STA_UNSYNC)
    out.update(kernel_state=TIME_STATES.get(state, str(state)),
               max_error_ms=round(tx.maxerror / 1000, 3),
               est_error_ms=round(tx.esterror / 1000, 3))
    if out["source"] is None:
        out.update(synchronised=not unsync, source="adjtimex")
    return out
