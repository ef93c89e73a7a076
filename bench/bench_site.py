"""The reference site on simulated sensors, with and without the processing chains.

17 piezometers at 10 min, 3 weirs at 1 min, 2 level gauges at 1 s (two sim:// lines), rain
and barometer at 1 min, an RTK GNSS rover reporting NMEA at 1 s (simgnss://, its own serial
line, the ``nmea`` driver), publishing to a local mosquitto. For each run: time from start
to the first message at the broker, time until the chains are ready (the daemon's
``processing_kernels_ready`` log line: kernels compiled or loaded in the background while
readings of unchained channels already flow), CPU share of one core over the measuring
period, peak RSS (VmHWM) and RSS at the end (VmRSS), in MiB = 2^20 bytes (and the peak in
MB = 10^6 bytes). Runs: no chains (the in-run baseline), chains with a cold Numba cache,
chains with the now warm cache. The daemon runs with ``MALLOC_ARENA_MAX=2`` as under
``systemd/daq.service``.
Run: ``python bench/bench_site.py [seconds]`` (default 60 s of measurement per run).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import yaml

from daq.localbroker import LocalBroker

REPO = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")
UNIT_ENV = {"MALLOC_ARENA_MAX": "2"}  # as systemd/daq.service sets it
MIB, MB = 2**20, 10**6


def site_config(path: Path, chains: bool) -> Path:
    demo = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    bus = demo["buses"]["rs485_sim"]
    bus["url"] = "sim://site?seed=1&spikes=0.001"
    for name, dev in bus["devices"].items():
        dev["interval"] = {"level": "1s", "vw_a": "10min", "vw_b": "10min"}.get(name, "1min")
    level2 = {"protocol": "modbus_rtu", "url": "sim://site2?seed=2&spikes=0.001",
              "timeout": "200ms", "devices": {"level2": dict(bus["devices"]["level"])}}
    demo["buses"]["rs485_sim2"] = level2
    demo["sensors"]["LEVEL2"] = {**demo["sensors"]["LEVEL"],
                                 "inputs": {"distance": "level2/distance"}}
    demo["buses"]["gnss"] = {  # drivers/nmea/sample.yaml's options, the rover's pier
        "protocol": "serial", "url": "simgnss://pier?seed=1&lat=36.1&lon=117.2&height=60",
        "baudrate": 115200, "timeout": "100ms",
        "devices": {"gnss": {"driver": "nmea", "interval": "1s", "options": {
            "reference": {"lat": 36.1, "lon": 117.2, "height": 60.0},
            "max_read": 65536, "keep_fixes": 14400}}}}
    demo.pop("mqtt", None)
    if chains:
        despike = {"window": 7, "threshold": 3, "min_deviation": 0.05}
        demo["processing"] = {"timezone": "Asia/Shanghai", "day_start": 8, "chains": {
            "LEVEL.level": {"despike": despike, "summaries": ["10min"]},
            "LEVEL2.level": {"despike": despike, "summaries": ["10min"]},
            **{f"W{i}.flow": {"summaries": ["1h"]} for i in (1, 2, 3)},
            **{f"P{i:02d}.elevation": {"summaries": ["1d"]} for i in range(1, 18)},
            "RAIN.rainfall": {"totals": ["1h", "1d"]},
        }}
    path.write_text(yaml.safe_dump(demo, sort_keys=False))
    return path


def proc_cpu(pid: int) -> float:
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / TICK


def vm(pid: int, field: str = "VmHWM") -> float:
    """Peak (``VmHWM``) or present (``VmRSS``) resident memory in bytes (``/proc`` gives
    KiB, whatever its label says)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024.0
    return float("nan")


def run(work: Path, broker: LocalBroker, chains: bool, cache: Path, seconds: float,
        tag: str) -> dict[str, Any]:
    first = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-{tag}")
    client.on_connect = lambda c, *a: c.subscribe("daq/v1/+/+/data/#", qos=1)
    client.on_message = lambda *a: first.set()
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    time.sleep(0.5)
    cfg = site_config(work / f"{tag}.yaml", chains)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), **UNIT_ENV}
    log = work / f"{tag}.log"
    with log.open("w") as out:
        t0, wall0 = time.perf_counter(), time.time()
        p = subprocess.Popen([sys.executable, "-m", "daq", "run", "--config", str(cfg),
                              "--state-dir", str(work / f"state-{tag}"), "--mqtt-url",
                              broker.url, "--log-format", "json"], env=env, cwd=REPO,
                             stdout=out, stderr=out)
    first.wait(60)
    first_s = time.perf_counter() - t0
    time.sleep(5)  # start-up done
    c0, w0 = proc_cpu(p.pid), time.perf_counter()
    time.sleep(seconds)
    cpu = (proc_cpu(p.pid) - c0) / (time.perf_counter() - w0)
    rss, now = vm(p.pid), vm(p.pid, "VmRSS")
    p.terminate()
    p.wait(30)
    client.loop_stop()
    client.disconnect()
    return {"first_s": first_s, "ready_s": ready_at(log, wall0), "cpu": cpu,
            "rss_bytes": rss, "rss_end": now}


def ready_at(log: Path, wall0: float) -> float | None:
    """Seconds from the start to the daemon's ``processing_kernels_ready`` line."""
    for line in log.read_text().splitlines():
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if ev.get("event") == "processing_kernels_ready":
            ts = datetime.fromisoformat(ev["timestamp"].replace("Z", "+00:00"))
            return ts.timestamp() - wall0
    return None


def main(seconds: float) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-site-") as d:
        work = Path(d)
        broker = LocalBroker(work)
        broker.start()
        try:
            cache = work / "numba-cache"
            rows = [("no chains (baseline)", run(work, broker, False, cache, seconds, "base")),
                    ("chains, cold cache", run(work, broker, True, cache, seconds, "cold")),
                    ("chains, warm cache", run(work, broker, True, cache, seconds, "warm"))]
        finally:
            broker.stop()
    base = rows[0][1]
    print(f"reference site on sim://, {seconds:.0f} s measured per run")
    print(f"  {'run':<22} {'first msg':>10} {'chains ready':>13} {'CPU of a core':>14} "
          f"{'peak RSS (VmHWM)':>22} {'RSS at the end':>15}")
    for name, r in rows:
        ready = "-" if r["ready_s"] is None else f"{r['ready_s']:.2f}s"
        print(f"  {name:<22} {r['first_s']:9.2f}s {ready:>13} {100 * r['cpu']:13.2f}% "
              f"{r['rss_bytes'] / MIB:7.1f} MiB = {r['rss_bytes'] / MB:5.1f} MB "
              f"{r['rss_end'] / MIB:9.1f} MiB   "
              f"(CPU ×{r['cpu'] / max(base['cpu'], 1e-9):.2f}, "
              f"RSS ×{r['rss_bytes'] / base['rss_bytes']:.2f} of the baseline)")


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 60.0)
