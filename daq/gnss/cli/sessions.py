"""``daq gnss sessions`` and ``daq gnss export``: list recorded GNSS sessions, export one
as RINEX 3.04 observation + navigation files.

Sessions live under ``<state dir>/gnss/``. Both commands open the store read-only, so they
are safe while the daemon is writing. Exit codes: 0 ok, 1 runtime failure (e.g. cannot
write the RINEX files, a state directory this user may not read: who may is said),
2 bad input (unknown state dir, malformed or unknown session id).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daq.access import denied, present, refused
from daq.gnss.gnss_config import POINT_RE
from daq.tables import render

if TYPE_CHECKING:   # the store (numpy) loads in the commands: `daq --help` stays light
    from daq.gnss.sessions.store import SessionStore

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2


def _default_state_dir() -> str:
    return os.environ.get("STATE_DIRECTORY", "/var/lib/daq")


def _store(args: argparse.Namespace) -> SessionStore | int:
    """The session store, or the exit code after saying why there is none. Who may read
    it is checked before the store (numpy) is loaded."""
    state = Path(args.state_dir)
    if not present(state):
        print(f"daq: state directory {state} does not exist (give --state-dir)",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    why = refused(state / "gnss", os.R_OK | os.X_OK)
    if why is not None:
        print(f"daq: cannot read the GNSS sessions {state / 'gnss'}: {why}", file=sys.stderr)
        return EXIT_FAILURE
    if not state.is_dir():
        print(f"daq: {state} is not a directory (give --state-dir)", file=sys.stderr)
        return EXIT_BAD_INPUT
    from daq.gnss.sessions.store import SessionStore

    return SessionStore(state / "gnss", readonly=True)


def _unreadable(err: PermissionError) -> int:
    """A session file deeper in the store this user may not read (its directory they may)."""
    name = err.filename or "a file of the session store"
    print(f"daq: cannot read {name}: {denied(name)}", file=sys.stderr)
    return EXIT_FAILURE


def run_sessions(args: argparse.Namespace) -> int:
    """List sessions: a table, or JSON with ``--json``."""
    if args.point is not None and not POINT_RE.match(args.point):
        print(f"daq: bad point name {args.point!r}", file=sys.stderr)
        return EXIT_BAD_INPUT
    store = _store(args)
    if isinstance(store, int):
        return store
    try:
        infos = store.list(args.point) if store.root.is_dir() else []
    except PermissionError as err:
        return _unreadable(err)
    if args.json:
        print(json.dumps([i.to_json() for i in infos], indent=1))
        return EXIT_OK
    if not infos:
        print(f"no GNSS sessions under {store.root}"
              + (f" for point {args.point}" if args.point else ""))
        return EXIT_OK
    rows: list[list[Any]] = []
    for i in infos:
        span = (f"{i.first:%H:%M:%S}–{i.last:%H:%M:%S}" if i.first and i.last else "-")
        sats = " ".join(f"{k}{v}" for k, v in i.satellites.items())
        rows.append([i.id, i.state, i.epochs, span, i.interval_s, sats, len(i.gaps),
                     i.ephemerides, round(i.size / 1024)])
    print(render(["session", "state", "epochs", "span (UTC)", "interval s",
                  "satellites", "gaps", "eph", "kB"], rows))
    return EXIT_OK


def run_export(args: argparse.Namespace) -> int:
    """Export one session to ``--rinex DIR`` as RINEX 3.04 obs + nav."""
    store = _store(args)  # first: a state directory this user may not read is said so
    if isinstance(store, int):
        return store
    from daq.gnss.sessions.store import parse_session_id

    try:
        parse_session_id(args.session)
    except ValueError as err:
        print(f"daq: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        obs_path, nav_path = store.export(args.session, args.rinex)
    except KeyError:
        print(f"daq: no session {args.session} under {store.root} "
              "(see 'daq gnss sessions')", file=sys.stderr)
        return EXIT_BAD_INPUT
    except PermissionError as err:
        if err.filename and Path(err.filename).is_relative_to(store.root):
            return _unreadable(err)
        print(f"daq: cannot write RINEX files to {args.rinex}: "
              f"{denied(err.filename or args.rinex, os.W_OK)}", file=sys.stderr)
        return EXIT_FAILURE
    except OSError as err:
        print(f"daq: cannot write RINEX files to {args.rinex}: {err}", file=sys.stderr)
        return EXIT_FAILURE
    print(obs_path)
    print(nav_path)
    return EXIT_OK


def register(gnss_subparsers: Any) -> None:
    """Add ``sessions`` and ``export`` to the ``daq gnss`` subcommands."""
    s = gnss_subparsers.add_parser("sessions", help="list recorded GNSS sessions")
    s.add_argument("--point", help="only this monitoring point")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.add_argument("--state-dir", default=_default_state_dir(), metavar="DIR",
                   help="the daemon's state directory (sessions under DIR/gnss/)")
    s.set_defaults(func=run_sessions)

    e = gnss_subparsers.add_parser("export", help="export a session as RINEX 3.04 obs + nav")
    e.add_argument("session", metavar="SESSION", help="session id, e.g. P01/20220225T1200Z")
    e.add_argument("--rinex", required=True, metavar="DIR", help="output directory")
    e.add_argument("--state-dir", default=_default_state_dir(), metavar="DIR",
                   help="the daemon's state directory (sessions under DIR/gnss/)")
    e.set_defaults(func=run_export)
