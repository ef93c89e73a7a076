"""A shallow exception tree whose exceptions carry data (never parse their messages)."""

from __future__ import annotations

from dataclasses import dataclass


class DaqError(Exception):
    """Base of every error this package raises on purpose."""


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in a configuration: where (dotted path, line), what, and a hint."""

    path: str
    message: str
    line: int | None = None
    hint: str | None = None

    def __str__(self) -> str:
        where = self.path or "<top>"
        if self.line is not None:
            where += f" (line {self.line})"
        text = f"{where}: {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text


class ConfigError(DaqError):
    """The configuration has one or more problems; all of them are in ``problems``."""

    def __init__(self, problems: list[ConfigProblem], source: str | None = None) -> None:
        self.problems = problems
        self.source = source
        head = f"{len(problems)} problem(s) in {source or 'configuration'}"
        super().__init__(head + "\n" + "\n".join(f"  - {p}" for p in problems))


class DeviceError(DaqError):
    """A poll failed. Subclasses say how; the scheduler decides what to do about it."""

    def __init__(self, message: str, *, device: str | None = None) -> None:
        super().__init__(message)
        self.device = device


class NoResponse(DeviceError):
    """The device did not answer in time (unavailable: a gap record follows)."""


class ProtocolError(DeviceError):
    """The device answered with something that does not decode (garbled frame, exception)."""

    def __init__(self, message: str, *, device: str | None = None, data: bytes = b"") -> None:
        super().__init__(message, device=device)
        self.data = data
