"""One daemon per state directory: an exclusive ``flock`` on ``daq.lock``.

Two daemons on one outbox would hand the same ``(rtu, channel, seq)`` to different
readings. The kernel releases the lock when the holder dies, even by ``kill -9``, so a
stale lock never blocks a restart; the file keeps the holder's PID for the message.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_NAME = "daq.lock"


class StateDirInUse(OSError):
    """Another process holds the state directory's lock."""


def lock_state_dir(state_dir: Path) -> int:
    """Take the lock or raise :class:`StateDirInUse` naming the holder; returns the open
    descriptor, which must stay open for as long as the daemon runs."""
    path = state_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise StateDirInUse(
            f"state directory {state_dir} is in use by another daq process (pid {holder}); "
            "stop it first, or give this one its own --state-dir") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def held_by_other(state_dir: Path) -> bool | None:
    """True when a running daemon holds the lock, False when none does, None when there
    is no lock file (an older daemon, or never started here)."""
    try:
        fd = os.open(state_dir / LOCK_NAME, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
