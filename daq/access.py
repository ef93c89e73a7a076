"""Why this user may not open a file of the daemon's, and what to do about it, in words.

A technician's command (``daq status``, ``daq buffer``, ``daq read`` …) run as a user
outside the daemon's group meets "Permission denied" on the state directory, the status
file or the control socket. :func:`denied` finds which part of the path stops this user
(a directory they may not enter, or the file itself), who owns it, and says which group
to join or to use ``sudo``. Standard library only: ``daq status`` stays light.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
from pathlib import Path


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def present(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` exists, True when a directory on the way may not be entered: the
    daemon may well be there, and opening it then says who may."""
    try:
        os.stat(path)
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def blocker(path: str | os.PathLike[str], mode: int = os.R_OK) -> tuple[Path, int]:
    """(what stops this user, the right it lacks) for ``path``: the first directory on the
    way they may not enter (os.X_OK), else the file itself (``mode``); for a file still to
    be written, its directory (os.W_OK). Links are followed: the status file links to a
    tmpfs."""
    target = Path(os.path.realpath(os.path.abspath(path)))
    for d in reversed(target.parents):
        if not os.access(d, os.X_OK):
            return d, os.X_OK
    if mode & os.W_OK and not os.path.lexists(target):
        return target.parent, os.W_OK
    return target, mode


_BITS = {os.R_OK: stat.S_IRGRP, os.W_OK: stat.S_IWGRP, os.X_OK: stat.S_IXGRP}


def denied(path: str | os.PathLike[str], mode: int = os.R_OK) -> str:
    """``permission denied: the directory /var/lib/daq is drwxr-x--- daq:daq and you are
    alice; members of group daq may: …`` — join the owning group when it has the rights
    (``mode``: os.R_OK, os.W_OK or both), else ``sudo``."""
    me = _user(os.geteuid())
    where, need = blocker(path, mode)
    try:
        st = os.stat(where)
    except OSError:
        return f"permission denied on {path} (you are {me}): run the command with sudo"
    owner, group = _user(st.st_uid), _group(st.st_gid)
    kind = "the directory" if stat.S_ISDIR(st.st_mode) else (
        "the socket" if stat.S_ISSOCK(st.st_mode) else "the file")
    what = f"{kind} {where}"
    if where != Path(os.path.abspath(path)):
        what += (f" (on the way to {path})" if need == os.X_OK else
                 f" (to write {path} in)" if stat.S_ISDIR(st.st_mode) else
                 f" ({path} links there)")
    group_may = all(st.st_mode & bit for m, bit in _BITS.items() if need & m)
    head = (f"permission denied: {what} is {stat.filemode(st.st_mode)} {owner}:{group} "
            f"and you are {me}")
    if group_may and st.st_gid != 0:
        return (f"{head}; members of group {group} may: `sudo usermod -aG {group} {me}`, "
                "then log in again, or run the command with sudo")
    return f"{head}; only {owner} may: run the command with sudo"
