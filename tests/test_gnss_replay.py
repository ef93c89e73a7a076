"""Simulated receivers: a real log or a RINEX session replayed into a pseudo-terminal (read
back with pyserial, as the daemon would), a TCP server, the ``daq gnss replay`` command."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from daq.gnss.obs import GNSSTime
from daq.gnss.replay.outputs import TcpServer, open_output
from daq.gnss.replay.player import (
    PtyWriter,
    Replayer,
    open_pty,
    raw_log_chunks,
    rinex_to_rtcm,
)
from daq.gnss.streams.framing import Framer
from daq.gnss.streams.records import ObsEpoch as RecEpoch
from daq.gnss.streams.stream import GnssStream
from daq.gnss.streams.to_model import EpochAssembler

REPO = Path(__file__).resolve().parents[1]
GNSS = (REPO / ".." / "shared" / "data" / "gnss").resolve()
F9P_RTCM = GNSS / "raw/f9p_2021/20210809-111055-rtcm3-base-corrections.rtcm3"
F9P_UBX = GNSS / "raw/f9p_2021/20210809-121012-ubx-nmea-data.ubx"
ROVER = GNSS / "ppk_f9p_4h/rover_2022-02-25_13-26-06_GNSS-1.obs"
NAV = GNSS / "ppk_f9p_4h/base_2022-02-25_00-00-00_GNSS-1.nav"
ROVER_XYZ = (2077970.707, -5684018.1979, 2006789.4508)
pytestmark = pytest.mark.skipif(not GNSS.exists(), reason="shared GNSS data not present")


@pytest.fixture
def pty() -> Iterator[tuple[int, serial.Serial]]:
    """A pty pair; the slave opened with pyserial *before* anything is written."""
    master, path = open_pty()
    port = serial.Serial(path, 115200, timeout=0.2)
    yield master, port
    port.close()
    os.close(master)


def read_until(port: serial.Serial, n: int, timeout: float) -> bytes:
    got = bytearray()
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        try:
            got += port.read(65536)
        except serial.SerialException:   # the writer closed the pty: nothing more comes
            break
    return bytes(got)


def test_raw_log_chunks_rejoin_to_the_file_from_its_first_frame() -> None:
    """RTCM log: one chunk per MSM epoch (867 s at 1 Hz), times non-decreasing; UBX log
    timed by RXM-RAWX/NAV-PVT; bytes before the first frame are the only ones left out."""
    for path, n_min in ((F9P_RTCM, 860), (F9P_UBX, 100)):
        data = path.read_bytes()
        chunks = raw_log_chunks(data)
        joined = b"".join(c for _t, c in chunks)
        first = data.index(joined[:64])
        assert joined == data[first:]
        times = [t for t, _c in chunks]
        assert len(chunks) >= n_min and times == sorted(times)
    rtcm = raw_log_chunks(F9P_RTCM.read_bytes())
    assert rtcm[-1][0] - rtcm[0][0] == pytest.approx(866.0)


def test_real_rtcm_log_at_60x_arrives_complete_and_in_order(pty: tuple[int, serial.Serial]
                                                            ) -> None:
    """867 s of a reference station's RTCM 3 at 60x through a pty: every byte, in order,
    and never faster than the pace (866/60 ≈ 14 s; how much slower a loaded machine is,
    is not this test's business)."""
    master, port = pty
    data = F9P_RTCM.read_bytes()
    expected = b"".join(c for _t, c in raw_log_chunks(data))
    t0 = time.monotonic()
    writer = PtyWriter(master)
    with Replayer(F9P_RTCM, writer, speed=60) as rep:
        got = read_until(port, len(expected), timeout=600)
        elapsed = time.monotonic() - t0
        assert rep.wait(120) and rep.error is None
    assert got == expected and writer.dropped == 0
    assert elapsed > 866 / 60 * 0.8
    assert rep.chunks_written == len(raw_log_chunks(data))


def test_rinex_session_at_600x_decodes_to_the_rinex_epochs(pty: tuple[int, serial.Serial]
                                                           ) -> None:
    """30 min of the F9P rover as RTCM 3 at 600x into a pty: our decoder, reading the
    slave, gets all 120 epochs at the RINEX times, the station and the ephemerides."""
    master, port = pty
    start = GNSSTime(2198, 5 * 86400 + 13 * 3600 + 30 * 60.0).gps_seconds
    chunks = list(rinex_to_rtcm(ROVER, [NAV], ROVER_XYZ, start=start, end=start + 1799))
    total = sum(len(c) for _t, c in chunks)
    t0 = time.monotonic()
    with Replayer(chunks, PtyWriter(master), speed=600) as rep:
        got = read_until(port, total, timeout=600)
        elapsed = time.monotonic() - t0
        assert rep.wait(120)
    assert len(got) == total and elapsed > 1800 / 600 * 0.8
    stream, asm = GnssStream(), EpochAssembler(2198)
    epochs, kinds = [], set()
    for _f, rec in stream.feed(got):
        kinds.add(type(rec).__name__)
        if isinstance(rec, RecEpoch):
            epochs += asm.add(rec)
    assert [e.time.gps_seconds for e in epochs] == [t for t, _c in chunks]
    assert len(epochs) == 120 and {"Station", "Ephemeris"} <= kinds


def test_rinex_to_rtcm_sends_ephemerides_at_start_when_new_and_every_5_min() -> None:
    """First epoch: station + the newest ephemeris of each satellite already broadcast
    (GPS ones only from 13:16 on, their ``ttr``); later epochs carry only newly broadcast
    ones, except every 5 min of data time when all current ones repeat."""
    chunks = list(rinex_to_rtcm(ROVER, NAV, ROVER_XYZ, systems="GC"))
    per_epoch = [[f.msg for f in Framer().feed(data)] for _t, data in chunks]
    eph_counts = [sum(m in (1019, 1042) for m in e) for e in per_epoch]
    assert per_epoch[0][0] == 1005 and per_epoch[1].count(1005) == 0
    assert all(m in (1005, 1019, 1042, 1077, 1127) for e in per_epoch for m in e)
    assert all(e[-1] in (1077, 1127) for e in per_epoch)
    assert eph_counts[0] >= 5
    assert eph_counts[20] >= eph_counts[0]                # 20 epochs of 15 s: repeat
    assert sum(eph_counts[1:20]) < eph_counts[20]         # in between: only new ones
    stream = GnssStream()
    sent = {(r.sys, r.prn) for _f, r in stream.feed(b"".join(c for _t, c in chunks))
            if type(r).__name__ == "Ephemeris"}
    assert len({s for s in sent if s[0] == "G"}) >= 8 and len(sent) >= 20


def test_stop_ends_a_real_time_replay_early() -> None:
    """At 1x the 867 s log would take 14 min: stop() after a few chunks ends the thread."""
    out: list[bytes] = []
    rep = Replayer(F9P_RTCM, out.append, speed=1.0).start()
    deadline = time.monotonic() + 120
    while len(out) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    rep.stop(timeout=120)
    assert rep.done.is_set() and 2 <= rep.chunks_written < 10


def test_loop_starts_over_and_start_skips_data_time() -> None:
    """``start`` skips the first seconds of data; ``loop`` plays the chunks again."""
    chunks = [(100.0 + i, bytes([i])) for i in range(10)]
    out: list[bytes] = []
    assert Replayer(chunks, out.append, speed=math.inf, start=5.0).start().wait(120)
    assert out == [bytes([i]) for i in range(5, 10)]
    looped: list[bytes] = []
    rep = Replayer(iter(chunks), looped.append, speed=1000.0, loop=True).start()
    deadline = time.monotonic() + 120
    while len(looped) < 25 and time.monotonic() < deadline:
        time.sleep(0.01)
    rep.stop(timeout=120)
    assert looped[:25] == [bytes([i % 10]) for i in range(25)]


def test_pty_writer_drops_and_counts_when_nobody_reads() -> None:
    """No reader: the kernel buffer fills, the rest is dropped after the timeout, counted."""
    master, _path = open_pty()
    try:
        w = PtyWriter(master, timeout=0.05)
        for _ in range(20):
            w.write(b"\xd3" * 8192)
        assert w.dropped > 0
    finally:
        os.close(master)


def test_an_unpaced_replay_into_a_slow_pty_reader_delivers_every_byte_before_closing(
        ) -> None:
    """``--speed inf`` into a pty whose reader stalls (1.5 s at the start, 6 s once the
    writer is done: a loaded machine): nothing is dropped, and the close waits for the
    reader instead of discarding what it has not read yet (the rover's last epoch)."""
    data = F9P_RTCM.read_bytes()[:150_000]
    expected = b"".join(c for _t, c in raw_log_chunks(data))
    out = open_output("pty")
    port = serial.Serial(out.where, 115200, timeout=0.2)
    rep = Replayer(data, out.write, speed=math.inf)
    got = bytearray()
    closed = threading.Event()

    def slow_reader() -> None:
        time.sleep(1.5)                    # longer than the writer's 1-s patience
        while not rep.done.is_set():
            got.extend(port.read(4096))
            time.sleep(0.05)
        time.sleep(6.0)                    # the writer is done, the reader is late
        while True:
            try:
                chunk = port.read(65536)
            except serial.SerialException:
                break
            if not chunk and closed.is_set():
                break
            got.extend(chunk)

    reader = threading.Thread(target=slow_reader)
    reader.start()
    try:
        rep.start()
        assert rep.wait(300) and rep.error is None
        left = out.close()                 # returns once the reader has taken everything
        closed.set()
        reader.join(300)
    finally:
        closed.set()
        port.close()
    assert isinstance(out.write, PtyWriter) and out.write.dropped == 0
    assert left == 0 and bytes(got) == expected


def test_tcp_server_sends_the_stream_to_a_connected_client() -> None:
    server = TcpServer("127.0.0.1", 0)
    try:
        client = socket.create_connection(("127.0.0.1", server.port), timeout=120)
        deadline = time.monotonic() + 120
        while server.clients == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.clients == 1
        chunks = [(float(i), bytes([i]) * 100) for i in range(20)]
        assert Replayer(chunks, server, speed=math.inf).start().wait(120)
        got = bytearray()
        while len(got) < 2000:
            got += client.recv(4096)
        assert bytes(got) == b"".join(c for _t, c in chunks)
        client.close()
    finally:
        server.close()


def test_open_output_accepts_pty_tcpsvr_and_pyserial_urls() -> None:
    out = open_output("loop://")
    out.write(b"abc")
    out.close()
    out = open_output("tcpsvr://127.0.0.1:0")
    assert out.where.startswith("tcp://127.0.0.1:")
    out.close()
    out = open_output("pty")
    assert out.where.startswith("/dev/pts/")
    out.close()


def test_cli_replay_prints_the_pty_path_and_plays_the_log_into_it() -> None:
    """``daq gnss replay FILE --to pty --speed 200``: first stdout line is the pty to
    open; the log's bytes arrive there; exit code 0 at the end."""
    proc = subprocess.Popen([sys.executable, "-m", "daq.gnss.cli.replay", str(F9P_RTCM),
                             "--to", "pty", "--speed", "200", "--wait-reader", "10"],
                            stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert proc.stdout is not None
        path = proc.stdout.readline().split()[-1]
        assert path.startswith("/dev/pts/")
        with serial.Serial(path, 115200, timeout=0.2) as port:
            expected = b"".join(c for _t, c in raw_log_chunks(F9P_RTCM.read_bytes()))
            got = read_until(port, len(expected), timeout=600)
        assert got == expected
        assert proc.wait(300) == 0
    finally:
        proc.kill()
        proc.wait()


def test_cli_replay_bad_input_exits_2_with_a_message() -> None:
    for argv in (["/nonexistent.rtcm3"], [str(F9P_RTCM), "--speed", "0"],
                 ["--rinex", str(ROVER)]):
        r = subprocess.run([sys.executable, "-m", "daq.gnss.cli.replay", *argv,
                            "--to", "loop://"], capture_output=True, text=True, cwd=REPO,
                           timeout=300)
        assert r.returncode == 2 and "daq gnss replay:" in r.stderr
