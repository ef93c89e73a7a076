"""``daq modbus scan``: which unit ids answer, at which settings, and what each costs.

One read of one register per id (one at a time: an exception in a block read would hide
the rest). Each answer is classified (value, exception, bad CRC, garbled, silent) with its
response time; the mean time per silent id is what a dead address costs a poll cycle. The
progress bar goes to stderr and only when stderr is a terminal.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from statistics import mean
from typing import Any, TextIO

from . import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK, fail, rtu


class Progress:
    """A one-line bar redrawn in place with ``\\r``; silent when ``out`` is not a terminal."""

    def __init__(self, total: int, out: TextIO) -> None:
        self.total = max(1, total)
        self.out = out
        self.enabled = out.isatty()
        self.started = time.monotonic()

    def show(self, done: int, text: str) -> None:
        if not self.enabled:
            return
        width = 30
        filled = width * done // self.total
        elapsed = time.monotonic() - self.started
        eta = elapsed / done * (self.total - done) if done else 0.0
        self.out.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} "
                       f"{text}  {eta:4.0f} s left \x1b[K")
        self.out.flush()

    def close(self) -> None:
        if self.enabled:
            self.out.write("\r\x1b[K")
            self.out.flush()


def cmd_scan(args: argparse.Namespace) -> int:
    from .modbus import busy, parse_list, settings_of
    from .modbus_link import open_link
    from .modbus_trace import print_frames

    try:
        bauds = [int(b) for b in parse_list(args.baud, "baud rate")]
        parities = parse_list(args.parity, "parity", ("N", "E", "O"))
        function = rtu.FUNCTIONS[args.kind]
        for unit in args.ids:
            rtu.rtu_request(unit, function, args.address, 1)
    except ValueError as err:
        return fail("modbus scan", str(err), EXIT_BAD_INPUT)
    reason = busy(args)
    if reason:
        return fail("modbus scan", reason)
    combos = [(b, p) for b in bauds for p in parities]
    bar = Progress(len(combos) * len(args.ids), sys.stderr)
    results: list[dict[str, Any]] = []
    done = 0
    try:
        for baud, parity in combos:
            try:
                link = open_link(settings_of(args, baud, parity))
            except (OSError, ValueError) as err:
                bar.close()
                return fail("modbus scan", f"cannot open {args.url}: {err}")
            try:
                for unit in args.ids:
                    found = sum(r["outcome"] != "silent" for r in results)
                    bar.show(done, f"{baud} {parity}: id {unit}, {found} answered")
                    t0 = time.monotonic()
                    answer = link.read(unit, function, args.address, 1)
                    ms = (time.monotonic() - t0) * 1000.0
                    results.append({"unit": unit, "baud": baud, "parity": parity,
                                    "outcome": answer.outcome, "answer": answer.words(),
                                    "values": answer.values, "exception": answer.exception,
                                    "ms": round(ms, 1), "raw": answer.raw.hex(" ")})
                    done += 1
            except OSError as err:
                bar.close()
                return fail("modbus scan", f"{args.url}: {err}")
            finally:
                link.close()
                if args.trace:
                    bar.close()
                    print_frames(link.frames, baud, sys.stderr, link.tcp)
    except KeyboardInterrupt:
        bar.close()
        print(f"daq modbus scan: interrupted after {done} request(s)", file=sys.stderr)
    bar.close()
    return _report(args, results)


def _report(args: argparse.Namespace, results: list[dict[str, Any]]) -> int:
    from ..tables import render

    silent = [r["ms"] for r in results if r["outcome"] == "silent"]
    alive = [r for r in results if r["outcome"] != "silent"]
    summary = {"asked": len(results), "answered": len(alive), "silent": len(silent),
               "ms_per_dead_address": round(mean(silent), 1) if silent else None,
               "ms_per_answer": round(mean(r["ms"] for r in alive), 1) if alive else None}
    if args.json:
        print(json.dumps({"url": args.url, "summary": summary, "results": results}, indent=1))
        return EXIT_OK if alive else EXIT_FAILURE
    shown = results if args.all else alive
    if shown:
        print(render(["id", "baud", "parity", "answer", "ms", "reply"],
                     [[r["unit"], r["baud"], r["parity"], r["answer"], r["ms"],
                       _short(r)] for r in shown]))
    dead = (f"; {len(silent)} silent, {summary['ms_per_dead_address']} ms per dead address"
            if silent else "")
    print(f"{len(alive)} of {len(results)} answered{dead}")
    if not alive:
        print("Nobody answered: check baud rate and parity (try --baud 9600,19200 "
              "--parity N,E), wiring (A/B), termination and the adapter.", file=sys.stderr)
    return EXIT_OK if alive else EXIT_FAILURE


def _short(r: dict[str, Any]) -> str:
    if r["outcome"] == "value":
        return " ".join(str(v) for v in r["values"])
    return r["raw"][:47]
