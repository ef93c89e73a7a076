"""``daq mqtt check`` as a subprocess against real mosquitto brokers, plain and TLS.

Certificates are made by openssl for each test: a CA, a broker certificate for 127.0.0.1,
and one for another host name.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from daq.localbroker import LocalBroker, free_port

REPO = Path(__file__).resolve().parents[1]


def check(*args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    res = subprocess.run([sys.executable, "-m", "daq", "mqtt", "check", "--json", *args],
                         cwd=REPO, capture_output=True, text=True, timeout=90,
                         env=env or {k: v for k, v in os.environ.items()
                                     if k != "DAQ_MQTT_PASSWORD"})
    assert "Traceback" not in res.stderr, res.stderr
    return res.returncode, json.loads(res.stdout) if res.stdout else {}


def steps(out: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in out["steps"]}


def config(tmp_path: Path, mqtt_section: str) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text("site: s\nrtu: r\nbuses: {}\nmqtt:\n"
                    + textwrap.indent(textwrap.dedent(mqtt_section), "  "))
    return path


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LocalBroker]:
    b = LocalBroker(tmp_path).start()
    yield b
    b.stop()


def test_plain_broker_every_step_passes_with_a_latency(broker: LocalBroker) -> None:
    code, out = check("--mqtt-url", broker.url)
    assert code == 0 and out["ok"]
    s = steps(out)
    assert s["tls"]["ok"] is None and "not encrypted" in s["tls"]["verdict"]
    assert s["round trip"]["ok"] and s["round trip"]["details"]["latency_ms"] >= 0
    human = subprocess.run([sys.executable, "-m", "daq", "mqtt", "check", "--mqtt-url",
                            broker.url], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert human.returncode == 0 and "all steps passed" in human.stdout
    assert "published and received back in" in human.stdout


def test_nothing_listening_names_the_port() -> None:
    code, out = check("--mqtt-url", f"mqtt://127.0.0.1:{free_port()}")
    assert code == 1
    assert "nothing listens on port" in steps(out)["tcp"]["cause"]
    assert "connect" not in steps(out)


def test_unset_password_env_var_is_named(tmp_path: Path) -> None:
    b = LocalBroker(tmp_path)
    pwfile = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(pwfile), "rtu-7", "right-pw"],
                   check=True, capture_output=True, timeout=30)
    pwfile.chmod(0o600)
    b.conf.write_text(b.common() + f"listener {b.port} 127.0.0.1\nallow_anonymous false\n"
                      f"password_file {pwfile}\n")
    b.start()
    cfg = config(tmp_path, f"""\
        url: mqtt://127.0.0.1:{b.port}
        username: rtu-7
        password: {{env: DAQ_MQTT_PASSWORD}}
        allow_plain_password: true   # a test broker on loopback
        """)
    try:
        code, out = check("--config", str(cfg))
        good, fine = check("--config", str(cfg),
                           env={**os.environ, "DAQ_MQTT_PASSWORD": "right-pw"})
        wrong, refused = check("--config", str(cfg),
                               env={**os.environ, "DAQ_MQTT_PASSWORD": "wrong"})
    finally:
        b.stop()
    assert code == 1
    s = steps(out)
    assert "password env var DAQ_MQTT_PASSWORD is not set" in s["credentials"]["cause"]
    assert s["connect"]["ok"] is False
    assert "DAQ_MQTT_PASSWORD is not set" in s["connect"]["cause"]
    assert good == 0 and fine["ok"]
    assert wrong == 1 and "refused" in steps(refused)["connect"]["verdict"]
    assert "wrong" not in json.dumps(refused)  # a password is never printed


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    d = tmp_path / "pki"
    d.mkdir()
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3", "-subj",
            "/CN=test-ca", "-keyout", "ca.key", "-out", "ca.crt", cwd=d)
    for name, san in (("server", "IP:127.0.0.1"), ("other", "DNS:other.example")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)
        (d / f"{name}.ext").write_text(f"subjectAltName={san}\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "3", "-extfile", f"{name}.ext",
                "-out", f"{name}.crt", cwd=d)
    return d


def tls_broker(tmp_path: Path, pki: Path, cert: str) -> LocalBroker:
    b = LocalBroker(tmp_path)
    b.conf.write_text(b.common() + f"listener {b.port} 127.0.0.1\nallow_anonymous true\n"
                      f"cafile {pki}/ca.crt\ncertfile {pki}/{cert}.crt\n"
                      f"keyfile {pki}/{cert}.key\n")
    return b.start()


def test_tls_chain_hostname_and_expiry(tmp_path: Path, pki: Path) -> None:
    b = tls_broker(tmp_path, pki, "server")
    try:
        cfg = config(tmp_path, f"url: mqtts://127.0.0.1:{b.port}\n"
                               f"tls: {{ca_file: {pki}/ca.crt}}\n")
        code, out = check("--config", str(cfg))
        nocfg = config(tmp_path / "..", f"url: mqtts://127.0.0.1:{b.port}\n")
        no_ca, untrusted = check("--config", str(nocfg))
    finally:
        b.stop()
    assert code == 0, out
    tls = steps(out)["tls"]
    assert tls["ok"] and 1 <= tls["details"]["expires_in_days"] <= 3
    assert tls["details"]["issuer"] == "commonName=test-ca"
    assert "renew" in tls["cause"]  # fewer than 30 days left
    assert steps(out)["round trip"]["ok"]
    assert no_ca == 1
    assert "no tls.ca_file is set" in steps(untrusted)["tls"]["cause"]


def test_tls_hostname_mismatch_says_which_name(tmp_path: Path, pki: Path) -> None:
    b = tls_broker(tmp_path, pki, "other")
    try:
        cfg = config(tmp_path, f"url: mqtts://127.0.0.1:{b.port}\n"
                               f"tls: {{ca_file: {pki}/ca.crt}}\n")
        code, out = check("--config", str(cfg))
    finally:
        b.stop()
    assert code == 1
    assert "the certificate is for other.example, not 127.0.0.1" in steps(out)["tls"]["cause"]


def test_plain_client_on_a_tls_port(tmp_path: Path, pki: Path) -> None:
    b = tls_broker(tmp_path, pki, "server")
    try:
        code, out = check("--mqtt-url", f"mqtt://127.0.0.1:{b.port}", "--timeout", "2")
    finally:
        b.stop()
    assert code == 1 and steps(out)["connect"]["ok"] is False


def test_a_client_with_the_same_id_taking_the_session(broker: LocalBroker) -> None:
    other = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="rtu-dup")
    other.reconnect_delay_set(0.1, 0.2)  # a second daemon with a copied configuration
    other.connect("127.0.0.1", broker.port)
    other.loop_start()
    try:
        time.sleep(0.3)
        code, out = check("--mqtt-url", broker.url, "--client-id", "rtu-dup")
    finally:
        other.loop_stop()
        other.disconnect()
    assert code == 1
    causes = " ".join(s.get("cause", "") for s in out["steps"])
    assert "another client with the same client id keeps taking the session" in causes
