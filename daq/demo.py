"""``daq demo``: the daemon on the bundled demo configuration, watched as it publishes.

Starts a local mosquitto on a free port unless ``--mqtt-url`` names a broker, runs the
daemon (simulated reservoir instruments behind ``sim://``, no hardware), subscribes to its
topics and prints what arrives: a running count and a table of the latest values.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

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
            # a piezometer's pressure and head are steps to its elevation: show the
            # elevation; a barometer's pressure is its value and stays
            tops = {ch.rpartition(".")[0] for ch in self.latest if ch.endswith(".elevation")}
            rows = [r for ch, r in sorted(self.latest.items()) if "/" not in ch
                    and not ch.endswith(".digits")
                    and not (ch.endswith((".head", ".pressure"))
                             and ch.rpartition(".")[0] in tops)] or \
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


def _simulated_faults(cfg: Any) -> str:
    """What the sim:// lines do wrong on purpose, so a 'missing' row is not a surprise."""
    notes = []
    for bus in cfg.buses:
        if not bus.url.startswith("sim://"):
            continue
        q = parse_qs(urlsplit(bus.url).query)
        dropout = float(q.get("dropout", ["0"])[0])
        spikes = float(q.get("spikes", ["0"])[0])
        if dropout:
            notes.append(f"{dropout:.0%} of requests on {bus.name} get no reply on purpose "
                         "(dropout= in its url): such a poll is published as a 'missing' "
                         "gap record, as a dead cable would be")
        if spikes:
            notes.append(f"{spikes:.1%} of samples carry a spike on purpose (spikes= in "
                         "its url), as real sensors now and then do")
    return "\n".join(f"note: {n}" for n in notes)


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
    faults = _simulated_faults(cfg)
    if faults:
        print(faults, flush=True)
    daemon.start()
    started = time.monotonic()
    in_place = sys.stdout.isatty()  # a terminal redraws one screen; a pipe gets a log
    try:
        while not stop.wait(5.0):
            elapsed = time.monotonic() - started
            head = (f"[{elapsed:5.0f} s] broker says RTU {watcher.status}; "
                    f"{watcher.readings} readings in {watcher.messages} messages, "
                    f"{sum(daemon.outbox.depth().values())} buffered")
            if in_place:
                print("\x1b[H\x1b[J" + head + (f"\n{faults}" if faults else "") + "\n",
                      flush=True)
            else:
                print("\n" + head, flush=True)
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
