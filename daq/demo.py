"""``daq demo``: the daemon on the bundled demo configuration, watched as it publishes.

Starts a local mosquitto on a free port unless ``--mqtt-url`` names a broker, runs the
daemon (simulated reservoir instruments behind ``sim://``, no hardware), subscribes to its
topics and prints what arrives: a running count and a table of the latest values.
"""

from __future__ import annotations

import argparse
import json
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt

from .tables import render

BUNDLED = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"


class Watcher:
    def __init__(self, host: str, port: int, topic: str) -> None:
        self.latest: dict[str, dict[str, Any]] = {}
        self.readings = 0
        self.messages = 0
        self.status = "?"
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_connect = lambda c, *a: c.subscribe(topic, qos=1)
        self.client.on_message = self._on_message
        self.client.connect(host, port)
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            body = json.loads(msg.payload)
        except ValueError:
            return
        with self.lock:
            if msg.topic.endswith("/status"):
                self.status = body.get("state", "?")
            for r in body.get("readings", []):
                self.readings += 1
                self.latest[r["channel"]] = r
            self.messages += 1

    def table(self, limit: int = 60) -> str:
        with self.lock:
            # the engineering values a newcomer wants first; raw device channels otherwise
            rows = [r for ch, r in sorted(self.latest.items()) if "/" not in ch
                    and not ch.endswith((".head", ".pressure", ".digits"))] or \
                [r for _, r in sorted(self.latest.items())]
            shown = rows[:limit]
            text = render(["channel", "value", "unit", "quality", "time (UTC)", "seq"],
                          [[r["channel"], r["value"], r["unit"], r["quality"], r["ts"][11:23],
                            r["seq"]] for r in shown])
            more = len(rows) - len(shown)
        return text + (f"\n… and {more} more channels" if more > 0 else "")

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def run_demo(args: argparse.Namespace) -> int:
    from . import config, logs
    from .daemon import Daemon
    from .errors import ConfigError
    from .localbroker import LocalBroker

    path = Path(args.config) if args.config else BUNDLED
    try:
        cfg = config.load(path)
    except ConfigError as err:
        from .cli import _print_config_error

        _print_config_error(err)
        return 2
    tmp = tempfile.TemporaryDirectory(prefix="daq-demo-")
    broker = None
    url = args.mqtt_url
    if not url:
        try:
            broker = LocalBroker(Path(tmp.name)).start()
        except (FileNotFoundError, RuntimeError) as err:
            print(f"daq demo: {err}; or pass --mqtt-url mqtt://HOST:PORT", flush=True)
            return 1
        url = broker.url
    cfg = config.with_mqtt_url(cfg, url)
    assert cfg.mqtt is not None
    parts = urlsplit(url)
    logs.configure("warning", "console")
    state = Path(args.state_dir) if args.state_dir else Path(tmp.name) / "state"
    daemon = Daemon(cfg, state_dir=str(state))
    topic = f"{cfg.mqtt.prefix}/{cfg.site}/{cfg.rtu}/#"
    print(f"damwatch-daq demo: {len(cfg.devices)} simulated devices, broker {url}, "
          f"state {state}\nsubscribed to {topic}; Ctrl-C stops.\n"
          f"(another terminal: mosquitto_sub -p {parts.port} -t '{topic}' -v)", flush=True)
    watcher = Watcher(parts.hostname or "127.0.0.1", parts.port or 1883, topic)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    daemon.start()
    started = time.monotonic()
    try:
        while not stop.wait(5.0):
            elapsed = time.monotonic() - started
            print(f"\n[{elapsed:5.0f} s] broker says RTU {watcher.status}; "
                  f"{watcher.readings} readings in {watcher.messages} messages, "
                  f"{sum(daemon.outbox.depth().values())} buffered", flush=True)
            print(watcher.table(), flush=True)
            if args.duration and elapsed >= args.duration:
                break
    finally:
        daemon.shutdown()
        watcher.close()
        if broker is not None:
            broker.stop()
        tmp.cleanup()
    return 0 if watcher.readings else 1
