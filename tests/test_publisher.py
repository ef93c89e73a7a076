"""The publisher against real mosquitto brokers: TLS with client certificates, passwords,
lane priority while a backlog drains."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from daq.config import MqttConfig, Secret, TlsConfig
from daq.localbroker import LocalBroker
from daq.model import Lane, Quality, Reading, utcnow
from daq.outbox import Outbox
from daq.publisher import Publisher

from .conftest import Subscriber, wait_for


def mqtt_config(port: int, **kw: object) -> MqttConfig:
    base = dict(host="127.0.0.1", port=port, tls_enabled=False, prefix="daq/v1",
                client_id="pub-test", username=None, password=Secret(), tls=TlsConfig(),
                keepalive=30.0, batch_size=100, max_inflight=20, reconnect_min=0.1,
                reconnect_max=1.0)
    base.update(kw)
    return MqttConfig(**base)  # type: ignore[arg-type]


def reading(channel: str, value: float, lane: Lane = Lane.RAW) -> Reading:
    return Reading(device="dev", channel=channel, quantity="q", value=value, unit="m",
                   quality=Quality.GOOD, ts=utcnow(), lane=lane)


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, made by openssl."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    d = tmp_path / "pki"
    d.mkdir()
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
            "-keyout", "ca.key", "-out", "ca.crt", cwd=d)
    for name in ("server", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj",
                f"/CN={'127.0.0.1' if name == 'server' else 'rtu-7'}",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)
        (d / f"{name}.ext").write_text("subjectAltName=IP:127.0.0.1\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext",
                "-out", f"{name}.crt", cwd=d)
    return d


def test_tls_with_client_certificate_and_password(tmp_path: Path, pki: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """mqtts with the broker's CA, a client certificate and a password read from the
    environment: readings arrive; a wrong password is refused and nothing is lost."""
    broker = LocalBroker(tmp_path)
    pwfile = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(pwfile), "rtu-7", "right-pw"],
                   check=True, capture_output=True, timeout=30)
    pwfile.chmod(0o600)
    plain = broker.port
    broker.port = plain + 1 if plain < 65000 else plain - 1
    broker.conf.write_text(
        broker.common() + "per_listener_settings true\n"
        f"listener {plain} 127.0.0.1\nallow_anonymous true\n"
        f"listener {broker.port} 127.0.0.1\nallow_anonymous false\npassword_file {pwfile}\n"
        f"cafile {pki}/ca.crt\ncertfile {pki}/server.crt\nkeyfile {pki}/server.key\n"
        f"require_certificate true\n")
    broker.start()
    sub = Subscriber(plain)
    outbox = Outbox(tmp_path / "o.db")
    outbox.add([("data/dev", reading("dev/a", i)) for i in range(10)])
    tls = TlsConfig(ca_file=str(pki / "ca.crt"), cert_file=str(pki / "client.crt"),
                    key_file=str(pki / "client.key"))
    try:
        monkeypatch.setenv("PW", "wrong-pw")
        bad = Publisher(mqtt_config(broker.port, tls_enabled=True, tls=tls, username="rtu-7",
                                    password=Secret(env="PW")), outbox, site="s", rtu="r")
        bad.start()
        wait_for(lambda: bad.state.last_error, 10, "the refusal")
        bad.stop()
        bad.join(5)
        assert "refused" in (bad.state.last_error or "")
        assert "wrong-pw" not in (bad.state.last_error or "")
        assert outbox.depth()["raw"] == 10
        monkeypatch.setenv("PW", "right-pw")
        good = Publisher(mqtt_config(broker.port, tls_enabled=True, tls=tls, username="rtu-7",
                                     password=Secret(env="PW")), outbox, site="s", rtu="r")
        good.start()
        wait_for(lambda: len(sub.readings()) == 10, 15, "10 readings over TLS")
        wait_for(lambda: outbox.depth()["raw"] == 0, 10, "the acknowledgements")
        good.stop()
        good.join(5)
    finally:
        sub.close()
        broker.stop()
    assert [r["value"] for r in sub.readings()] == [float(i) for i in range(10)]


def test_alarms_and_results_overtake_a_raw_backlog(tmp_path: Path) -> None:
    """With 100 000 raw readings queued (10 devices), an alarm accepted afterwards is
    delivered before the raw backlog has drained; the raw lane still arrives complete
    and in order."""
    broker = LocalBroker(tmp_path).start()
    sub = Subscriber(broker.port)
    outbox = Outbox(tmp_path / "o.db")
    for i in range(0, 10000, 10):  # polls of 10 readings of 10 devices, one row per poll
        outbox.add([(f"data/dev{k}", reading(f"dev{k}/raw", float(j)))
                    for k in range(10) for j in range(i, i + 10)])
    pub = Publisher(mqtt_config(broker.port, max_inflight=5, batch_size=20), outbox,
                    site="s", rtu="r")
    try:
        pub.start()
        wait_for(lambda: len(sub.readings()) > 200, 15, "the backlog to start draining")
        outbox.add([("alarm/P07", reading("P07.alarm", 1.0, Lane.ALARM))])
        pub.wakeup.set()
        wait_for(lambda: outbox.depth()["raw"] == 0, 60, "the backlog to drain")
        time.sleep(0.5)
    finally:
        pub.stop()
        pub.join(5)
        sub.close()
        broker.stop()
    rs = [r for m in sub.payloads("/") if "readings" in m for r in m["readings"]]
    for k in range(10):
        raw = [r["seq"] for r in rs if r["channel"] == f"dev{k}/raw"]
        assert raw[:len(set(raw))] == sorted(set(raw)) and set(raw) == set(range(1, 10001))
    alarm_at = next(i for i, r in enumerate(rs) if r["channel"] == "P07.alarm")
    assert alarm_at < len(rs) - 20000, f"alarm arrived at {alarm_at} of {len(rs)}"
    alarm_msgs = [json.loads(p) for t, p, _ in sub.messages if t.endswith("/alarm/P07")]
    assert alarm_msgs and alarm_msgs[0]["readings"][0]["value"] == 1.0


def test_an_error_while_serving_does_not_stop_the_publisher(tmp_path: Path) -> None:
    """An exception inside the serving loop (here the health callback failing once, as an
    outbox I/O error would) is logged and the link re-established: readings accepted
    afterwards are still delivered and acknowledged, the thread does not die silently."""
    broker = LocalBroker(tmp_path).start()
    sub = Subscriber(broker.port)
    outbox = Outbox(tmp_path / "o.db")
    calls = [0]

    def health() -> dict[str, object]:
        calls[0] += 1
        if calls[0] == 1:
            raise OSError("disk I/O error")
        return {"ok": True}

    pub = Publisher(mqtt_config(broker.port), outbox, site="s", rtu="r", health=health)
    try:
        pub.start()
        wait_for(lambda: calls[0] >= 1, 10, "the first health report")
        outbox.add([("data/dev", reading("dev/x", float(i))) for i in range(5)])
        pub.wakeup.set()
        wait_for(lambda: outbox.depth()["raw"] == 0, 15, "the readings to be acknowledged")
        assert pub.is_alive()
    finally:
        pub.stop()
        pub.join(5)
        sub.close()
        broker.stop()
    assert [r["value"] for r in sub.readings()] == [float(i) for i in range(5)]


def test_rows_are_cut_into_messages_of_whole_rows_in_order() -> None:
    """A topic's rows become messages of at most ``batch_size`` readings, each as many
    whole rows as fit, in id order, a row of more readings alone; only the last message,
    not yet full, waits in ``partial`` for the topic's next rows."""
    import collections
    import random

    from daq.publisher import _cut

    rng = random.Random(7)
    for _ in range(300):
        size = rng.choice([1, 5, 100])
        ready: collections.deque = collections.deque()
        partial: dict = {}
        n_of: dict[int, int] = {}
        for _read in range(rng.randint(1, 4)):
            ids = list(range(len(n_of) + 1, len(n_of) + rng.randint(2, 30)))
            n_of.update((i, rng.choice([1, 3, 10, 40, 150])) for i in ids)
            _cut(ready, partial, ("t", ids, [n_of[i] for i in ids],
                                  [b"%d" % i for i in ids]), size)
        sent: list[int] = []
        for topic, mids, n, texts in ready:
            assert topic == "t" and texts == [b"%d" % i for i in mids]
            assert n == sum(n_of[i] for i in mids)
            assert n <= size or len(mids) == 1
            after = mids[-1] + 1  # the next row did not fit (or there is none)
            assert after not in n_of or n + n_of[after] > size
            sent += mids
        left, left_n, _ = partial.get("t", ([], [], []))
        assert sent + left == sorted(n_of)  # every row once, in order
        assert sum(left_n) < size and left_n == [n_of[i] for i in left]
