"""Fuzzing with ≥ 10⁵ generated inputs per decoder, built from real frames (fixed seeds).

Inputs are truncated, bit-flipped and random variants of frames taken from the real logs.
What must hold: no exception other than the decoders' own ``DecodeError`` ever escapes,
the framer recovers every intact frame placed after a damaged one, and the counts add up
(bytes framed + bytes skipped = bytes in; decoded + errors = inputs).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from daq.gnss.streams import nmea
from daq.gnss.streams.bits import DecodeError
from daq.gnss.streams.framing import Frame, Framer, crc24q, nmea_checksum, ubx_checksum
from daq.gnss.streams.rtcm3 import Rtcm3Decoder
from daq.gnss.streams.stream import GnssStream
from daq.gnss.streams.ubx import UbxDecoder

DATA = (Path(__file__).resolve().parents[1] / "../shared/data/gnss").resolve()
RAW = DATA / "raw"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"GNSS data folder {DATA} absent")
N = 100_000


def corpus(kind: str) -> list[Frame]:
    """Distinct real frames of one protocol, short ones favoured (they dominate streams)."""
    seen: dict[bytes, Frame] = {}
    for path in sorted(RAW.glob("*/*")):
        fr = Framer()
        data = path.read_bytes()
        for f in fr.feed(data) + fr.flush():
            if f.kind == kind and f.raw not in seen and len(seen) < 4000:
                seen[f.raw] = f
    return list(seen.values())


def variants(rng: random.Random, base: bytes, keep: int) -> Iterator[bytes]:
    """Endless mutations of ``base``: truncated, 1–8 bits flipped, or random tail."""
    while True:
        mode = rng.randrange(3)
        if mode == 0:
            yield base[:rng.randrange(len(base))]
        elif mode == 1:
            b = bytearray(base)
            for _ in range(rng.randint(1, 8)):
                b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
            yield bytes(b)
        else:
            yield base[:keep] + rng.randbytes(rng.randrange(64))


def fuzz_decoder(frames: list[Frame], decode: Callable[[Frame, bytes], Any], seed: int,
                 keep: int) -> Counter[str]:
    rng = random.Random(seed)
    outcomes: Counter[str] = Counter()
    gens = [variants(rng, f.payload, keep) for f in frames]
    for _ in range(N):
        k = rng.randrange(len(frames))
        payload = next(gens[k])
        try:
            decode(frames[k], payload)
            outcomes["decoded"] += 1
        except DecodeError as err:
            outcomes[err.reason] += 1
    assert sum(outcomes.values()) == N
    return outcomes


def test_rtcm3_decoder_survives_mutated_real_messages() -> None:
    frames = corpus("rtcm3")
    small = [f for f in frames if len(f.payload) < 200]
    big = [f for f in frames if len(f.payload) >= 200][:200]
    dec = Rtcm3Decoder()
    out = fuzz_decoder(small * 3 + big, lambda f, p: dec.decode(p), seed=1, keep=2)
    assert out["decoded"] > 10_000 and out["truncated"] > 10_000


def test_ubx_decoder_survives_mutated_real_messages() -> None:
    frames = corpus("ubx")
    dec = UbxDecoder()
    out = fuzz_decoder(frames, lambda f, p: dec.decode(f.msg, p), seed=2, keep=8)
    assert out["decoded"] > 10_000 and out["length"] > 10_000


def test_nmea_decoder_survives_mutated_real_sentences() -> None:
    frames = [f for f in corpus("nmea")
              if str(f.msg)[2:] in ("GGA", "RMC", "GST", "ZDA")]
    synthetic = [b"$GNGST,172814.0,0.006,0.023,0.020,273.6,0.023,0.020,0.031*4B",
                 b"$GPZDA,160012.71,09,08,2021,00,00*6A"]
    frames += [Frame("nmea", s[1:6].decode(), s, s) for s in synthetic]
    out = fuzz_decoder(frames, lambda f, p: nmea.decode(p), seed=3, keep=7)
    assert out["decoded"] > 10_000 and out["nmea_field"] > 5_000


def test_framer_recovers_every_intact_frame_after_each_damaged_one_and_counts_add_up() -> None:
    rng = random.Random(4)
    frames = corpus("rtcm3")[:300] + corpus("ubx")[:300] + corpus("nmea")[:600]
    body = b"GPZDA,160012.71,09,08,2021,00,00"
    sentinel = b"$" + body + b"*%02X\r\n" % nmea_checksum(body)
    gens = [variants(rng, f.raw, 1) for f in frames]
    parts = []
    for _ in range(N):
        parts.append(next(gens[rng.randrange(len(frames))]))
        parts.append(sentinel)
    stream = b"".join(parts)
    fr = Framer()
    found: Counter[bytes] = Counter()
    pos = 0
    while pos < len(stream):                      # receiver-like chunks of 1…4096 bytes
        step = rng.randint(1, 4096)
        for f in fr.feed(stream[pos:pos + step]):
            found[f.raw] += 1
        pos += step
    for f in fr.flush():
        found[f.raw] += 1
    # Resynchronised after every damaged input; the only sentinels lost are those a cut
    # frame swallowed while passing its checksum by chance (UBX's 16-bit Fletcher: a frame
    # one byte short completes with the next byte 1 time in 256). Damaged frames that pass
    # their checksum are counted per protocol: what each checksum lets through.
    lost = N - found[sentinel]
    extra = Counter({kind: sum(n for raw, n in found.items() if raw != sentinel
                                and raw[:1] == lead) for kind, lead in
                     (("rtcm3", b"\xd3"), ("ubx", b"\xb5"), ("nmea", b"$"))})
    assert extra["rtcm3"] == 0                    # CRC-24Q: no damaged frame got through
    assert lost <= extra["ubx"] < N // 1000       # Fletcher-16: a few
    # XOR: flipping the same bit in two characters cancels out, so some pass (counted)
    assert extra["nmea"] < N // 200
    assert fr.bytes_in == len(stream) == fr.bytes_framed + fr.bytes_skipped
    assert fr.pending == 0
    assert sum(fr.rejected.values()) > N // 2


def test_stream_decoder_counts_every_frame_as_decoded_or_undecodable() -> None:
    """Frames with valid checksums around mutated contents: no decoder bug is ever hit."""
    rng = random.Random(5)
    stream = GnssStream()
    frames = corpus("rtcm3")[:400] + corpus("ubx")[:400]
    total = 0
    for _ in range(N // 10):
        f = frames[rng.randrange(len(frames))]
        payload = bytearray(f.payload)
        for _ in range(rng.randint(1, 4)):
            payload[rng.randrange(len(payload))] ^= 1 << rng.randrange(8)
        if f.kind == "rtcm3":
            head = bytes([0xD3, len(payload) >> 8, len(payload) & 0xFF]) + payload
            raw = head + crc24q(head).to_bytes(3, "big")
        else:
            body = f.raw[2:6] + payload
            raw = b"\xb5\x62" + body + ubx_checksum(body)
        total += len(stream.feed(raw))
    total += len(stream.flush())
    assert sum(stream.framer.frames.values()) == N // 10
    assert sum(stream.decoded.values()) + sum(stream.decode_errors.values()) == N // 10
    assert total == sum(stream.decoded.values())
    assert not [k for k in stream.decode_errors if k.endswith(":bug")]
