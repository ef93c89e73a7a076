"""SDI-12 v1.4 encoding and decoding: pure functions, bytes in, values out (sans-I/O).

Conventions (SDI-12 v1.4, sections 4.4 and 4.4.12):

- An address is one printable character: ``'0'``…``'9'``, ``'a'``…``'z'``, ``'A'``…``'Z'``.
- A command is ``<address><body>!`` in ASCII; every reply ends with ``<CR><LF>``.
- ``aM!`` (and ``aMC!``, ``aM1!``…``aM9!``) answers ``atttn``: *ttt* seconds (000-999) until
  the data are ready, *n* values (0-9). ``aC!`` (and ``aCC!``, ``aC1!``…) answers ``atttnn``
  (up to 99 values). ``aR0!``…``aR9!`` answer with the values at once.
- Values are ``p d.d``: a mandatory sign ``+``/``-``, up to 7 digits, an optional decimal
  point, at most 9 characters, concatenated without separators (``0+3.14-2.7+770``).
- The CRC variants (``MC``, ``CC``, ``RC``) append a CRC-16 (reflected polynomial 0xA001,
  initial value 0, computed over every character from the address to the last value) as
  three characters ``0x40 | bits`` before ``<CR><LF>``.

Decoders raise :class:`~daq.errors.ProtocolError` carrying the offending bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from daq.errors import ProtocolError

CRLF = b"\r\n"
ADDRESS_CHARS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

# Measurement command bodies this module understands (without address and "!").
_COMMAND = re.compile(r"^(?:(?P<mc>M|MC|C|CC)(?P<mn>[1-9])?|(?P<rc>R|RC)(?P<rn>[0-9]))$")
# One SDI-12 value: sign, then digits with at most one decimal point.
_VALUE = re.compile(rb"[+-](?:\d+\.?\d*|\.\d+)")
_START_M = re.compile(rb"^(?P<a>.)(?P<ttt>\d{3})(?P<n>\d)$")
_START_C = re.compile(rb"^(?P<a>.)(?P<ttt>\d{3})(?P<n>\d{2})$")

MAX_DIGITS = 7  # digits per value (the sign and the decimal point come on top)


@dataclass(frozen=True)
class MeasurementCommand:
    """A parsed measurement command body such as ``"MC2"``.

    ``kind`` is ``"M"`` (service request follows), ``"C"`` (concurrent: no service
    request) or ``"R"`` (continuous: values come in the reply itself).
    """

    body: str
    kind: str
    crc: bool

    @property
    def values_per_reply(self) -> int:
        """Most characters of values one D reply may carry (35 after M, 75 after C/R)."""
        return 35 if self.kind == "M" else 75


@dataclass(frozen=True)
class MeasurementStart:
    """The ``atttn`` / ``atttnn`` reply: wait ``seconds``, then read ``count`` values."""

    address: str
    seconds: int
    count: int


@dataclass(frozen=True)
class Identification:
    """The ``aI!`` reply: ``allccccccccmmmmmmvvvxxx…``."""

    address: str
    version: str  # SDI-12 compatibility, "14" → v1.4
    vendor: str  # 8 characters, trailing spaces kept off
    model: str  # 6 characters
    firmware: str  # 3 characters
    extra: str  # up to 13 characters, usually a serial number


def parse_command(body: str) -> MeasurementCommand:
    """``"MC"`` → MeasurementCommand(kind "M", crc True); raises ``ValueError`` if unknown."""
    m = _COMMAND.match(body)
    if m is None:
        raise ValueError(f"{body!r} is not an SDI-12 measurement command "
                         "(M, MC, C, CC, M1…M9, MC1…MC9, C1…C9, CC1…CC9, R0…R9, RC0…RC9)")
    head = m.group("mc") or m.group("rc")
    return MeasurementCommand(body, head[0], head.endswith("C") and len(head) == 2)


def normalise_address(address: int | str | None) -> str:
    """An address from configuration (``0``-``9`` as a number, or one character)."""
    if isinstance(address, bool) or address is None:
        raise ValueError("an SDI-12 address is required: 0-9, a-z or A-Z")
    text = str(address)
    if len(text) != 1 or text not in ADDRESS_CHARS:
        raise ValueError(f"{address!r} is not an SDI-12 address (0-9, a-z, A-Z)")
    return text


def command(address: str, body: str) -> bytes:
    """The bytes of a command: ``command("0", "M")`` → ``b"0M!"``; ``"?"`` queries."""
    return f"{address}{body}!".encode("ascii")


def crc16(data: bytes) -> int:
    """The SDI-12 CRC-16 (CRC-16/ARC): reflected polynomial 0xA001, initial value 0."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def crc_chars(crc: int) -> bytes:
    """Encode a CRC in the three printable characters SDI-12 uses (6 + 6 + 4 bits)."""
    return bytes((0x40 | (crc >> 12), 0x40 | ((crc >> 6) & 0x3F), 0x40 | (crc & 0x3F)))


