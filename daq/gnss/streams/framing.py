"""Split a receiver's byte stream (RTCM 3, UBX and NMEA mixed) into checked frames.

Sans-I/O: :meth:`Framer.feed` takes byte chunks of any size, as a serial port delivers
them, and returns the complete frames found so far. A frame whose checksum fails (CRC-24Q
for RTCM 3, 8-bit Fletcher for UBX, XOR for NMEA 0183), whose length field is impossible,
or that is cut short at :meth:`Framer.flush` is counted under its reason in
:attr:`Framer.rejected` and skipped: the framer steps one byte past the false preamble and
resynchronises on the next one, so a good frame that follows a bad one is never lost.
Nothing here raises on bad input.

Byte accounting (tested): ``bytes_in == bytes_framed + bytes_skipped + len(pending)``.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

RTCM3_PREAMBLE = 0xD3
UBX_SYNC = b"\xb5\x62"
RTCM3_MAX_PAYLOAD = 1023          # 10-bit length field
UBX_MAX_PAYLOAD = 8192            # the largest real message (MGA/LOG dumps) is far below
NMEA_MAX_LEN = 256                # standard says 82 ($ to LF); some talkers run a little longer
NMEA_PROPRIETARY_MAX_LEN = 4096   # $P… sentences have no limit: u-blox PUBX,03 is ~20 per SV

# Reasons a candidate frame is rejected (keys of Framer.rejected).
BAD_CRC = "rtcm3_crc"
BAD_RTCM3_HEADER = "rtcm3_header"
BAD_UBX_CHECKSUM = "ubx_checksum"
BAD_UBX_LENGTH = "ubx_length"
BAD_NMEA_CHECKSUM = "nmea_checksum"
BAD_NMEA_FORMAT = "nmea_format"
TRUNCATED = "truncated"

# '$' starts a sentence and never occurs inside one (NMEA 0183 reserved character): a
# sentence cut short is therefore never glued to the next one.
_NMEA_LINE = re.compile(rb"\$[\x20-\x23\x25-\x7e]{1,%d}?\*([0-9A-Fa-f]{2})\r?\n"
                        % NMEA_PROPRIETARY_MAX_LEN)
_NMEA_SANE = re.compile(rb"\$[A-Z0-9]{2,10},[\x20-\x23\x25-\x7e]*\*[0-9A-Fa-f]{2}$")
_ADDRESS_BYTE = [0x41 <= c <= 0x5A or 0x30 <= c <= 0x39 for c in range(256)]   # A-Z 0-9
_PREAMBLES = re.compile(rb"[\xd3\xb5$]")


def _crc24q_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
        table.append(crc & 0xFFFFFF)
    return table


_CRC24Q = _crc24q_table()


def crc24q(data: bytes) -> int:
    """CRC-24Q (Qualcomm, polynomial 0x1864CFB, initial 0) as RTCM 10403 §4 uses."""
    crc = 0
    table = _CRC24Q
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFF) ^ table[(crc >> 16) ^ byte]
    return crc


def ubx_checksum(data: bytes) -> bytes:
    """8-bit Fletcher (CK_A, CK_B) over class, id, length and payload (u-blox)."""
    a = b = 0
    for byte in data:
        a = (a + byte) & 0xFF
        b = (b + a) & 0xFF
    return bytes((a, b))


def nmea_checksum(body: bytes) -> int:
    """XOR of the bytes between ``$`` and ``*`` (NMEA 0183)."""
    x = 0
    for byte in body:
        x ^= byte
    return x


@dataclass(frozen=True, slots=True)
class Frame:
    """One checked frame. ``kind`` is ``"rtcm3"``, ``"ubx"`` or ``"nmea"``.

    ``payload``: RTCM 3 message bytes (after the 3-byte header, before the CRC); UBX
    payload (after the length); NMEA: the sentence from ``$`` to the checksum digits.
    ``msg``: RTCM 3 message number, ``(class, id)`` for UBX, the sentence id
    (``"GNGGA"``) for NMEA. ``raw``: the whole frame as received.
    """

    kind: str
    msg: int | tuple[int, int] | str
    payload: bytes
    raw: bytes


class Framer:
    """Incremental framer for a mixed RTCM 3 / UBX / NMEA byte stream."""

    def __init__(self, max_pending: int = 1 << 16) -> None:
        self._buf = bytearray()
        self.max_pending = max_pending
        self.bytes_in = 0
        self.bytes_framed = 0
        self.bytes_skipped = 0
        self.frames: Counter[str] = Counter()     # good frames per kind
        self.rejected: Counter[str] = Counter()   # rejected candidates per reason

    @property
    def pending(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame]:
        """Add received bytes; return every complete, checked frame now available."""
        self.bytes_in += len(data)
        self._buf += data
        out = self._scan(final=False)
        if len(self._buf) > self.max_pending:   # a runaway partial frame: give up on it
            self._skip(len(self._buf) - self.max_pending)
        return out

    def flush(self) -> list[Frame]:
        """End of stream: frames still incomplete are counted as truncated and dropped."""
        return self._scan(final=True)

    def _skip(self, n: int) -> None:
        del self._buf[:n]
        self.bytes_skipped += n

    def _reject(self, reason: str) -> None:
        self.rejected[reason] += 1
        self._skip(1)

    def _take(self, n: int, frame: Frame, out: list[Frame]) -> None:
        del self._buf[:n]
        self.bytes_framed += n
        self.frames[frame.kind] += 1
        out.append(frame)

    def _scan(self, final: bool) -> list[Frame]:
        out: list[Frame] = []
        buf = self._buf
        while buf:
            m = _PREAMBLES.search(buf)
            if m is None:
                self._skip(len(buf))
                break
            if m.start():
                self._skip(m.start())
            lead = buf[0]
            if lead == RTCM3_PREAMBLE:
                done = self._rtcm3(out, final)
            elif lead == 0xB5:
                done = self._ubx(out, final)
            else:
                done = self._nmea(out, final)
            if not done:
                break
        return out

    def _need_more(self, final: bool) -> bool:
        """True when the caller should wait; at flush, count a truncated frame instead."""
        if not final:
            return True
        self._reject(TRUNCATED)
        return False

    def _rtcm3(self, out: list[Frame], final: bool) -> bool:
        buf = self._buf
        if len(buf) < 3:
            return not self._need_more(final)
        if buf[1] & 0xFC:                      # 6 reserved bits must be zero
            self._reject(BAD_RTCM3_HEADER)
            return True
        length = ((buf[1] & 0x03) << 8) | buf[2]
        total = 3 + length + 3
        if len(buf) < total:
            return not self._need_more(final)
        frame = bytes(buf[:total])
        if crc24q(frame[:-3]) != int.from_bytes(frame[-3:], "big"):
            self._reject(BAD_CRC)
            return True
        payload = frame[3:-3]
        msg = (payload[0] << 4) | (payload[1] >> 4) if length >= 2 else 0
        self._take(total, Frame("rtcm3", msg, payload, frame), out)
        return True

    def _ubx(self, out: list[Frame], final: bool) -> bool:
        buf = self._buf
        if len(buf) < 2:
            return not self._need_more(final)
        if buf[1] != 0x62:
            self._skip(1)                      # a lone 0xB5 byte: not even a candidate
            return True
        if len(buf) < 6:
            return not self._need_more(final)
        length = buf[4] | (buf[5] << 8)
        if length > UBX_MAX_PAYLOAD:
            self._reject(BAD_UBX_LENGTH)
            return True
        total = 6 + length + 2
        if len(buf) < total:
            return not self._need_more(final)
        frame = bytes(buf[:total])
        if ubx_checksum(frame[2:-2]) != frame[-2:]:
            self._reject(BAD_UBX_CHECKSUM)
            return True
        self._take(total, Frame("ubx", (frame[2], frame[3]), frame[6:-2], frame), out)
        return True

    def _nmea(self, out: list[Frame], final: bool) -> bool:
        buf = self._buf
        if len(buf) < 3:
            return not self._need_more(final)
        if not (_ADDRESS_BYTE[buf[1]] and _ADDRESS_BYTE[buf[2]]):
            self._skip(1)                      # a '$' inside binary data: not even a candidate
            return True
        limit = NMEA_PROPRIETARY_MAX_LEN if buf[1] == 0x50 else NMEA_MAX_LEN   # "$P…"
        m = _NMEA_LINE.match(buf)
        if m is not None and m.end() > limit + 6:   # "$" + body + "*hh\r\n"
            m = None                           # a standard sentence cannot be this long
        if m is None:
            end = buf.find(b"\n", 0, limit + 8)
            if end < 0 and len(buf) < limit + 8:
                if len(buf) > 1 and not all(0x20 <= c <= 0x7E or c == 0x0D for c in buf[1:]):
                    self._reject(BAD_NMEA_FORMAT)  # binary inside: not a sentence
                    return True
                return not self._need_more(final)
            self._reject(BAD_NMEA_FORMAT)
            return True
        sentence = bytes(buf[: m.start(1) + 2])
        if not _NMEA_SANE.match(sentence):
            self._reject(BAD_NMEA_FORMAT)
            return True
        if nmea_checksum(sentence[1:-3]) != int(m.group(1), 16):
            self._reject(BAD_NMEA_CHECKSUM)
            return True
        sid = sentence[1: sentence.index(b",")].decode("ascii")
        self._take(m.end(), Frame("nmea", sid, sentence, bytes(buf[: m.end()])), out)
        return True
