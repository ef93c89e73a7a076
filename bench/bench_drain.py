"""Drain rate: readings/s out of the outbox to a real mosquitto on loopback, QoS 1.

A backlog of N readings (20 devices x 10 registers, one row per poll, as after an outage)
is published by :class:`daq.publisher.Publisher` until every row is acknowledged and
deleted. Two baselines, in the same run against the same broker, in messages of the same
batch size with the same inflight window, waiting for every PUBACK:

- plain paho publishing the same readings already as the JSON text of each message (the
  transport alone: nothing read, decoded or deleted);
- plain paho publishing the same readings held in memory as dicts, each message encoded
  with ``json.dumps`` (a publisher without a store).

Each is run ``REPEATS`` times, alternating, and the median reported. Also reports the
readings per message (full batches while catching up). Run:
``python bench/bench_drain.py [N]``. Numbers, not pass/fail.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt

from daq.config import MqttConfig, Secret, TlsConfig
from daq.localbroker import LocalBroker
from daq.model import Lane, Quality, Reading, utcnow
from daq.outbox import Outbox
from daq.publisher import Publisher

BATCH, INFLIGHT = 100, 20
REPEATS = 7


def fill(ob: Outbox, n: int) -> None:
    ts = utcnow()
    for t in range(n // 200):
        ob.add([(f"data/unit{d:02d}", Reading(
            device=f"unit{d:02d}", channel=f"unit{d:02d}/r{c}", quantity="water_level",
            value=100.0 + 0.001 * ((t + d + c) % 997), unit="m", quality=Quality.GOOD, ts=ts,
            lane=Lane.RAW)) for d in range(20) for c in range(10)])
    ob.sync()


def plain_paho(port: int, bodies: list[tuple[str, str | list[dict[str, object]]]]) -> float:
    """Seconds to publish every (topic, body) and get every PUBACK; a body that is a list
    of readings is encoded with json.dumps as it is published."""
    done = threading.Event()
    acked = [0]

    def on_publish(*_: object) -> None:
        acked[0] += 1
        if acked[0] == len(bodies):
            done.set()

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-plain")
    c.max_inflight_messages_set(INFLIGHT)
    c.max_queued_messages_set(0)
    c.on_publish = on_publish
    c.connect("127.0.0.1", port)
    c.loop_start()
    t0 = time.perf_counter()
    for topic, body in bodies:
        if not isinstance(body, str):
            body = json.dumps({"v": 1, "site": "s", "rtu": "r", "readings": body},
                              separators=(",", ":"))
        c.publish(topic, body, qos=1)
    done.wait(600)
    elapsed = time.perf_counter() - t0
    c.disconnect()
    c.loop_stop()
    return elapsed


class _Watched(Outbox):
    """The outbox, saying when the last row is deleted (no polling thread beside the
    publisher to compete for the GIL, as the baselines wait on an event too)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.empty = threading.Event()

    def ack_through(self, lane: Lane, last_id: int) -> int:
        n = super().ack_through(lane, last_id)
        if not sum(self.depth().values()):
            self.empty.set()
        return n


def ours(port: int, db: Path) -> tuple[float, int]:
    """Seconds to drain the outbox at ``db`` and the messages sent."""
    ob = _Watched(db)
    cfg = MqttConfig(host="127.0.0.1", port=port, tls_enabled=False,
                     prefix="daq/v1", client_id="bench-daq", username=None,
                     password=Secret(), tls=TlsConfig(), keepalive=30,
                     batch_size=BATCH, max_inflight=INFLIGHT, reconnect_min=0.1,
                     reconnect_max=1.0)
    # the daemon deletes acknowledged rows every 10 s or 2000 readings; a short
    # interval here keeps the wait for the last delete out of the rate
    pub = Publisher(cfg, ob, site="s", rtu="r", ack_interval=0.02)
    t0 = time.perf_counter()
    pub.start()
    ob.empty.wait(600)
    elapsed = time.perf_counter() - t0
    sent = pub.state.messages_sent - 1  # less the retained online status
    pub.stop()
    pub.join(10)
    ob.close()
    return elapsed, sent


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    with tempfile.TemporaryDirectory() as d:
        broker = LocalBroker(Path(d)).start()
        try:
            filled = Path(d) / "filled.db"
            ob = Outbox(filled)
            fill(ob, n)
            rows = ob.pending(Lane.RAW, 0, 10**9)
            ob.close()  # checkpointed: one file to copy for each run
            groups: dict[str, list[str]] = {}
            for r in rows:
                groups.setdefault(r.topic, []).extend(r.payload.split("},{"))
            texts_of: dict[str, list[str]] = {}
            for topic, parts in groups.items():
                texts = [p if p.startswith("{") else "{" + p for p in parts]
                texts_of[topic] = [t if t.endswith("}") else t + "}" for t in texts]
            bodies: list[tuple[str, str | list[dict[str, object]]]] = []
            dicts: list[tuple[str, str | list[dict[str, object]]]] = []
            for topic, texts in texts_of.items():  # the same readings, batches of BATCH
                for i in range(0, len(texts), BATCH):
                    part = texts[i:i + BATCH]
                    bodies.append((f"daq/v1/s/r/{topic}", '{"v":1,"site":"s","rtu":"r",'
                                   '"readings":[' + ",".join(part) + "]}"))
                    dicts.append((f"daq/v1/s/r/{topic}", [json.loads(t) for t in part]))
            base, enc, mine, sent = [], [], [], 0
            for k in range(REPEATS):
                base.append(plain_paho(broker.port, bodies))
                enc.append(plain_paho(broker.port, dicts))
                run = Path(d) / f"run{k}.db"
                shutil.copyfile(filled, run)
                took, sent = ours(broker.port, run)
                mine.append(took)
        finally:
            broker.stop()
    total = len(rows) * 10
    rate = {name: total / statistics.median(v)
            for name, v in (("base", base), ("enc", enc), ("ours", mine))}
    print(f"drain of {total} readings to mosquitto on loopback, QoS 1, batch {BATCH}, "
          f"inflight {INFLIGHT}; median of {REPEATS} runs each")
    for name, v in (("baseline", base), ("json.dumps", enc), ("daq", mine)):
        print(f"  runs, k readings/s, {name}: " + " ".join(f"{total / t / 1e3:.0f}" for t in v))
    print("  ratio daq/baseline, run by run: " + " ".join(
        f"{b / m:.2f}" for b, m in zip(base, mine, strict=True)))
    print(f"  plain paho, JSON text ready (baseline): {rate['base']:>10.0f} readings/s, "
          f"{total / len(bodies):.1f} readings/message")
    print(f"  plain paho, json.dumps of dicts:        {rate['enc']:>10.0f} readings/s "
          f"({rate['enc'] / rate['base']:.2f}x baseline)")
    print(f"  daq publisher (read, inflate, delete):  {rate['ours']:>10.0f} readings/s, "
          f"{total / max(sent, 1):.1f} readings/message ({rate['ours'] / rate['base']:.2f}x "
          f"baseline, {rate['ours'] / rate['enc']:.2f}x json.dumps)")


if __name__ == "__main__":
    main()
