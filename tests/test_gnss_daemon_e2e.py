"""GNSS in the running daemon, end to end (issues 4 and 5).

Receivers are simulated through pseudo-terminals by :class:`daq.gnss.replay.player.Replayer`,
time-accelerated; the daemon runs as its own process (``python -m daq run``) and publishes
to a mosquitto started for the test. The data is real: the RTCM 3 log of a reference
station (raw/f9p_2021) and the F9P 4-h base + rover session re-encoded as RTCM 3 MSM7 with
ephemerides (``rinex_to_rtcm``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from daq.gnss.obs import GNSSTime
from daq.gnss.replay.player import PtyWriter, Replayer, open_pty, rinex_to_rtcm
from daq.gnss.rinex import read_nav, read_obs
from daq.gnss.solver.baseline import SolverOptions, solve_baseline
from daq.gnss.solver.deformation import DamAxes
from daq.gnss.streams.stream import summarise

from .conftest import Broker, DaemonProcess, Subscriber, validator, wait_for

DATA = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "gnss").resolve()
F9P = DATA / "ppk_f9p_4h"
BASE_OBS = F9P / "base_2022-02-25_00-00-00_GNSS-1.obs"
ROVER_OBS = F9P / "rover_2022-02-25_13-26-06_GNSS-1.obs"
NAV = F9P / "base_2022-02-25_00-00-00_GNSS-1.nav"
RTCM_LOG = DATA / "raw" / "f9p_2021" / "20210809-111055-rtcm3-base-corrections.rtcm3"
BASE_XYZ = (2078720.6329, -5683487.5402, 2007608.6397)
ROVER_XYZ = (2077970.7070, -5684018.1979, 2006789.4508)
REF_EPOCH = (-886.9560, -853.8950, -28.4200)   # a survey the point has since moved from
AZIMUTH = 30.0
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not F9P.exists(), reason="shared GNSS data not present")]


@pytest.fixture
def ptys() -> Iterator[list[tuple[int, str]]]:
    opened: list[tuple[int, str]] = []
    yield opened
    for master, _ in opened:
        os.close(master)


def new_pty(ptys: list[tuple[int, str]]) -> tuple[int, str]:
    pair = open_pty()
    ptys.append(pair)
    return pair


def gps(text: str) -> float:
    return GNSSTime.from_calendar(datetime.fromisoformat(text), "GPST").gps_seconds


def daq(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daq", *args], capture_output=True,
                          text=True, timeout=120)


def gnss_status(d: DaemonProcess) -> dict[str, Any]:
    st = d.status()
    return (st or {}).get("gnss") or {}


def streams_open(d: DaemonProcess, n: int) -> bool:
    s = gnss_status(d).get("streams") or []
    return len(s) == n and all(x["open"] for x in s)


def test_issue4_a_replayed_receiver_is_recorded_into_a_session_exported_as_rinex(
        tmp_path: Path, run_daemon: Any, ptys: list[tuple[int, str]]) -> None:
    """867 s of a reference station's RTCM 3 at 100× → one 1-h session → RINEX 3.04."""
    master, slave = new_pty(ptys)
    cfg = tmp_path / "gnss.yaml"
    cfg.write_text(f"""\
site: test-site
rtu: rtu-g
buses: {{}}
gnss:
  streams:
    base_rx: {{url: {slave}, format: rtcm3, point: REF}}
  points:
    REF: {{role: reference}}
  sessions: {{hours: 1, close_after: 2s}}
""")
    d = run_daemon(cfg, None)
    wait_for(lambda: streams_open(d, 1), 300, "the daemon to open the receiver's port")
    out = PtyWriter(master)
    with Replayer(RTCM_LOG, out, speed=100) as replay:
        assert replay.wait(600) and replay.error is None
    assert out.dropped == 0
    # the stream falls silent: after close_after the session is closed by the wall clock
    st = wait_for(lambda: (g := gnss_status(d)) and not g["open_sessions"]
                  and g["store"]["sessions_closed"] == 1 and g, 300, "the session to close")
    (stream,) = st["streams"]
    assert stream["epochs"] == 867 and stream["decode_errors"] == {}
    assert stream["time_source"] == "rtcm1013" and stream["bytes"] == replay.bytes_written
    assert d.stop() == 0

    state = tmp_path / "state"
    listing = json.loads(daq("gnss", "sessions", "--json", "--state-dir", str(state)).stdout)
    assert [(s["id"], s["state"], s["epochs"]) for s in listing] == \
        [("REF/20210809T1500Z", "closed", 867)]
    res = daq("gnss", "export", "REF/20210809T1500Z", "--rinex", str(tmp_path / "rinex"),
              "--state-dir", str(state))
    assert res.returncode == 0, res.stderr
    obs = read_obs(res.stdout.split()[0])
    assert obs.problems == []
    msm_epochs = summarise(RTCM_LOG.read_bytes()).epochs
    assert len(obs.epochs) == len(msm_epochs) == 867
    tows = sorted(round(ep.time.sow, 3) for ep in obs.epochs)
    assert tows == sorted(msm_epochs)
    assert obs.epochs[0].time.to_calendar() == datetime(2021, 8, 9, 15, 11, 34)   # GPST
    assert np.allclose(obs.header.approx_xyz, (2078678.9505, -5683737.4210, 2006886.9706),
                       atol=1e-4)   # the station's RTCM 1006
    assert set(obs.header.obs_types) == {"G", "R", "E", "C"}


