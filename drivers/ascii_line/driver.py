"""Generic ASCII line protocol for small RS-485/RS-232 sensors (``link_kind = "serial"``).

Polled mode (``request`` set): clear the input, write the request, (with ``echo``) read
back the adapter's echo, read one line up to ``terminator`` within ``link.timeout``.
Listen mode (``request: ""``): the device talks by itself; each poll returns the newest
complete line received. Bytes left over are kept for the next poll, and the bytes before
the first terminator ever seen are dropped (the port may have been opened mid-line), so a
listen-mode poll may wait up to two of the device's output periods: set the bus timeout
accordingly.

No bytes → NoResponse; a partial, overlong, mis-checksummed or non-matching line →
:class:`~daq_drivers.ascii_line.codec.LineError` (a ProtocolError carrying the bytes),
counted in ``errors`` by kind.
"""

from __future__ import annotations

import codecs
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any, ClassVar

from daq.driver import ChannelSpec, Driver
from daq.errors import ConfigError, ConfigProblem, NoResponse
from daq.model import ChannelValue
from daq.schema import Ctx, Field, MapOf, Schema, join

from .codec import CHECKSUMS, LineCodec, LineError, check_template, unescape


def _check_options(out: dict[str, Any], path: str, lines: Mapping[str, int], ctx: Ctx) -> None:
    def problem(key: str, message: str, hint: str | None = None) -> None:
        ctx.add(join(path, key), message, lines.get(key), hint)

    for key in ("request", "terminator", "checksum_separator"):
        if out.get(key) is not None:
            try:
                out_text = unescape(out[key])
            except ValueError as err:
                problem(key, str(err))
                continue
            if key == "request":
                try:
                    check_template(out_text)
                except (ValueError, IndexError, KeyError) as err:
                    problem(key, f"bad request template: {err}")
            if key == "terminator" and not out_text:
                problem(key, "must not be empty")
    if "encoding" in out:
        try:
            codecs.lookup(out["encoding"])
        except LookupError:
            problem("encoding", f"unknown encoding {out['encoding']!r}", "e.g. ascii, latin-1")
    if "reply" not in out:
        return
    try:
        pattern = re.compile(out["reply"])
    except re.error as err:
        problem("reply", f"not a valid regular expression: {err}")
        return
    if not pattern.groupindex:
        problem("reply", "has no named group", "name each value: (?P<level>[-+0-9.]+)")
    for name in out.get("groups", {}):
        if name not in pattern.groupindex:
            ctx.add(join(join(path, "groups"), name), "no group of that name in reply",
                    lines.get("groups"), "named groups: " + ", ".join(pattern.groupindex))


GROUP_SCHEMA = Schema({
    "unit": Field("str", default="", doc="unit of the converted value"),
    "quantity": Field("str", default="", doc="what is measured (water_level, pressure…)"),
    "scale": Field("float", default=1.0, doc="value = number · scale + offset"),
    "offset": Field("float", default=0.0, doc="value = number · scale + offset"),
    "valid_min": Field("float", doc="converted values below are flagged bad (out_of_range)"),
    "valid_max": Field("float", doc="converted values above are flagged bad (out_of_range)"),
}, name="ascii_line group")

OPTIONS_SCHEMA = Schema({
    "request": Field("str", default="",
                     doc="text sent to poll, escapes \\r \\n \\xHH, may hold {address}; "
                         "empty: listen to a device that talks by itself"),
    "terminator": Field("str", default="\r\n", doc="end of a reply line"),
    "reply": Field("str", required=True,
                   doc="Python regex matching the whole line; each named group is a value"),
    "groups": Field(MapOf(Field(GROUP_SCHEMA)), default=dict,
                    doc="unit, quantity, scale, offset, valid range per named group"),
    "checksum": Field("str", default="none", choices=CHECKSUMS,
                      doc="none, xor (NMEA style) or sum8 (sum modulo 256), 2 hex digits"),
    "checksum_from": Field("int", min=0, doc="index of the first byte covered "
                                             "(default: 1 for xor, 0 for sum8)"),
    "checksum_separator": Field("str", doc="text before the checksum (default: * for xor)"),
    "encoding": Field("str", default="ascii", doc="text encoding of request and reply"),
    "echo": Field("bool", default=False, doc="the adapter echoes what is sent: skip it"),
    "max_length": Field("int", default=256, min=4, max=65536, doc="longest reply, bytes"),
}, name="ascii_line options", validator=_check_options)


class AsciiLineDriver(Driver):
    """A device speaking a line-based text protocol, configured by regex."""

    link_kind: ClassVar[str] = "serial"
    options_schema: ClassVar[Schema] = OPTIONS_SCHEMA
    description: ClassVar[str] = "generic ASCII request/reply or streaming line protocol"

    def __init__(self, name: str, address: int | None, options: dict[str, Any]) -> None:
        super().__init__(name, address, options)
        try:
            self.codec = LineCodec(options, address)
        except ValueError as err:
            raise ConfigError([ConfigProblem("request", str(err))]) from err
        self.echo = bool(options.get("echo", False))
        self.max_length = int(options.get("max_length", 256))
        #: failures by kind (no_response, incomplete, too_long, echo, checksum, decode,
        #: no_match), for health reports
        self.errors: Counter[str] = Counter()
        self._pending = b""  # listen mode: bytes after the last complete line
        self._synced = False  # listen mode: a terminator has been seen since the start

    @property
    def channels(self) -> list[ChannelSpec]:
        return [ChannelSpec(g.name, g.quantity, g.unit) for g in self.codec.groups]

    def poll(self, link: Any) -> list[ChannelValue]:
        try:
            line = self._listen(link) if not self.codec.request else self._ask(link)
            return self.codec.decode(line)
        except LineError as err:
            self.errors[err.kind] += 1
            err.device = self.name
            raise

    def _no_response(self, what: str) -> NoResponse:
        self.errors["no_response"] += 1
        return NoResponse(f"no {what} from {self.name}", device=self.name)

    def _read_line(self, link: Any, head: bytes = b"") -> bytes:
        term = self.codec.terminator
        line = head + bytes(link.read_until(term, self.max_length - len(head)))
        if line and not line.endswith(term):
            kind = "too_long" if len(line) >= self.max_length else "incomplete"
            raise LineError(kind, f"reply {kind.replace('_', ' ')}", data=line)
        return line

    def _ask(self, link: Any) -> bytes:
        request = self.codec.request
        link.reset_input_buffer()
        link.write(request)
        link.flush()
        if self.echo:
            got = bytes(link.read(len(request)))
            if not got:
                raise self._no_response("echo")
            if got != request:
                raise LineError("echo", "echo differs from the request", data=got)
        line = self._read_line(link)
        if not line:
            raise self._no_response("reply")
        return line

    def _listen(self, link: Any) -> bytes:
        term = self.codec.terminator
        data = self._pending + bytes(link.read(link.in_waiting))
        if not self._synced:
            cut = data.find(term)
            if cut < 0:  # not a single terminator yet: wait for one, drop what precedes
                data += self._read_line(link, b"")
                cut = data.find(term)
                if cut < 0:
                    self._pending = b""
                    raise self._no_response("line")
            data, self._synced = data[cut + len(term):], True
        *complete, self._pending = data.split(term)
        if len(self._pending) >= self.max_length:  # noise without terminators: resync
            self._pending, self._synced = b"", False
            if not complete:
                raise LineError("too_long", "no terminator within max_length", data=data)
        if complete:
            return complete[-1] + term
        line = self._read_line(link, self._pending[-self.max_length:])
        self._pending = b""
        if not line:
            raise self._no_response("line")
        return line
