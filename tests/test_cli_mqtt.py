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


# -- the TLS failures a technician meets in the field: each said in words ----------------

CA_CNF = """\
[ca]
default_ca = test
[test]
dir = .
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = anything
copy_extensions = copy
[anything]
commonName = supplied
"""


def ec_request(d: Path, name: str, san: str | None = None) -> None:
    """A P-256 key (fast to make) and its signing request, with ``san`` if given."""
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-subj", f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)
    (d / f"{name}.ext").write_text(f"subjectAltName={san}\n" if san else
                                   "extendedKeyUsage=clientAuth\n")


def ca_sign(d: Path, name: str, ca: str, *dates: str) -> None:
    """``name``.crt signed by ``ca`` (``openssl ca`` takes any dates, e.g. in the past)."""
    (d / "index.txt").touch()
    if not (d / "serial").exists():
        (d / "serial").write_text("1000\n")
    (d / "ca.cnf").write_text(CA_CNF)
    openssl("ca", "-batch", "-config", "ca.cnf", "-notext", "-cert", f"{ca}.crt",
            "-keyfile", f"{ca}.key", "-in", f"{name}.csr", "-out", f"{name}.crt",
            "-extfile", f"{name}.ext", *(dates or ("-days", "3")), cwd=d)


@pytest.fixture
def field_pki(pki: Path) -> Path:
    """Beside ``pki``: an expired broker certificate, one from a CA the RTU does not know,
    and a client certificate (ours, and one from that other CA)."""
    d = pki
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "3", "-subj", "/CN=rogue-ca", "-keyout", "rogue-ca.key",
            "-out", "rogue-ca.crt", cwd=d)
    ec_request(d, "expired", "IP:127.0.0.1")
    ca_sign(d, "expired", "ca", "-startdate", "20200101000000Z", "-enddate", "20200201000000Z")
    ec_request(d, "stranger", "IP:127.0.0.1")
    ca_sign(d, "stranger", "rogue-ca")
    ec_request(d, "rtu-client")
    ca_sign(d, "rtu-client", "ca")
    ec_request(d, "rogue-client")
    ca_sign(d, "rogue-client", "rogue-ca")
    return d


def tls_check(tmp_path: Path, pki: Path, port: int, tls: str) -> tuple[int, dict[str, Any]]:
    cfg = config(tmp_path, f"url: mqtts://127.0.0.1:{port}\ntls: {{{tls}}}\n")
    return check("--config", str(cfg), "--timeout", "10")


def test_tls_expired_certificate_says_since_when(tmp_path: Path, field_pki: Path) -> None:
    b = tls_broker(tmp_path, field_pki, "expired")
    try:
        code, out = tls_check(tmp_path, field_pki, b.port, f"ca_file: {field_pki}/ca.crt")
    finally:
        b.stop()
    assert code == 1
    tls = steps(out)["tls"]
    assert tls["ok"] is False
    assert "expired on 2020-02-01 00:00 UTC" in tls["cause"], tls
    assert "connect" not in steps(out)


def test_tls_unknown_ca_names_the_issuer(tmp_path: Path, field_pki: Path) -> None:
    b = tls_broker(tmp_path, field_pki, "stranger")
    try:
        code, out = tls_check(tmp_path, field_pki, b.port, f"ca_file: {field_pki}/ca.crt")
    finally:
        b.stop()
    assert code == 1
    cause = steps(out)["tls"]["cause"]
    assert cause.startswith("unknown CA:"), cause
    assert "commonName=rogue-ca" in cause and f"{field_pki}/ca.crt" in cause


def test_tls_name_mismatch_in_words(tmp_path: Path, pki: Path) -> None:
    b = tls_broker(tmp_path, pki, "other")
    try:
        code, out = tls_check(tmp_path, pki, b.port, f"ca_file: {pki}/ca.crt")
    finally:
        b.stop()
    assert code == 1
    assert steps(out)["tls"]["cause"].startswith(
        "name mismatch: the certificate is for other.example, not 127.0.0.1")


def test_tls_broker_requiring_a_client_certificate(tmp_path: Path, field_pki: Path) -> None:
    d = field_pki
    b = LocalBroker(tmp_path)
    b.conf.write_text(b.common() + f"listener {b.port} 127.0.0.1\nallow_anonymous true\n"
                      f"cafile {d}/ca.crt\ncertfile {d}/server.crt\nkeyfile {d}/server.key\n"
                      "require_certificate true\n")
    b.start()
    ca = f"ca_file: {d}/ca.crt"
    try:
        without, no_cert = tls_check(tmp_path, d, b.port, ca)
        good, fine = tls_check(tmp_path, d, b.port,
                               f"{ca}, cert_file: {d}/rtu-client.crt, "
                               f"key_file: {d}/rtu-client.key")
        refused, rogue = tls_check(tmp_path, d, b.port,
                                   f"{ca}, cert_file: {d}/rogue-client.crt, "
                                   f"key_file: {d}/rogue-client.key")
        human = subprocess.run([sys.executable, "-m", "daq", "mqtt", "check", "--config",
                                str(tmp_path / "site.yaml")], cwd=REPO, capture_output=True,
                               text=True, timeout=90)
    finally:
        b.stop()
    assert without == 1
    tls = steps(no_cert)["tls"]
    assert tls["ok"] is False
    assert "the broker requires a client certificate" in tls["cause"], tls
    assert "tls.cert_file and tls.key_file" in tls["cause"]
    assert "connect" not in steps(no_cert)
    assert good == 0, fine
    assert steps(fine)["tls"]["ok"] and steps(fine)["round trip"]["ok"]
    assert refused == 1
    assert "the broker refused our client certificate" in steps(rogue)["tls"]["cause"]
    assert human.returncode == 1 and "Traceback" not in human.stderr
    assert "the broker refused our client certificate" in human.stdout
