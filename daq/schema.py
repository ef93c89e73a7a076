"""A small typed-schema checker for YAML configuration.

Every problem is collected, never raised one at a time, each with its dotted path, the YAML
line it came from and, for a misspelt key, a "did you mean". Drivers declare the schema of
their own ``options`` with the same :class:`Schema`, so one mechanism checks everything.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from .errors import ConfigProblem

_MISSING: Any = object()


class YDict(dict[str, Any]):
    """A mapping loaded from YAML that remembers the line of itself and of each key."""

    line: int | None = None
    key_lines: dict[str, int]
    duplicates: list[tuple[str, int, int]]  # (key, line, line of the first occurrence)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key_lines = {}
        self.duplicates = []


class YList(list[Any]):
    line: int | None = None
    item_lines: list[int]

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.item_lines = []


# libyaml's parser when PyYAML has it (about 10× faster on a large file); same constructors.
class _LineLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> YDict:
    loader.flatten_mapping(node)
    out = YDict()
    out.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, list | dict):  # `{[a]: 1}`: a key must be a name
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a name, not a list or mapping",
                key_node.start_mark)
        if key in out:  # YAML keeps the last silently; a config must not
            out.duplicates.append((str(key), key_node.start_mark.line + 1,
                                   out.key_lines[str(key)]))
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines.setdefault(str(key), key_node.start_mark.line + 1)
    return out


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> YList:
    out = YList(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    out.item_lines = [child.start_mark.line + 1 for child in node.value]
    return out


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load_yaml(text: str) -> Any:
    """Parse YAML keeping line numbers (raises ``yaml.YAMLError`` on a syntax error)."""
    try:
        return yaml.load(text, Loader=_LineLoader)  # a SafeLoader subclass
    except yaml.YAMLError:
        raise
    except (ValueError, OverflowError, TypeError) as err:  # e.g. a date 2026-13-45
        raise yaml.YAMLError(f"a value YAML cannot read: {err}") from err


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|min|m|h|d)?\s*$")
_YAML11_FLOAT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE]\d+$")
_UNIT_SECONDS = {None: 1.0, "ms": 1e-3, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0,
                 "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any) -> float:
    """``"10min"`` → 600.0; numbers are seconds. Raises ``ValueError``."""
    if isinstance(value, bool):
        raise ValueError("not a duration")
    if isinstance(value, int | float):
        return float(value)
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError(f"not a duration: {value!r} (use e.g. 500ms, 1s, 10min, 4h)")
    return float(m.group(1)) * _UNIT_SECONDS[m.group(2)]


class Ctx:
    """Collects problems while a document is checked."""

    def __init__(self) -> None:
        self.problems: list[ConfigProblem] = []

    def add(self, path: str, message: str, line: int | None = None,
            hint: str | None = None) -> None:
        self.problems.append(ConfigProblem(path, message, line, hint))


def _report_duplicates(value: Any, path: str, ctx: Ctx) -> None:
    for key, line_no, first in getattr(value, "duplicates", []):
        ctx.add(join(path, key), f"duplicate key (first given on line {first})", line_no)


@dataclass
class Field:
    """One key of a mapping.

    ``kind`` is one of ``str int float bool duration any`` or a :class:`Schema`,
    :class:`ListOf` or :class:`MapOf`.
    """

    kind: Any
    required: bool = False
    default: Any = _MISSING
    choices: tuple[Any, ...] | None = None
    min: float | None = None
    max: float | None = None
    doc: str = ""

    def check(self, value: Any, path: str, line: int | None, ctx: Ctx) -> Any:
        kind = self.kind
        if isinstance(kind, Schema | ListOf | MapOf):
            return kind.check(value, path, line, ctx)
        bare = kind == "duration" and _bare_number(value)
        try:
            value = _coerce(kind, value)
        except (TypeError, ValueError, OverflowError) as err:
            ctx.add(path, str(err), line)
            return _MISSING
        if self.choices is not None and value not in self.choices:
            close = difflib.get_close_matches(str(value), [str(c) for c in self.choices], 1)
            hint = f"did you mean {close[0]!r}?" if close else None
            ctx.add(path, f"{_short(value)} is not one of {', '.join(map(str, self.choices))}",
                    line, hint)
            return _MISSING
        unit = " s" if kind == "duration" else ""
        if self.min is not None and value < self.min:
            ctx.add(path, f"{value:g}{unit} is below the minimum {self.min:g}{unit}", line,
                    "write the unit, e.g. 500ms, 1s, 10min" if unit else None)
        if self.max is not None and value > self.max:
            ctx.add(path, f"{value:g}{unit} is above the maximum {self.max:g}{unit}", line,
                    f"a number without a unit is seconds: did you mean {value:g}ms?"
                    if bare else None)
        elif bare and value > MAX_BARE_SECONDS:
            ctx.add(path, f"{value:g} without a unit is {value:g} s; write the unit "
                    f"({value:g}s, or {value:g}ms if milliseconds were meant)", line)
        return value


MAX_BARE_SECONDS = 600  # a unit-less duration above this is more likely ms than seconds


def _bare_number(value: Any) -> bool:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return True
    return isinstance(value, str) and bool(re.match(r"^\s*\d+(\.\d+)?\s*$", value))


def _coerce(kind: str, value: Any) -> Any:
    if kind == "any":
        return value
    if kind == "str":
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise TypeError(f"expected text, got {type(value).__name__}")
    if kind == "bool":
        if isinstance(value, bool):
            return value
        raise TypeError(f"expected true or false, got {_short(value)}")
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            if abs(value) >= 2**63:
                raise ValueError(f"{_short(value)} is too large for a whole number")
            return value
        raise TypeError(f"expected a whole number, got {_short(value)}")
    if kind == "float":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return _finite(value)
        if isinstance(value, str) and _YAML11_FLOAT.match(value):
            return _finite(value)  # YAML 1.1 reads 1.0e6 (no sign after e) as text
        raise TypeError(f"expected a number, got {_short(value)}")
    if kind == "duration":
        seconds = parse_duration(value)
        if not math.isfinite(seconds):
            raise ValueError(f"{_short(value)} is not a duration in seconds")
        return seconds
    raise AssertionError(f"unknown field kind {kind!r}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _finite(value: Any) -> float:
    try:
        out = float(value)
    except OverflowError:
        raise ValueError(f"{_short(value)} is too large for a number") from None
    if not math.isfinite(out):
        raise ValueError(f"{_short(value)} is not a finite number")
    return out


@dataclass
class Schema:
    """A mapping with known keys. ``check`` may add cross-field problems."""

    fields: dict[str, Field]
    name: str = ""
    extra_keys: bool = False
    validator: Callable[[dict[str, Any], str, Mapping[str, Any], Ctx], None] | None = None

    def check(self, value: Any, path: str, line: int | None, ctx: Ctx) -> Any:
        if value is None:
            value = YDict()
        if not isinstance(value, dict):
            ctx.add(path, f"expected a mapping, got {type(value).__name__}", line)
            return _MISSING
        key_lines = getattr(value, "key_lines", {})
        _report_duplicates(value, path, ctx)
        out: dict[str, Any] = {}
        for key, raw in value.items():
            kline = key_lines.get(str(key), line)
            spec = self.fields.get(str(key))
            if spec is None:
                if self.extra_keys:
                    out[str(key)] = raw
                    continue
                close = difflib.get_close_matches(str(key), list(self.fields), 1, 0.6)
                hint = f"did you mean {close[0]!r}?" if close else (
                    "known keys: " + ", ".join(sorted(self.fields)))
                ctx.add(join(path, str(key)), "unknown key", kline, hint)
                continue
            checked = spec.check(raw, join(path, str(key)), kline, ctx)
            if checked is not _MISSING:
                out[str(key)] = checked
        for key, spec in self.fields.items():
            if key in out:
                continue
            if key in value:  # present but invalid (already reported): use the default so
                if spec.default is not _MISSING:  # later checks still see a whole object
                    out[key] = spec.default() if callable(spec.default) else spec.default
                continue
            if spec.required:
                ctx.add(join(path, key), "is required", getattr(value, "line", line))
            elif spec.default is not _MISSING:
                out[key] = spec.default() if callable(spec.default) else spec.default
        if self.validator is not None:
            self.validator(out, path, key_lines, ctx)
        return out


@dataclass
class ListOf:
    item: Field

    def check(self, value: Any, path: str, line: int | None, ctx: Ctx) -> Any:
        if not isinstance(value, list):
            ctx.add(path, f"expected a list, got {type(value).__name__}", line)
            return _MISSING
        lines = getattr(value, "item_lines", [])
        out = []
        for i, raw in enumerate(value):
            checked = self.item.check(raw, join(path, i), lines[i] if i < len(lines) else line,
                                      ctx)
            if checked is not _MISSING:
                out.append(checked)
        return out


@dataclass
class MapOf:
    """A mapping from free names (device names, sensor ids) to one kind of value."""

    item: Field
    key_pattern: str = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$"
    key_rule: str = "a name may hold only letters, digits, _ . -"

    def check(self, value: Any, path: str, line: int | None, ctx: Ctx) -> Any:
        if value is None:
            return {}
        if not isinstance(value, dict):
            ctx.add(path, f"expected a mapping of names, got {type(value).__name__}", line)
            return _MISSING
        key_lines = getattr(value, "key_lines", {})
        _report_duplicates(value, path, ctx)
        out = {}
        for key, raw in value.items():
            kline = key_lines.get(str(key), line)
            if not re.match(self.key_pattern, str(key)):
                ctx.add(join(path, str(key)), self.key_rule, kline)
                continue
            checked = self.item.check(raw, join(path, str(key)), kline, ctx)
            if checked is not _MISSING:
                out[str(key)] = checked
        return out


MISSING = _MISSING
