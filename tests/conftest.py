"""Shared fixtures: a real mosquitto per test on a free port, a subscriber, the daemon.

Nothing here mocks what the daemon depends on: the broker is the mosquitto binary, killed
and restarted to cut the link; the daemon runs as its own process (``python -m daq run``).
The machine's own broker on 127.0.0.1:1883 is never used.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from daq.localbroker import LocalBroker

REPO = Path(__file__).resolve().parents[1]
SHARED = (REPO / ".." / "shared").resolve()
SCHEMAS = REPO / "daq" / "schemas"


def wait_for(predicate: Callable[[], Any], timeout: float, what: str,
             interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Broker(LocalBroker):
    """The test's own mosquitto; ``stop()`` cuts the link, ``start()`` restores it."""

    def start(self, timeout: float = 10.0) -> Broker:
        super().start(timeout)
        return self


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path)
    b.start()
    yield b
    b.stop()


class Subscriber:
    """Collects every message under a topic filter; reconnects by itself after a restart."""

    def __init__(self, port: int, topic: str = "#") -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.connected = threading.Event()
        self.topic = topic
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"test-sub-{port}", clean_session=False)
        self.client.reconnect_delay_set(1, 1)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *a: self.connected.clear()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        wait_for(self.connected.is_set, 10, "the subscriber to connect")

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any,
                    props: Any = None) -> None:
        client.subscribe(self.topic, qos=1)
        self.connected.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def payloads(self, contains: str = "/data/") -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(p) for t, p, _ in self.messages if contains in t]

    def readings(self) -> list[dict[str, Any]]:
        return [r for m in self.payloads("/data/") for r in m["readings"]]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def subscriber(broker: Broker) -> Iterator[Subscriber]:
    s = Subscriber(broker.port)
    yield s
    s.close()


class DaemonProcess:
    """``python -m daq run`` as a real child process."""

    def __init__(self, config: Path, state_dir: Path, mqtt_url: str | None,
                 log: Path, env: dict[str, str] | None = None) -> None:
        self.env = env
        self.args = [sys.executable, "-m", "daq", "run", "--config", str(config),
                     "--state-dir", str(state_dir), "--log-format", "json"]
        if mqtt_url:
            self.args += ["--mqtt-url", mqtt_url]
        self.log = log
        self.state_dir = state_dir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> DaemonProcess:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT,
                                         cwd=REPO, env=self.env)
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise

    def status(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.state_dir / "status.json").read_text())
        except (OSError, ValueError):
            return None

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out


@pytest.fixture
def run_daemon(tmp_path: Path) -> Iterator[Callable[..., DaemonProcess]]:
    started: list[DaemonProcess] = []

    def start(config: Path, mqtt_url: str | None, state_dir: Path | None = None,
              env: dict[str, str] | None = None) -> DaemonProcess:
        d = DaemonProcess(config, state_dir or tmp_path / "state", mqtt_url,
                          tmp_path / "daemon.log", env)
        started.append(d.start())
        return d

    yield start
    for d in started:
        if d.proc is not None and d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait(10)


def validator(name: str) -> Any:
    """A jsonschema validator for one of the payload schemas in daq/schemas."""
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    resources = []
    for path in SCHEMAS.glob("*.json"):
        doc = json.loads(path.read_text())
        resources.append((doc["$id"], Resource.from_contents(doc)))
        resources.append((path.name, Resource.from_contents(doc)))
    registry: Registry[Any] = Registry().with_resources(resources)
    schema = json.loads((SCHEMAS / name).read_text())
    return Draft202012Validator(schema, registry=registry)


@pytest.fixture
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="daq-test-") as d:
        yield Path(d)
