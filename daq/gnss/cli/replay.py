"""``daq gnss replay``: play a GNSS receiver without one, to test a configuration.

Sources: a raw log (RTCM 3 / UBX / NMEA as recorded; timed by its observation epochs) or
a RINEX session (``--rinex OBS --nav NAV [--xyz X,Y,Z]``) sent as a reference station's
RTCM 3 MSM7 with ephemerides and 1005. Destinations (``--to``): ``pty`` (a new
pseudo-terminal: its path is printed on the first line of stdout; point the daemon's GNSS
port at it), ``tcpsvr://[HOST]:PORT`` (a TCP server, as RTKLIB's str2str), or a serial
device / pyserial URL (``/dev/ttyUSB1``, ``socket://host:port``, ``rfc2217://…``).
``--speed 60`` plays sixty times faster than recorded; ``--loop`` starts over at the end.

Examples::

    daq gnss replay base.rtcm3 --to pty --speed 10
    daq gnss replay --rinex rover.obs --nav base.nav --to tcpsvr://:2101 --loop

Exit codes: 0 played to the end (or stopped with Ctrl-C), 1 the destination failed,
2 bad arguments or unreadable input.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daq.gnss.replay.outputs import Output, PtyWriter, open_output, wait_for_reader

if TYPE_CHECKING:   # the player (numpy, RINEX) loads in run(): `daq --help` stays light
    from daq.gnss.replay.player import Chunk

PROG = "daq gnss replay"


def register(gnss_subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``replay`` sub-command to the ``daq gnss`` sub-parsers."""
    p: argparse.ArgumentParser = gnss_subparsers.add_parser(
        "replay", help="play a raw log or a RINEX session as a simulated receiver",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", metavar="FILE", nargs="?", help="raw log (RTCM 3 / UBX / NMEA)")
    p.add_argument("--rinex", metavar="OBS", help="RINEX observation file to send as RTCM 3")
    p.add_argument("--nav", action="append", default=[], metavar="NAV",
                   help="RINEX navigation file for --rinex (repeat for several)")
    p.add_argument("--xyz", help="station ECEF X,Y,Z in metres for 1005 (default: the "
                   "RINEX header's approximate position; write --xyz=X,Y,Z if X < 0)")
    p.add_argument("--systems", default="GEC", help="--rinex systems: G, E, C ('GEC')")
    p.add_argument("--msm", type=int, default=7, choices=(4, 7), help="MSM4 or MSM7 (7)")
    p.add_argument("--to", default="pty", help="pty | tcpsvr://[HOST]:PORT | device | URL")
    p.add_argument("--speed", type=float, default=1.0,
                   help="times faster than real time (1); 'inf' for no pacing")
    p.add_argument("--start", type=float, default=0.0,
                   help="seconds of data to skip from the beginning (0)")
    p.add_argument("--loop", action="store_true", help="start over at the end")
    p.add_argument("--wait-reader", type=float, default=None, metavar="SECONDS",
                   help="with --to pty: wait up to SECONDS for the port to be opened")
    p.set_defaults(func=run)
    return p


def _fail(msg: str) -> int:
    print(f"{PROG}: {msg}", file=sys.stderr)
    return 2


def _xyz(text: str) -> tuple[float, float, float]:
    parts = [float(v) for v in text.replace(" ", "").split(",")]
    if len(parts) != 3 or not all(math.isfinite(v) for v in parts):
        raise ValueError("--xyz needs three numbers X,Y,Z")
    return parts[0], parts[1], parts[2]


def _source(args: argparse.Namespace) -> tuple[bytes | Iterable[Chunk], str]:
    """The replay source and its name; raises ValueError/OSError on bad input."""
    from daq.gnss.replay.player import rinex_to_rtcm

    if bool(args.file) == bool(args.rinex):
        raise ValueError("give either FILE or --rinex OBS")
    if args.file:
        return Path(args.file).read_bytes(), args.file
    if not args.nav:
        raise ValueError("--rinex needs --nav NAV")
    for path in (args.rinex, *args.nav):
        if not Path(path).is_file():
            raise ValueError(f"{path}: no such file")
    if args.xyz:
        xyz = _xyz(args.xyz)
    else:
        from daq.gnss.rinex import read_obs
        xyz = read_obs(args.rinex).header.approx_xyz
    return rinex_to_rtcm(args.rinex, args.nav, xyz, systems=args.systems,
                         msm=args.msm), args.rinex


def run(args: argparse.Namespace) -> int:
    if not args.speed > 0:
        return _fail("--speed must be > 0")
    try:
        source, name = _source(args)
    except FileNotFoundError as err:
        return _fail(f"{err.filename}: no such file")
    except (ValueError, OSError) as err:
        return _fail(str(err))
    try:
        out = open_output(args.to)
    except (ValueError, OSError) as err:
        print(f"{PROG}: cannot open {args.to}: {err}", file=sys.stderr)
        return 1
    try:
        code = _play(args, source, name, out)
    finally:
        left = out.close()
    if left:
        print(f"{PROG}: {out.where}: {left if left > 0 else 'some'} bytes queued were not "
              "read before the close (the reader stopped)", file=sys.stderr)
        return 1
    return code


def _play(args: argparse.Namespace, source: bytes | Iterable[Chunk], name: str,
          out: Output) -> int:
    from daq.gnss.replay.player import Replayer

    print(out.where, flush=True)
    if isinstance(out.write, PtyWriter) and args.wait_reader:
        if not wait_for_reader(out.write.fd, args.wait_reader):
            print(f"{PROG}: nobody opened {out.where}; playing anyway", file=sys.stderr)
    rep = Replayer(source, out.write, speed=args.speed, start=args.start,
                   loop=args.loop).start()
    pace = "unpaced" if math.isinf(args.speed) else f"at {args.speed:g}x"
    print(f"{PROG}: {name} → {out.where} {pace}", file=sys.stderr)
    try:
        while not rep.wait(0.5):
            pass
    except KeyboardInterrupt:
        rep.stop()
    dropped = getattr(out.write, "dropped", 0)
    print(f"{PROG}: {rep.bytes_written} bytes in {rep.chunks_written} chunks"
          + (f", {dropped} dropped (no reader)" if dropped else ""), file=sys.stderr)
    if rep.error is not None:
        detail = str(rep.error) or type(rep.error).__name__
        print(f"{PROG}: {out.where}: {detail}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m daq.gnss.cli.replay …`` (the same as ``daq gnss replay …``)."""
    parser = argparse.ArgumentParser(prog="daq gnss")
    register(parser.add_subparsers())
    args = parser.parse_args(["replay", *(sys.argv[1:] if argv is None else argv)])
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
