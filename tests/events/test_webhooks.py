"""Signed deliveries to real HTTP receivers, and the addresses a delivery refuses to reach."""

from __future__ import annotations

import asyncio
import datetime
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from segmentd.events.addresses import AddressPolicy
from segmentd.events.signing import (
    DEFAULT_TOLERANCE_SECONDS,
    HEADER_EVENT_ID,
    SignatureError,
    verify_delivery,
)
from segmentd.events.webhooks import DeliveryError, WebhookSender
from tests.events.test_addresses import FixedDnsLoop

SECRET = "whsec-test-1"
EVENT_ID = "0b7c2a4e-2f1e-4f55-9c1a-6d1f3e0f9a10"
BODY = b'{"type":"segment.created","resource":{"id":"s1","name":"caf\xc3\xa9 \\u2603"}}'
LOOPBACK_OK = AddressPolicy([], allow_loopback=True)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """A real HTTP server on 127.0.0.1 that records each POST and answers `status`."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.status = 200
        self.location: str | None = None
        self.delay = 0.0
        self.trickle = False
        self.requests: list[Received] = []
        self.release = threading.Event()  # wakes a delaying handler at teardown
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def url(self, host: str = "127.0.0.1", path: str = "/hook", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append(Received(self.path, dict(self.headers.items()), body))
                if receiver.delay:
                    receiver.release.wait(receiver.delay)
                if receiver.trickle:  # a 200 that takes 3 s to arrive, 50 ms per line
                    self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                    for _ in range(60):
                        if receiver.release.wait(0.05):
                            return
                        self.wfile.write(b"X-Pad: x\r\n")
                        self.wfile.flush()
                    self.wfile.write(b"Content-Length: 0\r\n\r\n")
                    return
                self.send_response(receiver.status)
                if receiver.location:
                    self.send_header("Location", receiver.location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


def deliver(
    policy: AddressPolicy,
    url: str,
    *,
    secret: str = SECRET,
    body: bytes = BODY,
    timeout: float = 5.0,
    dns: dict[str, list[str]] | None = None,
) -> None:
    """One delivery through a fresh sender, on a real event loop (optionally a fixed resolver)."""

    async def go() -> None:
        sender = WebhookSender(policy, timeout)
        try:
            await sender.send(url, secret, EVENT_ID, body)
        finally:
            await sender.close()

    loop_factory = None if dns is None else (lambda: FixedDnsLoop(dns))
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(go())


def header(received: Received, name: str) -> str:
    return next(v for k, v in received.headers.items() if k.lower() == name.lower())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TestDelivery:
    def test_arrives_with_body_and_headers_intact(self, receiver):
        deliver(LOOPBACK_OK, receiver.url(path="/hook?team=net"))
        [got] = receiver.requests
        assert got.path == "/hook?team=net"
        assert got.body == BODY
        assert header(got, "Content-Type") == "application/json"
        assert header(got, "User-Agent") == "segmentd-webhook/1"
        assert header(got, HEADER_EVENT_ID) == EVENT_ID
        assert header(got, "Content-Length") == str(len(BODY))

    def test_receiver_verifies_it(self, receiver):
        deliver(LOOPBACK_OK, receiver.url())
        [got] = receiver.requests
        assert abs(verify_delivery(SECRET, got.headers, got.body) - time.time()) < 60

    def test_tampered_body_fails_verification(self, receiver):
        deliver(LOOPBACK_OK, receiver.url())
        [got] = receiver.requests
        with pytest.raises(SignatureError, match="signature does not match"):
            verify_delivery(SECRET, got.headers, got.body.replace(b"s1", b"s2"))

    def test_replayed_delivery_fails_verification(self, receiver):
        deliver(LOOPBACK_OK, receiver.url())
        [got] = receiver.requests
        later = time.time() + DEFAULT_TOLERANCE_SECONDS + 5
        with pytest.raises(SignatureError, match="stale or replayed"):
            verify_delivery(SECRET, got.headers, got.body, now=later)

    def test_wrong_secret_fails_verification(self, receiver):
        deliver(LOOPBACK_OK, receiver.url(), secret="the-sender-secret")
        [got] = receiver.requests
        with pytest.raises(SignatureError, match="signature does not match"):
            verify_delivery(SECRET, got.headers, got.body)
        assert verify_delivery("the-sender-secret", got.headers, got.body)

    @pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
    def test_any_2xx_is_success(self, receiver, status):
        receiver.status = status
        deliver(LOOPBACK_OK, receiver.url())
        assert len(receiver.requests) == 1

    @pytest.mark.parametrize("status", [500, 503, 404, 410, 400, 304])
    def test_other_status_is_a_delivery_error(self, receiver, status):
        receiver.status = status
        with pytest.raises(DeliveryError) as err:
            deliver(LOOPBACK_OK, receiver.url())
        assert str(err.value) == f"HTTP {status}"
        assert err.value.status == status
        assert len(receiver.requests) == 1

    @pytest.mark.parametrize("target", ["/elsewhere", "http://169.254.169.254/latest/meta-data/"])
    def test_redirect_is_not_followed(self, receiver, target):
        receiver.status = 302
        receiver.location = target if target.startswith("http") else receiver.url(path=target)
        with pytest.raises(DeliveryError, match="^HTTP 302$"):
            deliver(LOOPBACK_OK, receiver.url())
        assert [r.path for r in receiver.requests] == ["/hook"]

    def test_slow_receiver_times_out(self, receiver):
        receiver.delay = 10
        started = time.monotonic()
        with pytest.raises(DeliveryError, match=r"^timed out after 0\.3s$"):
            deliver(LOOPBACK_OK, receiver.url(), timeout=0.3)
        assert time.monotonic() - started < 3
        assert len(receiver.requests) == 1  # it arrived; the answer did not

    def test_trickling_receiver_is_cut_off_at_the_deadline(self, receiver):
        """Every read finishes within the timeout; the whole delivery must not."""
        receiver.trickle = True
        started = time.monotonic()
        with pytest.raises(DeliveryError, match=r"^timed out after 0\.5s$"):
            deliver(LOOPBACK_OK, receiver.url(), timeout=0.5)
        assert time.monotonic() - started < 3

    def test_closed_port_is_a_delivery_error(self):
        with pytest.raises(DeliveryError, match="^connection failed: cannot connect to 127.0.0.1"):
            deliver(LOOPBACK_OK, f"http://127.0.0.1:{free_port()}/hook")

    def test_unknown_host_is_a_delivery_error(self):
        with pytest.raises(DeliveryError, match="^connection failed: cannot resolve"):
            deliver(LOOPBACK_OK, "http://no-such-host.invalid/hook")

    def test_invalid_url_is_a_delivery_error(self, receiver):
        with pytest.raises(DeliveryError, match="^invalid url: url must not contain credentials"):
            deliver(LOOPBACK_OK, f"http://user:pw@127.0.0.1:{receiver.port}/hook")
        assert receiver.requests == []

    def test_sender_can_send_several_deliveries(self, receiver):
        async def go() -> None:
            sender = WebhookSender(LOOPBACK_OK, 5.0)
            try:
                for n in range(3):
                    await sender.send(receiver.url(path=f"/{n}"), SECRET, f"ev-{n}", BODY)
            finally:
                await sender.close()

        asyncio.run(go())
        assert [r.path for r in receiver.requests] == ["/0", "/1", "/2"]
        assert [header(r, HEADER_EVENT_ID) for r in receiver.requests] == ["ev-0", "ev-1", "ev-2"]


class TestAddressPolicy:
    def test_loopback_is_refused_by_default(self, receiver):
        with pytest.raises(DeliveryError, match="^refused address: address 127.0.0.1 is loopback$"):
            deliver(AddressPolicy([]), receiver.url())
        assert receiver.requests == []

    def test_loopback_allowed_by_listing(self, receiver):
        deliver(AddressPolicy(["127.0.0.1/32"]), receiver.url())
        assert len(receiver.requests) == 1

    def test_loopback_allowed_by_allow_loopback(self, receiver):
        deliver(AddressPolicy([], allow_loopback=True), receiver.url())
        assert len(receiver.requests) == 1

    def test_loopback_outside_a_listing_is_refused(self, receiver):
        with pytest.raises(DeliveryError, match="outside webhook_allowed_networks"):
            deliver(AddressPolicy(["10.0.0.0/8"]), receiver.url())
        assert receiver.requests == []

    def test_localhost_is_refused_by_default(self, receiver):
        """The URL check refuses the name itself (RFC 6761: localhost is loopback)."""
        with pytest.raises(DeliveryError, match="^refused address: host localhost is loopback$"):
            deliver(AddressPolicy([]), receiver.url(host="localhost"))
        assert receiver.requests == []

    def test_localhost_with_allow_loopback_keeps_the_name_in_host(self, receiver):
        deliver(LOOPBACK_OK, receiver.url(host="localhost"))
        [got] = receiver.requests
        assert header(got, "Host") == f"localhost:{receiver.port}"

    def test_connects_to_the_address_the_policy_resolved(self, receiver):
        """hooks.test exists only in the policy's resolver, so reaching the receiver proves the
        connection went to the vetted address rather than through a second lookup."""
        deliver(AddressPolicy(["127.0.0.1/32"]), receiver.url(host="hooks.test"),
                dns={"hooks.test": ["127.0.0.1"]})
        [got] = receiver.requests
        assert header(got, "Host") == f"hooks.test:{receiver.port}"

    def test_a_name_with_one_refused_address_is_refused(self, receiver):
        with pytest.raises(DeliveryError, match="169.254.169.254 is outside"):
            deliver(AddressPolicy(["127.0.0.1/32"]), receiver.url(host="hooks.test"),
                    dns={"hooks.test": ["127.0.0.1", "169.254.169.254"]})
        assert receiver.requests == []

    def test_metadata_literal_is_refused_without_connecting(self):
        with pytest.raises(DeliveryError) as err:
            deliver(AddressPolicy([]), "http://169.254.169.254/latest/meta-data/")
        assert str(err.value) == (
            "refused address: address 169.254.169.254 is link-local or cloud metadata"
        )


class TestDeliveryError:
    def test_message_is_bounded(self):
        assert len(str(DeliveryError("x" * 5000))) == 200

    def test_status_defaults_to_none(self):
        assert DeliveryError("timed out after 5s").status is None


def make_certificates(tmp_path) -> tuple[str, ssl.SSLContext]:
    """A private CA file and a server context whose certificate names only DNS:localhost."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "segmentd test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    return str(ca_file), server


