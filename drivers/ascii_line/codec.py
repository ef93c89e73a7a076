"""The generic ASCII line protocol as pure functions: request bytes out, reply line in.

A reply is one line ending in ``terminator``. Optionally its last two characters are a
hexadecimal checksum, preceded by ``checksum_separator``, covering the bytes from index
``checksum_from`` up to the separator:

- ``xor``: 8-bit exclusive OR, NMEA 0183 style (defaults: from 1, i.e. after ``$``/``!``,
  separator ``*``);
- ``sum8``: sum of the bytes modulo 256 (defaults: from 0, no separator), as Vaisala's
  "CS2" and many small transmitters send it.

The line, without terminator and checksum, is decoded with ``encoding`` and must match the
``reply`` regular expression as a whole (``re.fullmatch``). Every *named* group is a channel:
``value = float(text) · scale + offset``. Numbers are ``[+-]digits[.digits][e±dd]``; any
other text in a group (``----``, ``ERR``) gives a bad value flagged ``not_a_number``.

Failures raise :class:`LineError` (a :class:`~daq.errors.ProtocolError`) whose ``kind``
names what went wrong and whose ``data`` holds the bytes.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import Any

from daq.errors import ProtocolError
from daq.model import ChannelValue, Quality

CHECKSUMS = ("none", "xor", "sum8")
_DEFAULT_FROM = {"none": 0, "xor": 1, "sum8": 0}
_DEFAULT_SEPARATOR = {"none": "", "xor": "*", "sum8": ""}
_ESCAPE = re.compile(r"\\(x[0-9A-Fa-f]{2}|.)", re.DOTALL)
_SIMPLE = {"r": "\r", "n": "\n", "t": "\t", "\\": "\\", "0": "\0", "e": "\x1b"}
_NUMBER = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")
_HEX2 = re.compile(rb"^[0-9A-Fa-f]{2}$")


class LineError(ProtocolError):
    """A reply line that does not decode. ``kind``: incomplete, too_long, echo, checksum,
    decode, no_match."""

    def __init__(self, kind: str, message: str, *, data: bytes = b"") -> None:
        super().__init__(message, data=data)
        self.kind = kind


def unescape(text: str) -> str:
    r"""Turn ``\r \n \t \\ \0 \e \xHH`` into characters; raises ValueError on others.

    YAML double-quoted strings already did this; single-quoted or plain ones did not.
    """
    def one(m: re.Match[str]) -> str:
        code = m.group(1)
        if code.startswith("x") and len(code) == 3:
            return chr(int(code[1:], 16))
        if code in _SIMPLE:
            return _SIMPLE[code]
        raise ValueError(f"unknown escape \\{code} (use \\r \\n \\t \\\\ \\0 \\e \\xHH)")
    return _ESCAPE.sub(one, text)


def check_template(template: str) -> bool:
    """Check a request template; return whether it uses ``{address}``. Raises ValueError."""
    uses = False
    for _, field, _, _ in string.Formatter().parse(template):
        if field is None:
            continue
        if field != "address":
            raise ValueError(f"unknown placeholder {{{field}}}: only {{address}} "
                             "(write {{ and }} for literal braces)")
        uses = True
    template.format(address=1)  # catches a bad format spec such as {address:q}
    return uses


def xor8(data: bytes) -> int:
    out = 0
    for b in data:
        out ^= b
    return out


def sum8(data: bytes) -> int:
    return sum(data) & 0xFF


@dataclass(frozen=True)
class GroupSpec:
    """How one named group becomes a channel value."""

    name: str
    unit: str = ""
    quantity: str = ""
    scale: float = 1.0
    offset: float = 0.0
    valid_min: float | None = None
    valid_max: float | None = None


class LineCodec:
    """Encodes the request and decodes reply lines for one configured device.

    Built from options already checked by the driver's schema (so the regex compiles and
    the escapes are valid); nothing is checked again per line.
    """

    def __init__(self, options: dict[str, Any], address: int | None = None) -> None:
        self.encoding: str = options.get("encoding", "ascii")
        self.terminator = unescape(options.get("terminator", "\r\n")).encode(self.encoding)
        template = unescape(options.get("request", ""))
        if check_template(template) and address is None:
            raise ValueError("the request uses {address} but the device has no address")
        self.request = template.format(address=address).encode(self.encoding)
        self.pattern = re.compile(options["reply"])
        self.checksum: str = options.get("checksum", "none")
        start = options.get("checksum_from")
        self.checksum_from: int = _DEFAULT_FROM[self.checksum] if start is None else start
        sep = options.get("checksum_separator")
        sep = _DEFAULT_SEPARATOR[self.checksum] if sep is None else unescape(sep)
        self.separator = sep.encode(self.encoding)
        configured = options.get("groups") or {}
        names = sorted(self.pattern.groupindex, key=self.pattern.groupindex.__getitem__)
        self.groups = [GroupSpec(n, **configured.get(n, {})) for n in names]

    def strip(self, line: bytes) -> bytes:
        """Remove the terminator and verify/remove the checksum; LineError if wrong."""
        if not line.endswith(self.terminator):
            raise LineError("incomplete", "reply not terminated", data=line)
        body = line[:-len(self.terminator)]
        if self.checksum == "none":
            return body
        end = len(body) - 2 - len(self.separator)
        got = body[-2:]
        if end < self.checksum_from or not _HEX2.match(got) or \
                body[end:-2] != self.separator:
            raise LineError("checksum", "no checksum field where expected", data=line)
        covered = body[self.checksum_from:end]
        want = xor8(covered) if self.checksum == "xor" else sum8(covered)
        if int(got, 16) != want:
            raise LineError("checksum", f"checksum {got.decode()} != {want:02X}", data=line)
        return body[:end]

    def decode(self, line: bytes) -> list[ChannelValue]:
        """One reply line (terminator included) → one value per named group."""
        body = self.strip(line)
        try:
            text = body.decode(self.encoding)
        except UnicodeDecodeError as err:
            raise LineError("decode", f"not {self.encoding}: {err.reason}", data=line) from err
        m = self.pattern.fullmatch(text)
        if m is None:
            raise LineError("no_match", "reply does not match the configured pattern",
                            data=line)
        return [_value(g, m.group(g.name)) for g in self.groups]


def _value(g: GroupSpec, text: str | None) -> ChannelValue:
    if text is None:  # an optional group the device left out
        return ChannelValue(g.name, None, g.unit, Quality.MISSING, g.quantity,
                            ("not_returned",))
    raw = {"text": text}
    if not _NUMBER.match(text.strip()):
        return ChannelValue(g.name, None, g.unit, Quality.BAD, g.quantity,
                            ("not_a_number",), raw)
    value = float(text) * g.scale + g.offset
    flags: tuple[str, ...] = ()
    if (g.valid_min is not None and value < g.valid_min) or (
            g.valid_max is not None and value > g.valid_max):
        flags = ("out_of_range",)
    return ChannelValue(g.name, value, g.unit, Quality.BAD if flags else Quality.GOOD,
                        g.quantity, flags, raw)