def append_crc(reply: bytes) -> bytes:
    """``b"0+3.14"`` → ``b"0+3.14OqZ"`` (used by sensor simulators and tests)."""
    return reply + crc_chars(crc16(reply))


def strip_line(line: bytes, sent: bytes = b"") -> bytes:
    """Remove ``<CR><LF>`` and an adapter's echo of the command ``sent``.

    Raises ProtocolError if the terminator is missing (a reply cut short).
    """
    if not line.endswith(CRLF):
        raise ProtocolError("reply not terminated by <CR><LF>", data=line)
    body = line[:-2]
    if sent and body.startswith(sent):  # "!" never occurs in a reply: this is an echo
        body = body[len(sent):]
    return body


def _check_address(body: bytes, address: str, line: bytes) -> None:
    if body[:1] != address.encode("ascii"):
        raise ProtocolError(f"reply is not from address {address!r}", data=line)


def parse_ack(line: bytes, address: str, sent: bytes = b"") -> None:
    """Check an ``a<CR><LF>`` reply (acknowledge, service request, address query)."""
    body = strip_line(line, sent)
    if body != address.encode("ascii"):
        raise ProtocolError(f"expected {address!r}<CR><LF>", data=line)


def parse_address(line: bytes, sent: bytes = b"") -> str:
    """The address in the reply to ``?!`` (valid with one sensor on the bus only)."""
    body = strip_line(line, sent)
    text = body.decode("ascii", "replace")
    if len(text) != 1 or text not in ADDRESS_CHARS:
        raise ProtocolError("no valid address in reply to ?!", data=line)
    return text


def parse_start(line: bytes, address: str, cmd: MeasurementCommand,
                sent: bytes = b"") -> MeasurementStart:
    """Parse the ``atttn`` (M) or ``atttnn`` (C) reply to a measurement command."""
    body = strip_line(line, sent)
    m = (_START_C if cmd.kind == "C" else _START_M).match(body)
    if m is None:
        raise ProtocolError(f"reply to {cmd.body} is not a{'tttnn' if cmd.kind == 'C' else 'tttn'}",
                            data=line)
    _check_address(body, address, line)
    return MeasurementStart(address, int(m.group("ttt")), int(m.group("n")))


def parse_values(line: bytes, address: str, crc: bool, sent: bytes = b"") -> list[str]:
    """The values of a D or R reply, as their exact text (``["+3.14", "-0.2"]``).

    With ``crc`` the three CRC characters are checked and removed first. An empty list
    means the sensor had no (more) data. Raises ProtocolError on any malformed reply.
    """
    body = strip_line(line, sent)
    _check_address(body, address, line)
    if crc:
        if len(body) < 4:
            raise ProtocolError("reply too short to hold a CRC", data=line)
        body, got = body[:-3], body[-3:]
        if crc_chars(crc16(body)) != got:
            raise ProtocolError("CRC mismatch", data=line)
    text = body[1:]
    values = [m.group(0) for m in _VALUE.finditer(text)]
    if b"".join(values) != text:
        raise ProtocolError("reply holds characters that are not SDI-12 values", data=line)
    for v in values:
        if sum(c in b"0123456789" for c in v) > MAX_DIGITS:
            raise ProtocolError("value with more than 7 digits", data=line)
    return [v.decode("ascii") for v in values]


def parse_identification(line: bytes, address: str, sent: bytes = b"") -> Identification:
    """Parse the ``aI!`` reply (fixed-width fields, the last one optional)."""
    body = strip_line(line, sent)
    _check_address(body, address, line)
    if len(body) < 20:
        raise ProtocolError("identification shorter than the 20 fixed characters", data=line)
    text = body.decode("ascii", "replace")
    return Identification(address=text[0], version=text[1:3], vendor=text[3:11].rstrip(),
                          model=text[11:17].rstrip(), firmware=text[17:20].strip(),
                          extra=text[20:].strip())
