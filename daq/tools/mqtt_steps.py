"""The steps of ``daq mqtt check``: each returns a verdict in words with the likely cause.

DNS, TCP, TLS (chain, host name, days to expiry), then an MQTT connection with the
configured credentials and a publish/subscribe round trip. A step that fails makes the
later ones pointless; they are reported as skipped.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Step:
    name: str
    ok: bool | None  # None: skipped
    verdict: str
    cause: str = ""
    ms: float | None = None
    details: dict[str, Any] = field(default_factory=dict)


def _ms(t0: float) -> float:
    return round((time.monotonic() - t0) * 1000.0, 1)


def credentials(cfg: Any) -> Step:
    if not cfg.username:
        return Step("credentials", True, "no user name configured (anonymous login)")
    src = cfg.password
    if src.env and os.environ.get(src.env) is None:
        return Step("credentials", False, f"user {cfg.username!r}, but no password",
                    f"password env var {src.env} is not set (in systemd: Environment= or "
                    "EnvironmentFile= in the unit)")
    if src.file:
        try:
            open(src.file, encoding="utf-8").close()
        except PermissionError:
            from ..access import denied

            return Step("credentials", False, f"cannot read the password file {src.file}",
                        f"{denied(src.file)} (the service user needs read access too)")
        except OSError as err:
            return Step("credentials", False, f"cannot read the password file {src.file}",
                        f"{err.strerror}: the service user needs read access")
    if not src.env and not src.file:
        return Step("credentials", True, f"user {cfg.username!r} without a password")
    return Step("credentials", True, f"user {cfg.username!r}, password from "
                + (f"env var {src.env}" if src.env else f"file {src.file}"))


def dns(host: str, port: int) -> tuple[Step, list[Any]]:
    t0 = time.monotonic()
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        return Step("dns", False, f"cannot resolve {host}", f"{err.strerror}: check the "
                    "name, /etc/resolv.conf and the uplink, or use the broker's IP address",
                    _ms(t0)), []
    addrs = sorted({str(i[4][0]) for i in infos})
    return Step("dns", True, f"{host} is {', '.join(addrs)}", ms=_ms(t0)), infos


def tcp(host: str, port: int, infos: list[Any], timeout: float) -> tuple[Step, Any]:
    t0 = time.monotonic()
    last: Exception | None = None
    for family, kind, proto, _, addr in infos:
        sock = socket.socket(family, kind, proto)
        sock.settimeout(timeout)
        try:
            sock.connect(addr)
            return Step("tcp", True, f"connected to {addr[0]}:{port}", ms=_ms(t0)), sock
        except OSError as err:
            sock.close()
            last = err
    cause = "the network is unreachable"
    if isinstance(last, ConnectionRefusedError):
        cause = (f"nothing listens on port {port}: the broker is down, the port is wrong "
                 "(1883 plain, 8883 TLS), or a firewall rejects the connection")
    elif isinstance(last, TimeoutError | socket.timeout):
        cause = (f"no answer within {timeout:g} s: a firewall drops the packets or the "
                 "host is down")
    elif last is not None:
        cause = f"{getattr(last, 'strerror', None) or last}: check the route and the uplink"
    return Step("tcp", False, f"cannot connect to {host}:{port}", cause, _ms(t0)), None


def _context(tls: Any) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=tls.ca_file)
    if tls.cert_file:
        ctx.load_cert_chain(tls.cert_file, tls.key_file, tls.key_password.read())
    if tls.insecure:
        ctx.check_hostname = False
    return ctx


def _name(rdns: Any) -> str:
    return ", ".join(f"{k}={v}" for rdn in rdns for k, v in rdn)


def _unverified_cert(host: str, port: int, timeout: float) -> dict[str, Any]:
    """The broker's certificate fetched without verification, to say what is wrong."""
    try:
        pem = ssl.get_server_certificate((host, port), timeout=timeout)
        with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as f:
            f.write(pem)
        try:
            decoded: dict[str, Any] = ssl._ssl._test_decode_cert(f.name)  # type: ignore[attr-defined]
        finally:
            os.unlink(f.name)
        return decoded
    except Exception:  # only for a better message: the failure is already known
        return {}


def _date(cert_time: str | None) -> str:
    """``Feb  1 00:00:00 2020 GMT`` (OpenSSL's form) → ``2020-02-01 00:00 UTC``."""
    if not cert_time:
        return "?"
    try:
        return time.strftime("%Y-%m-%d %H:%M UTC",
                             time.gmtime(ssl.cert_time_to_seconds(cert_time)))
    except ValueError:
        return cert_time


