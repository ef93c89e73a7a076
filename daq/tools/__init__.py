"""Field diagnostics for a technician: ``daq ports``, ``daq modbus``, ``daq sdi12``,
``daq mqtt check`` and ``daq completion``.

Each module has ``register(subparsers)`` and is light at import (argparse only): the
command functions import pyserial, pymodbus or paho when they run, so ``daq --help``
stays fast. Protocol code is sans-I/O (:mod:`daq.tools.rtu`); every command prints a
table by default, ``--json`` for scripts, errors in words, and exits 0 ok, 1 runtime
failure (no answer, link down), 2 bad input.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2


class Examples(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples in a description laid out as written."""


def add_command(sub: Any, name: str, help: str, description: str) -> argparse.ArgumentParser:
    """A sub-command whose ``--help`` shows ``description`` (with its examples) verbatim."""
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=help, description=description, formatter_class=Examples)
    return parser


def fail(command: str, message: str, code: int = EXIT_FAILURE) -> int:
    """Print ``daq COMMAND: message`` on stderr and return the exit code."""
    print(f"daq {command}: {message}", file=sys.stderr)
    return code


def int_range(text: str) -> list[int]:
    """``"1-5,7,10-12"`` → [1, 2, 3, 4, 5, 7, 10, 11, 12] (argparse type)."""
    out: list[int] = []
    try:
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            a, b = int(lo), int(hi or lo)
            if b < a or b - a > 100_000:
                raise ValueError
            out.extend(range(a, b + 1))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a list of numbers and ranges such as 1-247 or 1,3,5-9") from None
    return out


def positive_float(text: str) -> float:
    """A number > 0 (argparse type), e.g. a timeout in seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be a positive number")
    return value
