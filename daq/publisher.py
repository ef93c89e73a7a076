"""The publisher: outbox rows to MQTT (paho-mqtt 2.x, QoS 1); a row leaves only on PUBACK.

Each connection gets a fresh paho client, so nothing is queued inside paho across a link
loss: after a reconnect, sending restarts from the oldest unacknowledged row of each lane.
That may deliver a reading twice (QoS 1 may anyway); ``(rtu, channel, seq)`` is the
idempotency key that lets subscribers drop the copy. Order within a channel is kept,
because rows are sent in insertion order on one connection and MQTT keeps that order.
"""

from __future__ import annotations

import bisect
import collections
import itertools
import json
import os
import socket
import sqlite3
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
from .outbox import Outbox, Text

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


# a message to send: topic, its rows' ids, its readings, the rows' JSON texts
_Message = tuple[str, list[int], int, list[Text]]
# a topic's rows read but not yet in a message: ids, reading counts, texts
_Partial = tuple[list[int], list[int], list[Text]]


def _cut(ready: collections.deque[_Message], partial: dict[str, _Partial],
         rows: tuple[str, list[int], list[int], list[Text]], size: int) -> None:
    """A topic's rows (after what it had left) into messages of at most ``size``
    readings, each as many whole rows as fit (a row of more readings goes alone); a last
    message not yet full is left in ``partial``. Slices and bisection, no loop per row."""
    topic, ids, ns, texts = rows
    if topic in partial:
        pi, pn, pt = partial.pop(topic)
        ids, ns, texts = pi + ids, pn + ns, pt + texts
    cum = list(itertools.accumulate(ns))
    start, base = 0, 0
    while start < len(ids):
        end = max(bisect.bisect_right(cum, base + size, start), start + 1)
        n = cum[end - 1] - base
        if end == len(ids) and n < size:
            partial[topic] = (ids[start:], ns[start:], texts[start:])
            return
        ready.append((topic, ids[start:end], n, texts[start:end]))
        base, start = cum[end - 1], end