def _rejected(cfg: Any, err: ssl.SSLCertVerificationError, timeout: float,
              t0: float) -> Step:
    """The broker's certificate failed verification: say which check, with its facts."""
    info = _unverified_cert(cfg.host, cfg.port, timeout)
    subject, issuer = _name(info.get("subject", ())), _name(info.get("issuer", ()))
    msg = err.verify_message or str(err)
    low = msg.lower()
    clock = " (if that is not so, the RTU's clock is wrong: `daq status` shows its sync)"
    if "hostname" in low or "ip address mismatch" in low:
        names = [v for _, v in info.get("subjectAltName", ())]
        cause = (f"name mismatch: the certificate is for {', '.join(names) or subject}, "
                 f"not {cfg.host}: use that name in mqtt.url")
    elif "expired" in low:
        cause = (f"the broker's certificate expired on {_date(info.get('notAfter'))}: "
                 "renew it on the broker" + clock)
    elif "not yet valid" in low:
        cause = (f"the broker's certificate is valid only from "
                 f"{_date(info.get('notBefore'))}" + clock)
    elif cfg.tls.ca_file:
        cause = (f"unknown CA: the broker's certificate is issued by {issuer or '?'}, "
                 f"which is not a CA in tls.ca_file ({cfg.tls.ca_file}; {msg}): put that "
                 "CA's certificate there")
    else:
        cause = (f"unknown CA: the broker's certificate is issued by {issuer or '?'} and "
                 f"no tls.ca_file is set, so only the system's CAs are trusted ({msg})")
    return Step("tls", False, "the broker's certificate is not accepted", cause, _ms(t0),
                {"subject": subject, "issuer": issuer})


def _handshake_failed(cfg: Any, err: Exception, t0: float) -> Step:
    text = str(err)
    cause = text
    alert = "certificate required" in text or "alert" in text
    if alert or isinstance(err, ConnectionResetError | EOFError | ssl.SSLEOFError):
        cause = (f"the broker requires a client certificate ({text}): set tls.cert_file "
                 "and tls.key_file" if not cfg.tls.cert_file else
                 f"the broker refused our client certificate {cfg.tls.cert_file} ({text}): "
                 "is it signed by a CA the broker trusts (its cafile), and still valid?")
    elif "wrong version" in text or "record layer" in text:
        cause = f"{text}: this port does not speak TLS (plain MQTT is usually 1883)"
    return Step("tls", False, "the TLS handshake failed", cause, _ms(t0))


# MQTT 3.1.1 CONNECT, clean session, empty client id: the broker answers with a CONNACK
# (accepting or refusing: either proves the TLS link) or, having refused our certificate,
# with a TLS alert. Under TLS 1.3 the broker checks the client certificate only after the
# client's handshake has returned, so the handshake alone cannot tell.
_PROBE = bytes([0x10, 12, 0, 4]) + b"MQTT" + bytes([4, 0x02, 0, 10, 0, 0])


def _probe(tls_sock: ssl.SSLSocket) -> None:
    """Raise if the broker drops the link after the handshake (a refused certificate)."""
    tls_sock.sendall(_PROBE)
    try:
        if not tls_sock.recv(4):
            raise EOFError("the broker closed the connection after the TLS handshake")
    except TimeoutError:
        pass  # no CONNACK: the connect step says so
    with contextlib.suppress(OSError):
        tls_sock.sendall(bytes([0xE0, 0]))  # DISCONNECT


def tls_step(cfg: Any, sock: Any, timeout: float) -> Step:
    t0 = time.monotonic()
    try:
        ctx = _context(cfg.tls)
    except (OSError, ssl.SSLError) as err:
        sock.close()
        which = "tls.ca_file" if "cafile" in str(err).lower() else "tls.cert_file/key_file"
        cause = f"{which}: {err}"
        if isinstance(err, PermissionError):  # ssl does not say which file
            from ..access import denied

            cause = next((f"{key}: cannot read {path}: {denied(path)}"
                          for key, path in (("tls.ca_file", cfg.tls.ca_file),
                                            ("tls.cert_file", cfg.tls.cert_file),
                                            ("tls.key_file", cfg.tls.key_file),
                                            ("tls.key_password",
                                             cfg.tls.key_password.file))
                          if path and not os.access(path, os.R_OK)), cause)
        return Step("tls", False, "cannot load the TLS files", cause)
    try:
        with ctx.wrap_socket(sock, server_hostname=cfg.host) as tls_sock:
            cert = tls_sock.getpeercert() or {}
            version = tls_sock.version()
            _probe(tls_sock)
    except ssl.SSLCertVerificationError as err:
        return _rejected(cfg, err, timeout, t0)
    except (ssl.SSLError, OSError, EOFError) as err:
        return _handshake_failed(cfg, err, t0)
    not_after = str(cert["notAfter"]) if "notAfter" in cert else None
    days = (ssl.cert_time_to_seconds(not_after) - time.time()) / 86400 if not_after else None
    subject, issuer = _name(cert.get("subject", ())), _name(cert.get("issuer", ()))
    verdict = (f"{version}, certificate {subject} issued by {issuer}, host name ok, "
               f"expires in {days:.0f} day(s)" if days is not None else f"{version}")
    step = Step("tls", True, verdict, ms=_ms(t0),
                details={"subject": subject, "issuer": issuer, "version": version,
                         "expires_in_days": None if days is None else round(days, 1)})
    if days is not None and days < 30:
        step.cause = "renew the broker's certificate soon: the RTU stops sending when it expires"
    return step


