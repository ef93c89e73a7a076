"""Drain rate: readings/s out of the outbox to a real mosquitto on loopback, QoS 1.

A backlog of N readings (20 devices x 10 registers, one row per poll, as after an outage)
is published by :class:`daq.publisher.Publisher` until every row is acknowledged and
deleted. The baseline, in the same run against the same broker: plain paho-mqtt publishing
the same readings, already as JSON, in messages of the same batch size with the same
inflight window, waiting for every PUBACK. Also reports the readings per message (full
batches while catching up). Run: ``python bench/bench_drain.py [N]``. Numbers, not
pass/fail.
"""

from __future__ import annotations

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


def fill(ob: Outbox, n: int) -> None:
    ts = utcnow()
    for t in range(n // 200):
        ob.add([(f"data/unit{d:02d}", Reading(
            device=f"unit{d:02d}", channel=f"unit{d:02d}/r{c}", quantity="water_level",
            value=100.0 + 0.001 * ((t + d + c) % 997), unit="m", quality=Quality.GOOD, ts=ts,
            lane=Lane.RAW)) for d in range(20) for c in range(10)])
    ob.sync()


def plain_paho(port: int, bodies: list[tuple[str, str]]) -> float:
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
        c.publish(topic, body, qos=1)
    done.wait(600)
    elapsed = time.perf_counter() - t0
    c.disconnect()
    c.loop_stop()
    return elapsed


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    with tempfile.TemporaryDirectory() as d:
        broker = LocalBroker(Path(d)).start()
        try:
            ob = Outbox(Path(d) / "o.db")
            fill(ob, n)
            rows = ob.pending(Lane.RAW, 0, 10**9)
            groups: dict[str, list[str]] = {}
            for r in rows:
                groups.setdefault(r.topic, []).extend(r.payload.split("},{"))
            bodies = []
            for topic, parts in groups.items():  # the same readings, batches of BATCH
                texts = [p if p.startswith("{") else "{" + p for p in parts]
                texts = [t if t.endswith("}") else t + "}" for t in texts]
                for i in range(0, len(texts), BATCH):
                    bodies.append((f"daq/v1/s/r/{topic}", '{"v":1,"site":"s","rtu":"r",'
                                   '"readings":[' + ",".join(texts[i:i + BATCH]) + "]}"))
            base = plain_paho(broker.port, bodies)
            cfg = MqttConfig(host="127.0.0.1", port=broker.port, tls_enabled=False,
                             prefix="daq/v1", client_id="bench-daq", username=None,
                             password=Secret(), tls=TlsConfig(), keepalive=30,
                             batch_size=BATCH, max_inflight=INFLIGHT, reconnect_min=0.1,
                             reconnect_max=1.0)
            # the daemon deletes acknowledged rows every 10 s or 2000 readings; a short
            # interval here keeps the wait for the last delete out of the rate
            pub = Publisher(cfg, ob, site="s", rtu="r", ack_interval=0.02)
            t0 = time.perf_counter()
            pub.start()
            while sum(ob.depth().values()):
                time.sleep(0.005)
            ours = time.perf_counter() - t0
            sent = pub.state.messages_sent
            pub.stop()
            pub.join(10)
            ob.close()
        finally:
            broker.stop()
    total = len(rows) * 10
    print(f"drain of {total} readings to mosquitto on loopback, QoS 1, batch {BATCH}, "
          f"inflight {INFLIGHT}")
    print(f"  plain paho (baseline): {total / base:>10.0f} readings/s, "
          f"{total / len(bodies):.1f} readings/message")
    print(f"  daq publisher:         {total / ours:>10.0f} readings/s, "
          f"{total / max(sent - 1, 1):.1f} readings/message  ({base / ours:.2f}x baseline; "
          "includes reading the outbox and deleting by range)")


if __name__ == "__main__":
    main()