class TestTls:
    @pytest.fixture
    def tls_receiver(self, tmp_path, monkeypatch):
        ca_file, server_context = make_certificates(tmp_path)
        monkeypatch.setenv("SSL_CERT_FILE", ca_file)  # how an operator trusts a private CA
        monkeypatch.delenv("SSL_CERT_DIR", raising=False)
        r = Receiver(tls=server_context)
        yield r
        r.stop()

    def test_certificate_is_verified_against_the_url_hostname(self, tls_receiver):
        deliver(LOOPBACK_OK, tls_receiver.url(host="localhost", scheme="https"))
        [got] = tls_receiver.requests
        assert got.body == BODY

    def test_same_address_without_a_matching_name_is_refused(self, tls_receiver):
        """Connected to the same 127.0.0.1, but the certificate does not name the URL's host."""
        with pytest.raises(DeliveryError, match="^connection failed: .*(?i:certificate|hostname)"):
            deliver(LOOPBACK_OK, tls_receiver.url(host="127.0.0.1", scheme="https"))
        assert tls_receiver.requests == []

    def test_untrusted_certificate_is_refused(self, tls_receiver, monkeypatch):
        monkeypatch.delenv("SSL_CERT_FILE")
        with pytest.raises(DeliveryError, match="^connection failed: .*(?i:certificate)"):
            deliver(LOOPBACK_OK, tls_receiver.url(host="localhost", scheme="https"))
        assert tls_receiver.requests == []