class _Window:
    """One connection's sending state. Acknowledgements come back per message, rows go
    out grouped by topic; the outbox is cleared by range, so each lane keeps the ids it
    sent in id order and a watermark below which every row is acknowledged."""

    def __init__(self) -> None:
        self.inflight: dict[int, tuple[Lane, list[int], int]] = {}
        self.cursor = dict.fromkeys(Lane, 0)  # last row id read from the outbox
        # read, not yet sent: whole messages, and per topic the rows of one not yet full
        self.ready: dict[Lane, collections.deque[_Message]] = {
            lane: collections.deque() for lane in Lane}
        self.partial: dict[Lane, dict[str, _Partial]] = {
            lane: {} for lane in Lane}
        self.held = dict.fromkeys(Lane, 0)  # rows in ready + partial
        self.sent: dict[Lane, collections.deque[int]] = {
            lane: collections.deque() for lane in Lane}
        self.done: dict[Lane, set[int]] = {lane: set() for lane in Lane}
        self.mark = dict.fromkeys(Lane, 0)  # every row up to here is acknowledged
        self.deleted = dict.fromkeys(Lane, 0)  # ... and deleted up to here
        self.unrecorded = 0
        self.waiting = dict.fromkeys(Lane, 0)  # acknowledged readings not yet deleted

    def acked(self, mid: int) -> None:
        got = self.inflight.pop(mid, None)
        if got is None:
            return
        lane, ids, n = got
        self.waiting[lane] += n
        done, sent = self.done[lane], self.sent[lane]
        done.update(ids)
        self.unrecorded += len(ids)
        while sent and sent[0] in done:
            self.mark[lane] = sent.popleft()
            done.discard(self.mark[lane])


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
        self._wake_after = 1  # acknowledgements that wake this thread (``_serve``)
        self._lost = threading.Event()
        self._connack = threading.Event()
        self._connack_rc: Any = None
        self._head = (f'{{"v":{PAYLOAD_VERSION},"site":{json.dumps(site)},'
                      f'"rtu":{json.dumps(rtu)},"readings":[').encode()
        self.ack_interval = ack_interval
        # messages handed to paho: its window (max_inflight) plus a queue it sends from as
        # PUBACKs come, without waiting for this thread; a fresh client per connection,
        # so nothing queued survives a link loss (sending restarts from the outbox)
        self._window = cfg.max_inflight * 4
        self._waiting: dict[Lane, int] = dict.fromkeys(Lane, 0)
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
        if len(self._acks) >= self._wake_after:
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
        if self.cfg.username and not self.cfg.tls_enabled and not self.cfg.allow_plain_password:
            raise ValueError("refusing to send the MQTT password without TLS "
                             "(mqtt.allow_plain_password is not set)")
        if self.cfg.username:
            c.username_pw_set(self.cfg.username, self.cfg.password.read())
        if self.cfg.tls_enabled:
            t = self.cfg.tls
            for what, name in (("CA", t.ca_file), ("certificate", t.cert_file),
                               ("key", t.key_file)):
                if name and not os.access(name, os.R_OK):  # ssl's error names no file
                    raise FileNotFoundError(f"TLS {what} file {name} cannot be read")
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
            try:
                client = self._connect()
            except Exception as err:  # whatever setting up fails on: shown, retried
                self._note_error(f"cannot connect: {type(err).__name__}: {err}")
                client = None
            if client is None:
                self._halt.wait(delay)
                delay = min(delay * 2, self.cfg.reconnect_max)
                continue
            delay = self.cfg.reconnect_min
            try:
                self._serve(client)
            except Exception as err:  # a health bug or a lost outbox: reconnect, not die
                text = f"{type(err).__name__}: {err}"
                log.error("publisher_error", error=text)
                self.state.last_error = f"publisher error: {text}"
                self._halt.wait(delay)
            if self._halt.is_set():
                try:
                    client.publish(self.status_topic, self._status_payload(
                        "offline", "shutdown"), qos=1, retain=True).wait_for_publish(2.0)
                except (RuntimeError, ValueError):  # the link is already gone
                    pass
            self._drop(client)
            if self.state.connected and not self._halt.is_set():
                log.warning("broker_link_lost", broker=self.state.broker)
            self.state.connected = False

    def acked_waiting(self) -> dict[str, int]:
        """Readings the broker acknowledged that are not yet deleted from the outbox (it
        deletes by range every ``ack_interval``): not part of the backlog."""
        return {lane.name.lower(): n for lane, n in self._waiting.items()}

    def _serve(self, client: mqtt.Client) -> None:
        w = _Window()
        self._waiting = w.waiting
        next_health = time.monotonic()
        everything = True  # a new connection: every retained state again
        while not self._halt.is_set() and not self._lost.is_set():
            self.wakeup.clear()
            self._settle(w)
            while len(w.inflight) < self._window and not self._lost.is_set():
                if not self._send_batch(client, w):
                    break
            if self.retained is not None:
                everything = self._send_retained(client, everything)
            self.state.inflight = len(w.inflight)
            if self._health and time.monotonic() >= next_health:
                next_health = time.monotonic() + self._health_interval
                client.publish(f"{self.base}/health", json.dumps(
                    {"v": PAYLOAD_VERSION, "site": self.site, "rtu": self.rtu,
                     "ts": format_ts(utcnow()), **self._health()}, separators=(",", ":")),
                    qos=1)
            # while catching up, wake when half the window is acknowledged, not at every
            # PUBACK: paho still holds the other half to send, and a wake per message
            # costs both threads the GIL (at least one ack is always awaited: the
            # messages in flight all come back)
            self._wake_after = max(1, len(w.inflight) // 2)
            self.wakeup.wait(min(0.5, self.ack_interval))
            self._wake_after = 1
        self._settle(w, force=True)
        self._waiting = dict.fromkeys(Lane, 0)  # not deleted: will be sent again

    def _send_retained(self, client: mqtt.Client, everything: bool) -> bool:
        """Publish changed current states, retained, after the alarm lane's events."""
        assert self.retained is not None
        for topic, body in self.retained(everything):
            client.publish(f"{self.base}/{topic}", json.dumps(
                {"v": PAYLOAD_VERSION, "site": self.site, "rtu": self.rtu,
                 "ts": format_ts(utcnow()), **body}, separators=(",", ":")),
                qos=1, retain=True)
        return False

    def _settle(self, w: _Window, force: bool = False) -> None:
        """Advance each lane's acknowledged watermark and delete up to it, one statement
        per lane, gathered over ``ack_interval`` (one transaction for many messages spares
        the flash). A crash before the delete only means a re-send. A delete that fails
        (disk full) is shown and retried; the connection stays up."""
        while self._acks:
            w.acked(self._acks.popleft())
        now = time.monotonic()
        due = [lane for lane in Lane if w.mark[lane] > w.deleted[lane]]
        if not due or not (force or now >= self._ack_due or w.unrecorded > 2000):
            return
        self._ack_due = now + self.ack_interval
        try:
            for lane in due:
                n = self.outbox.ack_through(lane, w.mark[lane])
                self.state.readings_acked += n
                w.waiting[lane] = max(w.waiting[lane] - n, 0)
                w.deleted[lane] = w.mark[lane]
        except (sqlite3.Error, OSError) as err:
            text = f"{type(err).__name__}: {err}"
            if self.state.extra.get("ack_error") != text:
                log.error("outbox_ack_failed", error=text,
                          hint="acknowledged rows stay in the outbox and may be re-sent")
            self.state.extra["ack_error"] = text
            return
        w.unrecorded = 0
        if self.state.extra.pop("ack_error", None) is not None:
            log.info("outbox_ack_recovered")

    def _send_batch(self, client: mqtt.Client, w: _Window) -> bool:
        """Publish the oldest rows of the highest-priority lane that has any.

        Rows are grouped by topic (a channel always has one topic, so its order holds)
        into messages of at most ``batch_size`` readings. While catching up (the read
        came back full), a topic's last, partial message waits for the next read, so
        messages go out full.
        """
        size = self.cfg.batch_size
        limit = max(size * 4, 256)  # rows, each one poll of several readings
        for lane in Lane:
            ready, partial = w.ready[lane], w.partial[lane]
            if not ready:
                ids, groups = self.outbox.read_topics(lane, w.cursor[lane], limit) \
                    if self.outbox.has_pending(lane, w.cursor[lane]) else ([], [])
                if ids:
                    w.cursor[lane] = ids[-1]
                    w.sent[lane].extend(ids)
                    w.held[lane] += len(ids)
                for group in groups:
                    _cut(ready, partial, group, size)
                # caught up, or read far ahead with no topic filling up: send the rest
                if partial and (len(ids) < limit or w.held[lane] >= 2 * limit):
                    ready.extend((t, i, sum(n), x) for t, (i, n, x) in partial.items())
                    partial.clear()
                if not ready:
                    if ids:
                        return True  # read ahead; the messages fill with the next read
                    continue
            while ready and len(w.inflight) < self._window:
                topic, ids, n, texts = ready.popleft()
                w.held[lane] -= len(ids)
                if not self._publish(client, w, lane, topic, ids, n, texts):
                    return False
            return True
        return False

    def _publish(self, client: mqtt.Client, w: _Window, lane: Lane, topic: str,
                 ids: list[int], n: int, texts: list[Text]) -> bool:
        body = self._head + b",".join(texts) + b"]}"
        info = client.publish(f"{self.base}/{topic}", body, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            self._lost.set()
            return False
        w.inflight[info.mid] = (lane, ids, n)
        self.state.messages_sent += 1
        return True

    def stop(self) -> None:
        self._halt.set()
        self.wakeup.set()

