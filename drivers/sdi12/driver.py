"""SDI-12 v1.4 sensors through a serial adapter (``link_kind = "serial"``).

The bus opens the port (1200 baud 7E1 on a real SDI-12 adapter; a test pty runs 8N1) and
sets ``link.timeout``, which this driver uses as the time to wait for each reply. One poll:

1. (unless ``break: false``) a break of ``break_duration`` (≥ 12 ms) and ≥ 8.33 ms of
   marking, before every command, so a sleeping sensor is awake;
2. the measurement command (``aM!`` by default) → ``atttn``;
3. for M commands, the service request ``a<CR><LF>`` awaited up to *ttt* seconds plus
   ``service_request_margin`` by reading the port (never sleeping); for C commands the
   port is read (and ignored) for *ttt* seconds, since no service request comes;
4. ``aD0!``, ``aD1!`` … until the announced number of values has been read (with the CRC
   checked for MC/CC/RC); an R command carries its values in its own reply.

No answer raises NoResponse; a reply that does not decode (CRC, framing, wrong address)
raises ProtocolError with its bytes. The SDI-12 retry rules (retransmit after 16.67-87 ms)
are deliberately *not* applied here: retries belong to the scheduler.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, ClassVar

from daq.driver import ChannelSpec, Driver
from daq.errors import ConfigError, ConfigProblem, NoResponse, ProtocolError
from daq.model import ChannelValue, Quality
from daq.schema import Ctx, Field, ListOf, Schema, join

from . import protocol as p

DEFAULT_REPLY_TIMEOUT = 1.0  # s, used only when the bus left link.timeout unset
MARKING = 0.009  # s of marking after a break (the standard asks ≥ 8.33 ms)


def _check_options(out: dict[str, Any], path: str, lines: Any, ctx: Ctx) -> None:
    if "command" in out:
        try:
            p.parse_command(out["command"])
        except ValueError as err:
            ctx.add(join(path, "command"), str(err), lines.get("command"))
    names = [v.get("name") for v in out.get("values", [])]
    dup = sorted({n for n in names if n is not None and names.count(n) > 1})
    if dup:
        ctx.add(join(path, "values"), f"value names must be unique: {', '.join(dup)}",
                lines.get("values"))
    if not names:
        ctx.add(join(path, "values"), "name at least one value", lines.get("values"))


VALUE_SCHEMA = Schema({
    "name": Field("str", required=True, doc="channel name of this value"),
    "unit": Field("str", default="", doc="unit the sensor reports in (e.g. m, kPa, °C)"),
    "quantity": Field("str", default="", doc="what is measured (water_level, temperature…)"),
    "valid_min": Field("float", doc="values below are flagged bad (out_of_range)"),
    "valid_max": Field("float", doc="values above are flagged bad (out_of_range)"),
}, name="sdi12 value")

OPTIONS_SCHEMA = Schema({
    "command": Field("str", default="M",
                     doc="M, MC, C, CC, M1…M9, MC1…MC9, C1…C9, CC1…CC9, R0…R9, RC0…RC9"),
    "values": Field(ListOf(Field(VALUE_SCHEMA)), required=True,
                    doc="one entry per returned value, in the sensor's order"),
    "break": Field("bool", default=True,
                   doc="send a break before each command (false: the adapter does it)"),
    "break_duration": Field("duration", default=0.012, min=0.012, max=1.0,
                            doc="break length in s (SDI-12: at least 12 ms)"),
    "service_request_margin": Field("duration", default=0.5, min=0.0, max=60.0,
                                    doc="extra s to wait for the service request after ttt"),
    "error_values": Field(ListOf(Field("float")), default=list,
                          doc="values a sensor sends to say 'no measurement' (e.g. -9999)"),
}, name="sdi12 options", validator=_check_options)


class SDI12Driver(Driver):
    """One SDI-12 sensor; each poll runs one measurement and reads its values."""

    link_kind: ClassVar[str] = "serial"
    options_schema: ClassVar[Schema] = OPTIONS_SCHEMA
    description: ClassVar[str] = "SDI-12 v1.4 sensor (M/MC/C/CC/R) through a serial adapter"

    def __init__(self, name: str, address: int | str | None, options: dict[str, Any]) -> None:
        try:
            sdi_address = p.normalise_address(address)
        except ValueError as err:
            raise ConfigError([ConfigProblem("address", str(err))]) from err
        super().__init__(name, address if isinstance(address, int) else None, options)
        self.sdi_address = sdi_address
        self.command = p.parse_command(options.get("command", "M"))
        self.values: list[dict[str, Any]] = list(options["values"])
        self.send_break = bool(options.get("break", True))
        self.break_duration = float(options.get("break_duration", 0.012))
        self.sr_margin = float(options.get("service_request_margin", 0.5))
        self.error_values = {float(v) for v in options.get("error_values", [])}
        #: failures by kind ("no_response", "protocol_error"), for health reports
        self.errors: Counter[str] = Counter()

    @property
    def channels(self) -> list[ChannelSpec]:
        return [ChannelSpec(v["name"], v.get("quantity", ""), v.get("unit", ""))
                for v in self.values]

    # -- link I/O: every wait is a read with a deadline --------------------------------

    def _reply_timeout(self, link: Any) -> float:
        t = getattr(link, "timeout", None)
        return float(t) if t else DEFAULT_REPLY_TIMEOUT

    def _read_line(self, link: Any, timeout: float) -> bytes:
        """Bytes up to and including <CR><LF>, or whatever came before ``timeout`` s."""
        saved = link.timeout
        link.timeout = timeout
        try:
            return bytes(link.read_until(p.CRLF, 256))
        finally:
            link.timeout = saved

    def _listen(self, link: Any, seconds: float) -> None:
        """Wait ``seconds`` by reading the port; whatever arrives is line noise, dropped."""
        if seconds <= 0:
            return
        saved = link.timeout
        link.timeout = seconds
        try:
            link.read(65536)
        finally:
            link.timeout = saved

    def _send(self, link: Any, cmd: bytes) -> None:
        link.reset_input_buffer()
        if self.send_break:
            link.send_break(self.break_duration)
            self._listen(link, MARKING)
        link.write(cmd)
        link.flush()

    def transact(self, link: Any, body: str, address: str | None = None) -> tuple[bytes, bytes]:
        """Send one command; return (command bytes, reply line). No reply → NoResponse."""
        cmd = p.command(self.sdi_address if address is None else address, body)
        self._send(link, cmd)
        line = self._read_line(link, self._reply_timeout(link))
        if not line:
            self.errors["no_response"] += 1
            raise NoResponse(f"no answer to {cmd.decode()}", device=self.name)
        return cmd, line

    # -- the poll -----------------------------------------------------------------------

    def poll(self, link: Any) -> list[ChannelValue]:
        try:
            texts = self._measure(link)
        except ProtocolError as err:
            self.errors["protocol_error"] += 1
            err.device = self.name
            raise
        return self._channel_values(texts)

    def _measure(self, link: Any) -> list[str]:
        a, cmd = self.sdi_address, self.command
        sent, line = self.transact(link, cmd.body)
        if cmd.kind == "R":
            return p.parse_values(line, a, cmd.crc, sent)
        start = p.parse_start(line, a, cmd, sent)
        if start.count == 0:
            return []
        if cmd.kind == "M" and start.seconds > 0:
            sr = self._read_line(link, start.seconds + self.sr_margin)
            if sr:  # no service request: the data must be ready after ttt anyway (4.4.6)
                p.parse_ack(sr, a)
        elif cmd.kind == "C":
            self._listen(link, float(start.seconds))
        texts: list[str] = []
        for i in range(10):
            sent, line = self.transact(link, f"D{i}")
            got = p.parse_values(line, a, cmd.crc, sent)
            if not got:
                break
            texts.extend(got)
            if len(texts) >= start.count:
                break
        return texts[:start.count]

    def _channel_values(self, texts: list[str]) -> list[ChannelValue]:
        out = []
        for i, spec in enumerate(self.values):
            name, unit, qty = spec["name"], spec.get("unit", ""), spec.get("quantity", "")
            if i >= len(texts):
                out.append(ChannelValue(name, None, unit, Quality.MISSING, qty,
                                        ("not_returned",)))
                continue
            value = float(texts[i])
            flags: tuple[str, ...] = ()
            if value in self.error_values:
                flags = ("error_code",)
            elif (spec.get("valid_min") is not None and value < spec["valid_min"]) or (
                    spec.get("valid_max") is not None and value > spec["valid_max"]):
                flags = ("out_of_range",)
            out.append(ChannelValue(name, value, unit, Quality.BAD if flags else Quality.GOOD,
                                    qty, flags, {"text": texts[i]}))
        return out

    # -- technician's helpers (diagnostics, not used by poll) -------------------------

    def identify(self, link: Any) -> p.Identification:
        """Ask ``aI!``: SDI-12 version, vendor, model, firmware, serial."""
        sent, line = self.transact(link, "I")
        return p.parse_identification(line, self.sdi_address, sent)

    def acknowledge(self, link: Any) -> None:
        """``a!``: is the sensor there? Raises NoResponse / ProtocolError if not."""
        sent, line = self.transact(link, "")
        p.parse_ack(line, self.sdi_address, sent)

    def query_address(self, link: Any) -> str:
        """``?!``: the address of the one sensor on the line (several would collide)."""
        sent, line = self.transact(link, "", address="?")
        return p.parse_address(line, sent)