def test_issue5_two_replayed_receivers_give_a_deformation_result_equal_to_the_offline_solve(
        tmp_path: Path, broker: Broker, run_daemon: Any, ptys: list[tuple[int, str]]) -> None:
    """Base + rover, 13:26–16:10 GPST at 400×: the 12:00–16:00 UTC session closes by data
    time, is solved, and its result and alarm reach MQTT, schema-valid, within 1 mm of
    ``daq gnss solve`` on the original RINEX files and within 0.01 mm of a solve of the
    exported session."""
    (m_ref, p_ref), (m_mon, p_mon) = new_pty(ptys), new_pty(ptys)
    e, n, u = REF_EPOCH
    cfg = tmp_path / "gnss.yaml"
    cfg.write_text(f"""\
site: test-site
rtu: rtu-g
outbox: {{commit_interval: 200ms}}
buses: {{}}
gnss:
  streams:
    ref_rx: {{url: {p_ref}, format: rtcm3, point: REF}}
    mon_rx: {{url: {p_mon}, format: auto, point: P01}}
  points:
    REF: {{role: reference}}      # position from the stream's RTCM 1005
    P01:
      role: monitor
      reference: REF
      systems: GC
      dam_axis_azimuth_deg: {AZIMUTH}
      downstream_side: right
      reference_epoch: {{e: {e}, n: {n}, u: {u}, label: survey-2022}}
      alarm_mm: {{along: 10, downstream: 10, vertical: 3}}
  sessions: {{hours: 4, close_after: 60s, solve_wait: 60s}}
""")
    sub = Subscriber(broker.port)
    try:
        d = run_daemon(cfg, broker.url)
        wait_for(lambda: streams_open(d, 2), 300, "the daemon to open both ports")
        start, end = gps("2022-02-25 13:26:15"), gps("2022-02-25 16:10:00")
        replays = [Replayer(rinex_to_rtcm(obs, [NAV], xyz, systems="GEC", start=start,
                                          end=end), PtyWriter(master), speed=400)
                   for obs, xyz, master in ((BASE_OBS, BASE_XYZ, m_ref),
                                            (ROVER_OBS, ROVER_XYZ, m_mon))]
        for r in replays:
            r.start()
        msgs = wait_for(lambda: sub.payloads("/gnss/P01"), 900, "the session result on MQTT")
        alarms = wait_for(lambda: sub.payloads("/alarm/P01"), 120, "the displacement alarm")
        for r in replays:
            assert r.wait(600) and r.error is None
        st = wait_for(lambda: (g := gnss_status(d)) and all(
            x["epochs"] == 656 for x in g["streams"]) and g, 300, "every epoch in status")
        assert d.stop() == 0
    finally:
        sub.close()

    batch = validator("data.json")
    check = validator("gnss.json")
    readings = {}
    for m in msgs:
        batch.validate(m)
        for r in m["readings"]:
            check.validate(r)
            readings[r["quantity"]] = r
    # 6 of the session, 6 of the series (filtered displacement and velocity, issue 13)
    assert len(readings) == 12 and all(r["quality"] == "good" for r in readings.values())
    assert readings["filtered_vertical"]["series"]["status"] == "initialised"
    assert readings["filtered_vertical"]["value"] == readings["displacement_vertical"]["value"]
    s = readings["baseline_e"]["session"]
    assert (s["id"], s["verdict"], s["epochs"], s["base_xyz_source"]) == \
        ("P01/20220225T1200Z", "fixed", 617, "rtcm")
    assert (s["window_start"], s["window_end"]) == ("2022-02-25T12:00:00.000Z",
                                                    "2022-02-25T16:00:00.000Z")
    ours = np.array([readings[f"baseline_{c}"]["value"] for c in "enu"])

    # the offline solve of the original RINEX files, same window (GPST) and options
    res = daq("gnss", "solve", "--rover", str(ROVER_OBS), "--base", str(BASE_OBS),
              "--nav", str(NAV), f"--base-xyz={','.join(map(str, BASE_XYZ))}",
              "--systems", "GC", "--start", "2022-02-25 13:26:15",
              "--end", "2022-02-25 16:00:15", "--json")
    assert res.returncode == 0, res.stderr
    offline = json.loads(res.stdout)
    assert offline["verdict"] == "fixed" and offline["epochs"] == 617
    assert np.all(np.abs(ours - offline["enu_m"]) <= 0.001)
    dam = DamAxes(AZIMUTH, "right").rotate((np.array(offline["enu_m"]) - REF_EPOCH) * 1000)
    for axis, v in zip(("along", "downstream", "vertical"), dam, strict=True):
        assert abs(readings[f"displacement_{axis}"]["value"] - v) <= 1.0

    # the alarm: vertical beyond 3 mm, nothing else
    alarm_readings = [r for m in alarms for r in m["readings"]]
    assert [r["channel"] for r in alarm_readings] == ["P01.alarm.displacement_vertical"]
    a = alarm_readings[0]
    validator("reading.json").validate(a)
    assert a["alarm"]["kind"] == "displacement beyond threshold"
    assert a["value"] == readings["displacement_vertical"]["value"] and a["value"] < -3

    # the exported sessions solve to the same answer
    state = tmp_path / "state"
    files = {}
    for sid in ("P01/20220225T1200Z", "REF/20220225T1200Z"):
        out = daq("gnss", "export", sid, "--rinex", str(tmp_path / "rinex"),
                  "--state-dir", str(state))
        assert out.returncode == 0, out.stderr
        files[sid] = out.stdout.split()
    (mon_obs, mon_nav), (ref_obs, ref_nav) = files.values()
    sol = solve_baseline(read_obs(mon_obs), read_obs(ref_obs),
                         [read_nav(ref_nav), read_nav(mon_nav)], s["base_xyz_m"],
                         SolverOptions(systems="GC"))
    assert sol.fixed and np.all(np.abs(ours - sol.enu) <= 1e-5)

    # status: what each stream delivered, and the point's last solution
    assert all(x["decode_errors"] == {} and x["frames"] > 0 for x in st["streams"])
    assert st["points"]["P01"]["last"]["verdict"] == "fixed"
    assert st["open_sessions"] == ["P01/20220225T1600Z", "REF/20220225T1600Z"]
    shown = daq("status", "--state-dir", str(state)).stdout
    assert "P01/20220225T1200Z  fixed" in shown and "mon_rx" in shown