REFUSALS = {
    "Bad user name or password": "the broker refused the user name or password",
    "Not authorized": "the broker does not authorise this client",
    "Client identifier not valid": "the broker rejects the client id",
}


def mqtt_round_trip(cfg: Any, client_id: str, topic_base: str, timeout: float,
                    password_missing: str) -> list[Step]:
    """Connect as the daemon would, subscribe, publish, and time the message's return."""
    import paho.mqtt.client as mqtt

    got_connack, got_sub, got_msg, lost = (threading.Event() for _ in range(4))
    result: dict[str, Any] = {}
    topic = f"{topic_base}/{uuid.uuid4().hex[:8]}"
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                    clean_session=True, reconnect_on_failure=False)
    if cfg.username:
        try:
            password = cfg.password.read()
        except OSError:  # an unreadable password file: the credentials step says whose
            password = None
        c.username_pw_set(cfg.username, password)
    if cfg.tls_enabled:
        t = cfg.tls
        c.tls_set(ca_certs=t.ca_file, certfile=t.cert_file, keyfile=t.key_file,
                  keyfile_password=t.key_password.read(), cert_reqs=ssl.CERT_REQUIRED,
                  tls_version=ssl.PROTOCOL_TLS_CLIENT)
        if t.insecure:
            c.tls_insecure_set(True)

    def on_connect(client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        result["rc"] = rc
        got_connack.set()

    def on_subscribe(client: Any, userdata: Any, mid: Any, rcs: Any, props: Any) -> None:
        result["suback"] = rcs
        got_sub.set()

    def on_message(client: Any, userdata: Any, msg: Any) -> None:
        if msg.topic == topic:
            result["back"] = time.monotonic()
            got_msg.set()

    def on_disconnect(client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        result["disconnect"] = rc
        lost.set()

    c.on_connect, c.on_subscribe = on_connect, on_subscribe
    c.on_message, c.on_disconnect = on_message, on_disconnect
    steps: list[Step] = []
    t0 = time.monotonic()
    try:
        c.connect(cfg.host, cfg.port, keepalive=max(5, int(cfg.keepalive)))
    except (OSError, ssl.SSLError, ValueError) as err:
        return [Step("connect", False, "the MQTT connection failed", str(err), _ms(t0))]
    c.loop_start()
    try:
        if not got_connack.wait(timeout):
            return [Step("connect", False, f"no CONNACK within {timeout:g} s",
                         "the port may not be an MQTT broker, or it is overloaded", _ms(t0))]
        rc = result["rc"]
        if getattr(rc, "is_failure", False):
            text = str(rc)
            cause = REFUSALS.get(text, text)
            if password_missing:
                cause = f"{cause}; {password_missing}"
            return [Step("connect", False, f"the broker refused the login: {text}", cause,
                         _ms(t0))]
        steps.append(Step("connect", True, f"logged in as client id {client_id!r}"
                          + (f", user {cfg.username!r}" if cfg.username else ""), ms=_ms(t0)))
        t1 = time.monotonic()
        c.subscribe(topic, qos=1)
        if not got_sub.wait(timeout) or any(getattr(r, "is_failure", False)
                                            for r in result.get("suback", [])):
            steps.append(Step("round trip", False, f"cannot subscribe to {topic}",
                              "the broker's ACL does not allow this client to read there"
                              if got_sub.is_set() else _taken(lost, result, timeout)))
            return steps
        sent = time.monotonic()
        c.publish(topic, b"daq mqtt check", qos=1)
        if not got_msg.wait(timeout):
            steps.append(Step("round trip", False, f"published to {topic}, nothing came back "
                              f"within {timeout:g} s",
                              _taken(lost, result, timeout) if lost.is_set() else
                              "the broker's ACL may deny publishing there (MQTT 3.1.1 "
                              "brokers drop such messages silently)", _ms(t1)))
            return steps
        latency = (result["back"] - sent) * 1000.0
        steps.append(Step("round trip", True, f"published and received back in "
                          f"{latency:.1f} ms", ms=round(latency, 1),
                          details={"topic": topic, "latency_ms": round(latency, 1)}))
        if lost.wait(min(1.0, timeout)):  # someone took the session meanwhile
            steps.append(Step("session", False, "the broker closed the connection",
                              _taken(lost, result, timeout)))
        return steps
    finally:
        c.disconnect()
        c.loop_stop()


def _taken(lost: threading.Event, result: dict[str, Any], timeout: float) -> str:
    if not lost.is_set():
        return f"no answer within {timeout:g} s"
    return (f"the broker closed the connection ({result.get('disconnect')}): usually another "
            "client with the same client id keeps taking the session (a second daemon, or "
            "this configuration copied to another RTU)")
