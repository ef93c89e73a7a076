"""``daq gnss solve``: static baseline of a rover against a base from RINEX files.

Prints the baseline (ECEF and ENU at the base), the fix status and ratio, like the
summary of an RTKLIB static ``.pos``; ``--json`` prints one JSON object instead.
Times for ``--start``/``--end`` are GPST, ``YYYY-MM-DD HH:MM:SS`` (or ISO ``T``).
Exit codes: 0 a solution was computed (fixed or not: read ``verdict``), 1 the solver
failed at run time, 2 bad arguments or unreadable files.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:   # numpy, Numba and the solver load in run(): `daq --help` stays light
    from daq.gnss.solver.baseline import BaselineSolution

NEGATIVE_VALUE = re.compile(r"^-\.?\d[\d.eE+\-,\s]*$")   # -5, -.5, -2078720.6,-5683487.5,2e6


def register(gnss_subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``solve`` sub-command to the ``daq gnss`` sub-parsers."""
    p: argparse.ArgumentParser = gnss_subparsers.add_parser(
        "solve", help="static baseline from RINEX (double differences, LAMBDA)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # "--base-xyz -2078720.6,…" as a user types it: argparse takes a word starting with "-"
    # for an option unless it looks like a number; coordinate lists look like one here
    p._negative_number_matcher = NEGATIVE_VALUE
    p.add_argument("--rover", required=True, help="rover RINEX observation file")
    p.add_argument("--base", required=True, help="base RINEX observation file")
    p.add_argument("--nav", required=True, action="append", help="RINEX navigation file "
                   "(repeat for several)")
    p.add_argument("--base-xyz", required=True,
                   help="base ECEF X,Y,Z in metres")
    p.add_argument("--systems", default="GC", help="G (GPS), E (Galileo), C (BeiDou): 'GC'")
    p.add_argument("--frequencies", type=int, default=2, choices=(1, 2))
    p.add_argument("--start", help="first epoch, GPST 'YYYY-MM-DD HH:MM:SS'")
    p.add_argument("--end", help="last epoch, GPST 'YYYY-MM-DD HH:MM:SS'")
    p.add_argument("--elevation-mask", type=float, default=15.0, help="degrees (15)")
    p.add_argument("--ratio", type=float, default=3.0, help="ratio-test threshold (3)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)
    return p


def _gpst(text: str | None) -> float | None:
    if text is None:
        return None
    from daq.gnss.obs import GNSSTime

    return GNSSTime.from_calendar(datetime.fromisoformat(text.strip()), "GPST").gps_seconds


def _xyz(text: str) -> tuple[float, float, float]:
    parts = [float(v) for v in text.replace(" ", "").split(",")]
    if len(parts) != 3 or not all(math.isfinite(v) for v in parts):
        raise ValueError("--base-xyz needs three numbers X,Y,Z")
    return parts[0], parts[1], parts[2]


class _Bar:
    """A one-line progress bar on a terminal's stderr (silent otherwise)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.on = stream.isatty()

    def __call__(self, fraction: float, stage: str) -> None:
        if not self.on:
            return
        n = int(30 * max(0.0, min(1.0, fraction)))
        self.stream.write(f"\r[{'#' * n}{'.' * (30 - n)}] {stage:<12}")
        self.stream.flush()
        if fraction >= 1.0:
            self.stream.write("\n")


def _text(sol: BaselineSolution) -> str:
    from daq.gnss.solver.deformation import deformation

    def fmt(v: Any, nd: int = 4) -> str:
        return " ".join(f"{float(x):{nd + 8}.{nd}f}" for x in v)
    q = "1 (fixed)" if sol.fixed else "2 (float)" if math.isfinite(sol.float_enu[0]) else "0"
    lines = [
        f"session     {deformation('', sol).to_dict()['session_start']} .. "
        f"{deformation('', sol).to_dict()['session_end']}  ({sol.n_epochs} epochs)",
        f"verdict     {sol.verdict}   Q={q}   ratio={sol.ratio:.2f}   "
        f"ambiguities fixed {sol.n_fixed}/{sol.n_ambiguities}",
        f"satellites  {' '.join(f'{k}:{v}' for k, v in sorted(sol.satellites.items()))}"
        f"   signals {' '.join(f'{k}={v}' for k, v in sorted(sol.signals.items()))}",
    ]
    if sol.fixed:
        lines += [
            f"rover xyz   {fmt(sol.rover_xyz)}  m",
            f"dX dY dZ    {fmt(sol.baseline_xyz)}  m   length {sol.length:.4f} m",
            f"E N U       {fmt(sol.enu)}  m",
            f"σ E N U     {fmt(sol.sigma_enu * 1000, 2)}  mm   residual RMS "
            f"{sol.residual_rms_m * 1000:.1f} mm",
        ]
    else:
        lines.append(f"float E N U {fmt(sol.float_enu, 3)}  m  (NOT fixed: not a mm answer)")
    if sol.detail:
        lines.append(f"detail      {sol.detail}")
    return "\n".join(lines)


def _finite(v: Any) -> list[float | None]:
    return [round(float(x), 4) if math.isfinite(float(x)) else None for x in v]


def run(args: argparse.Namespace) -> int:
    """Execute ``daq gnss solve``; returns the exit code."""
    import numpy as np

    from daq.gnss.rinex import read_nav, read_obs
    from daq.gnss.solver.baseline import SolverOptions, solve_baseline
    from daq.gnss.solver.deformation import deformation

    try:
        base_xyz = _xyz(args.base_xyz)
        start, end = _gpst(args.start), _gpst(args.end)
        opts = SolverOptions(systems=args.systems.upper(), frequencies=args.frequencies,
                             elevation_mask_deg=args.elevation_mask,
                             ratio_threshold=args.ratio)
        opts.check()
        rover = read_obs(args.rover)
        base = read_obs(args.base)
        navs = [read_nav(n) for n in args.nav]
    except (OSError, ValueError) as err:
        print(f"daq gnss solve: {err}", file=sys.stderr)
        return 2
    try:
        sol = solve_baseline(rover, base, navs, base_xyz, opts, start, end,
                             progress=_Bar(sys.stderr))
    except ValueError as err:
        print(f"daq gnss solve: {err}", file=sys.stderr)
        return 2
    except (ArithmeticError, RuntimeError, np.linalg.LinAlgError) as err:
        print(f"daq gnss solve: solver failed: {err}", file=sys.stderr)
        return 1
    if args.json:
        d = deformation("rover", sol).to_dict()
        d["float_enu_m"] = _finite(sol.float_enu)
        d["rover_ecef_m"] = _finite(sol.rover_xyz) if sol.fixed else None
        print(json.dumps(d, allow_nan=False, default=str))
    else:
        print(_text(sol))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m daq.gnss.cli.solve solve …``) until the lead wires
    ``register`` into ``daq gnss``."""
    parser = argparse.ArgumentParser(prog="daq gnss")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
