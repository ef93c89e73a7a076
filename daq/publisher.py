"""The publisher: outbox rows to MQTT (paho-mqtt 2.x, QoS 1); a row leaves only on PUBACK.

Each connection gets a fresh paho client, so nothing is queued inside paho across a link
loss: after a reconnect, sending restarts from the oldest unacknowledged row of each lane.
That may deliver a reading twice (QoS 1 may anyway); ``(rtu, channel, seq)`` is the
idempotency key that lets subscribers drop the copy. Order within a channel is kept,
because rows are sent in insertion order on one connection and MQTT keeps that order.
"""

from __future__ import annotations

import collections
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
import structlog

from . import __version__
from .config import MqttConfig
from .model import Lane, format_ts, utcnow
from .outbox import Outbox, Row

log = structlog.get_logger("daq.publisher")

PAYLOAD_VERSION = 1


@dataclass
class LinkState:
    """What ``daq status`` shows about the broker link."""

    connected: bool = False
    since: str | None = None
    last_error: str | None = None
    connects: int = 0
    messages_sent: int = 0
    readings_acked: int = 0
    inflight: int = 0
    broker: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class Publisher(threading.Thread):
    def __init__(self, cfg: MqttConfig, outbox: Outbox, *, site: str, rtu: str,
                 health: Callable[[], dict[str, Any]] | None = None,
                 health_interval: float = 60.0, ack_interval: float = 1.0) -> None:
        super().__init__(name="publisher", daemon=True)
        self.cfg = cfg
        self.outbox = outbox
        self.site, self.rtu = site, rtu
        self.base = f"{cfg.prefix}/{site}/{rtu}"
        self.status_topic = f"{self.base}/status"
        self.state = LinkState(broker=f"{cfg.host}:{cfg.port}")
        self._health = health
        self._health_interval = health_interval
        self._halt = threading.Event()
        self.wakeup = threading.Event()  # set by the committer when new rows are accepted
        self._acks: collections.deque[int] = collections.deque()
        self._lost = threading.Event()
        self._connack = threading.Event()
        self._connack_rc: Any = None
        self._acked: list[Row] = []
        self.ack_interval = ack_interval
        self._ack_due = 0.0
        # current states sent retained (daq/alarms): retained(everything) -> [(topic, body)]
        self.retained: Callable[[bool], list[tuple[str, dict[str, Any]]]] | None = None

    # -- paho callbacks (network thread): only hand over to our thread --------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any,
                    props: Any = None) -> None:
        self._connack_rc = rc
        self._connack.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any,
                       props: Any = None) -> None:
        self.state.extra.update(last_disconnect=str(rc), disconnected_at=format_ts(utcnow()))
        self._lost.set()
        self.wakeup.set()

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, rc: Any,
                    props: Any = None) -> None:
        self._acks.append(mid)
        self.wakeup.set()

    @staticmethod
    def _on_socket_open(client: mqtt.Client, userdata: Any, sock: Any) -> None:
        # paho leaves Nagle on, which halves QoS 1 throughput over a WAN (FIELD-NOTES.md)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (OSError, AttributeError):
            pass

    # -- connection -----------------------------------------------------------------------

    def _status_payload(self, state: str, reason: str | None = None) -> str:
        body: dict[str, Any] = {"v": PAYLOAD_VERSION, "site": self.site, "rtu": self.rtu,
                                "state": state, "ts": format_ts(utcnow()),
                                "version": __version__}
        if reason:
            body["reason"] = reason
        return json.dumps(body, separators=(",", ":"))

    def _make_client(self) -> mqtt.Client:
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.cfg.client_id,
                        clean_session=True, reconnect_on_failure=False)
        c.max_inflight_messages_set(self.cfg.max_inflight)
        c.max_queued_messages_set(0)
        if self.cfg.username:
            c.username_pw_set(self.cfg.username, self.cfg.password.read())
        if self.cfg.tls_enabled:
            t = self.cfg.tls
            c.tls_set(ca_certs=t.ca_file, certfile=t.cert_file, keyfile=t.key_file,
                      keyfile_password=t.key_password.read(),
                      cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
            if t.insecure:
                c.tls_insecure_set(True)
        c.will_set(self.status_topic, self._status_payload("offline", "connection lost"),
                   qos=1, retain=True)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        c.on_socket_open = self._on_socket_open
        return c

    def _connect(self) -> mqtt.Client | None:
        self._connack.clear()
        self._lost.clear()
        client = self._make_client()
        try:
            client.connect(self.cfg.host, self.cfg.port, keepalive=int(self.cfg.keepalive))
        except (OSError, ssl.SSLError, ValueError) as err:
            self._note_error(f"connect to {self.state.broker} failed: {err}")
            return None
        client.loop_start()
        got = self._connack.wait(10.0)
        # a refusal (bad password, not authorised) comes as a CONNACK followed at once by
        # the broker closing the socket: look at the CONNACK before at the lost link
        if got and getattr(self._connack_rc, "is_failure", False):
            self._note_error(f"broker refused the connection: {self._connack_rc}")
            self._drop(client)
            return None
        if not got or self._lost.is_set():
            self._note_error(f"no CONNACK from {self.state.broker}")
            self._drop(client)
            return None
        client.publish(self.status_topic, self._status_payload("online"), qos=1, retain=True)
        self.state.connected = True
        self.state.since = format_ts(utcnow())
        self.state.connects += 1
        self.state.last_error = None
        log.info("broker_connected", broker=self.state.broker)
        return client

    def _note_error(self, text: str) -> None:
        if self.state.last_error != text:  # log a failure once, not on every retry
            log.warning("broker_unreachable", broker=self.state.broker, error=text)
        self.state.last_error = text

    @staticmethod
    def _drop(client: mqtt.Client) -> None:
        try:
            client.disconnect()
        except Exception:  # the socket may already be gone
            pass
        client.loop_stop()

    # -- main loop ------------------------------------------------------------------------

    def run(self) -> None:
        delay = self.cfg.reconnect_min
        while not self._halt.is_set():
            client = self._connect()
            if client is None:
                self._halt.wait(delay)
                delay = min(delay * 2, self.cfg.reconnect_max)
                continue
            delay = self.cfg.reconnect_min
            try:
                self._serve(client)
            except Exception as err:  # an outbox I/O error or a health bug: reconnect, not die
                log.error("publisher_error", error=f"{type(err).__name__}: {err}")
                self._halt.wait(delay)
            if self._halt.is_set():
                client.publish(self.status_topic, self._status_payload("offline", "shutdown"),
                               qos=1, retain=True).wait_for_publish(2.0)
            self._drop(client)
            if self.state.connected and not self._halt.is_set():
                log.warning("broker_link_lost", broker=self.state.broker)
            self.state.connected = False

    def _serve(self, client: mqtt.Client) -> None:
        inflight: dict[int, list[Row]] = {}
        cursors = dict.fromkeys(Lane, 0)
        next_health = time.monotonic()
        everything = True  # a new connection: every retained state again
        while not self._halt.is_set() and not self._lost.is_set():
            self.wakeup.clear()
            self._settle(inflight)
            while len(inflight) < self.cfg.max_inflight and not self._lost.is_set():
                sent = self._send_batch(client, cursors, inflight)
                if not sent:
                    break
            if self.retained is not None:
                everything = self._send_retained(client, everything)
            self.state.inflight = len(inflight)
            if self._health and time.monotonic() >= next_health:
                next_health = time.monotonic() + self._health_interval
                client.publish(f"{self.base}/health", json.dumps(
                    {"v": PAYLOAD_VERSION, "site": self.site, "rtu": self.rtu,
                     "ts": format_ts(utcnow()), **self._health()}, separators=(",", ":")),
                    qos=1)
            self.wakeup.wait(min(0.5, self.ack_interval))
        self._settle(inflight, force=True)

    def _send_retained(self, client: mqtt.Client, everything: bool) -> bool:
        """Publish changed current states, retained, after the alarm lane's events."""
        assert self.retained is not None
        for topic, body in self.retained(everything):
            client.publish(f"{self.base}/{topic}", json.dumps(
                {"v": PAYLOAD_VERSION, "site": self.site, "rtu": self.rtu,
                 "ts": format_ts(utcnow()), **body}, separators=(",", ":")),
                qos=1, retain=True)
        return False

    def _settle(self, inflight: dict[int, list[Row]], force: bool = False) -> None:
        """Delete acknowledged rows, gathered over ``ack_interval``: one transaction for
        many messages spares the flash. A crash before the delete only means a re-send."""
        while self._acks:
            rows = inflight.pop(self._acks.popleft(), None)
            if rows:
                self._acked.extend(rows)
        now = time.monotonic()
        if self._acked and (force or now >= self._ack_due or len(self._acked) >= 2000):
            self.outbox.ack(self._acked)
            self.state.readings_acked += len(self._acked)
            self._acked = []
            self._ack_due = now + self.ack_interval

    def _send_batch(self, client: mqtt.Client, cursors: dict[Lane, int],
                    inflight: dict[int, list[Row]]) -> bool:
        """Publish the oldest rows of the highest-priority lane that has any.

        Rows are grouped by topic (a channel always has one topic, so its order holds)
        into messages of at most ``batch_size`` readings.
        """
        size = self.cfg.batch_size
        for lane in Lane:
            rows = self.outbox.pending(lane, cursors[lane], size * 4)
            if not rows:
                continue
            groups: dict[str, list[Row]] = {}
            for r in rows:
                groups.setdefault(r.topic, []).append(r)
            for topic, group in groups.items():
                for i in range(0, len(group), size):
                    batch = group[i:i + size]
                    body = (f'{{"v":{PAYLOAD_VERSION},"site":{json.dumps(self.site)},'
                            f'"rtu":{json.dumps(self.rtu)},"readings":['
                            + ",".join(r.payload for r in batch) + "]}")
                    info = client.publish(f"{self.base}/{topic}", body, qos=1)
                    if info.rc != mqtt.MQTT_ERR_SUCCESS:
                        self._lost.set()
                        return False
                    inflight[info.mid] = batch
                    self.state.messages_sent += 1
            cursors[lane] = rows[-1].id
            return True
        return False

    def stop(self) -> None:
        self._halt.set()
        self.wakeup.set()

