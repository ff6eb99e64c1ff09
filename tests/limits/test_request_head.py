"""The bound on a request's head (request line and headers), against a real `segmentd serve`
over raw sockets: oversized heads are refused with 431 before they are read, however they
arrive, and the server keeps answering others meanwhile."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time

import pytest

from tests.conftest import wait_until
from tests.e2e.server import E2E_CONFIG, serving

HEAD_LIMIT = 65_536  # the default max_request_header_bytes
FIELD_LIMIT = 100  # the default max_request_header_fields
SMALL_LIMIT = 8192
MIB = 1_048_576

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`segmentd serve` with the default head limits."""
    with serving(tmp_path_factory.mktemp("head-limit"), name="head", config=E2E_CONFIG) as srv:
        yield srv


def head(value_size: int, fields: int = 1, path: str = "/healthz") -> bytes:
    """A GET whose `fields` X-Pad headers carry `value_size` bytes of value in all."""
    lines = [f"GET {path} HTTP/1.1", "Host: segmentd"]
    each, rest = divmod(value_size, fields)
    for i in range(fields):
        lines.append(f"X-Pad-{i}: " + "a" * (each + (rest if i == 0 else 0)))
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def connect(srv) -> socket.socket:
    return socket.create_connection(("127.0.0.1", srv.port), timeout=30)


class Reader:
    """Reads response after response from one socket through one buffer."""

    def __init__(self, sock: socket.socket) -> None:
        self.file = sock.makefile("rb")

    def response(self) -> tuple[int, dict[str, str], bytes]:
        """The next response (segmentd always sends Content-Length): status, headers, body."""
        status_line = self.file.readline()
        assert status_line.startswith(b"HTTP/1.1 "), status_line
        headers = {}
        while (line := self.file.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        body = self.file.read(int(headers["content-length"]))
        return int(status_line.split()[1]), headers, body


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    return Reader(sock).response()


def send_until_cut(sock: socket.socket, chunks) -> tuple[int, bool]:
    """Send chunk after chunk: (bytes sent, whether the server cut the connection first)."""
    sent = 0
    try:
        for chunk in chunks:
            sock.sendall(chunk)
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError):
        return sent, True
    return sent, False


def read_refusal(sock: socket.socket) -> bytes:
    """What the server wrote before closing (its 431), or b"" if a reset discarded it."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def assert_431(raw: bytes) -> None:
    head_part, _, body = raw.partition(b"\r\n\r\n")
    assert head_part.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), raw[:200]
    assert b"\r\nconnection: close" in head_part and b"x-content-type-options: nosniff" in head_part
    error = json.loads(body)["NeutronError"]
    assert error["type"] == "RequestHeaderFieldsTooLarge"
    assert str(HEAD_LIMIT) in error["message"]


def healthz(srv) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status
    finally:
        conn.close()


class TestRefused:
    def test_a_64_mib_header_is_cut_off_early_while_healthz_keeps_answering(self, server):
        total = 64 * MIB
        prefix = b"GET /healthz HTTP/1.1\r\nHost: segmentd\r\nX-Big: "
        outcome: dict = {}

        def attack():
            with connect(server) as sock:
                chunks = [prefix] + [b"a" * MIB] * 64
                outcome["sent"], outcome["cut"] = send_until_cut(sock, chunks)
                outcome["reply"] = read_refusal(sock)

        attacker = threading.Thread(target=attack)
        attacker.start()
        answered = []
        while attacker.is_alive():
            answered.append(healthz(server))
        attacker.join()
        answered.append(healthz(server))
        assert outcome["cut"] is True, outcome["sent"]
        # The server stopped reading just past the limit; what was sent beyond it sits in
        # socket buffers (a few MiB on loopback), far below the 64 MiB offered.
        assert outcome["sent"] < total / 4
        if outcome["reply"]:
            assert_431(outcome["reply"])
        assert set(answered) == {200}
        assert "Request head over 65536 bytes or 100 fields refused." in server.log()

    def test_a_slowly_sent_oversized_header_is_cut_off(self, server):
        """A header dribbled out in small writes is refused once it passes the limit."""
        with connect(server) as sock:
            chunks = [b"GET /healthz HTTP/1.1\r\nX-Slow: "] + [b"b" * 1024] * 1024
            paced = (time.sleep(0.002) or chunk for chunk in chunks)
            sent, cut = send_until_cut(sock, paced)
            reply = read_refusal(sock)
        assert cut is True
        assert sent < 1024 * 1024
        assert_431(reply)
        assert healthz(server) == 200

    def test_a_head_just_over_the_limit_sent_at_once_is_431(self, server):
        with connect(server) as sock:
            sock.sendall(head(HEAD_LIMIT + 1))
            status, headers, body = read_response(sock)
        assert status == 431
        assert json.loads(body)["NeutronError"]["type"] == "RequestHeaderFieldsTooLarge"
        assert headers["connection"] == "close"

    def test_a_long_url_counts_towards_the_limit(self, server):
        with connect(server) as sock:
            sock.sendall(f"GET /healthz?{'q' * HEAD_LIMIT} HTTP/1.1\r\nHost: s\r\n\r\n".encode())
            status, _, _ = read_response(sock)
        assert status == 431

    def test_more_header_fields_than_the_limit_is_431(self, server):
        with connect(server) as sock:
            sock.sendall(head(FIELD_LIMIT * 2, fields=FIELD_LIMIT))  # + Host: one too many
            status, _, body = read_response(sock)
        assert status == 431
        assert json.loads(body)["NeutronError"]["type"] == "RequestHeaderFieldsTooLarge"


class TestServed:
    def test_a_head_under_the_limit_and_the_largest_field_count_are_served(self, server):
        with connect(server) as sock:
            sock.sendall(head(HEAD_LIMIT - 4096, fields=FIELD_LIMIT - 1))  # + Host: the limit
            status, _, _ = read_response(sock)
        assert status == 200

    def test_the_limit_applies_to_each_request_of_a_keep_alive_connection(self, server):
        """Five requests of 40 KiB heads on one connection: 200 KiB in all, each served."""
        with connect(server) as sock:
            reader, statuses = Reader(sock), []
            for _ in range(5):
                sock.sendall(head(40 * 1024))
                statuses.append(reader.response()[0])
        assert statuses == [200] * 5

    def test_pipelined_requests_are_each_served(self, server):
        with connect(server) as sock:
            sock.sendall(head(10 * 1024) * 3)
            reader = Reader(sock)
            statuses = [reader.response()[0] for _ in range(3)]
        assert statuses == [200] * 3


class TestAfterTheHead:
    """What a request sends after its head: a body larger than the head limit, trailers."""

    def test_a_body_larger_than_the_head_limit_sent_in_one_write_is_served(self, server):
        """The read that ends a request is not charged to the next head (it was: 431).

        A 70 KiB body sent at once arrives here in one read on loopback."""
        doc = b'{"network": {"name": "big-body"}' + b" " * (70 * 1024) + b"}"
        raw = (b"POST /v2.0/networks HTTP/1.1\r\nHost: segmentd\r\n"
               b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(doc))
        with connect(server) as sock:
            sock.sendall(raw + doc)
            reader = Reader(sock)
            status, _, body = reader.response()
            sock.sendall(head(10 * 1024))  # and the connection serves the next request
            after = reader.response()[0]
        assert (status, json.loads(body)["network"]["name"], after) == (201, "big-body", 200)

    def test_a_client_gone_mid_body_is_a_refusal_not_a_server_error(self, server):
        """Its audit row says 400 (not 500) and the log has no unhandled error."""
        with connect(server) as sock:
            sock.sendall(b"POST /v2.0/networks HTTP/1.1\r\nHost: segmentd\r\n"
                         b"Content-Type: application/json\r\n"
                         b"Content-Length: 1000\r\n\r\n" + b'{"network":')
            time.sleep(0.5)  # the app is waiting for the rest of the body when we go

        def audited():
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            try:
                conn.request("GET", "/v2.0/audit-events?action=create_network",
                             headers={"X-Roles": "admin", "X-Project-Id": "ops"})
                rows = json.loads(conn.getresponse().read())["audit_events"]
            finally:
                conn.close()
            return [r for r in rows if r["outcome"] != "success"] or None  # others' creates

        rows = wait_until(audited, "the audit row of the abandoned request")
        assert [(r["outcome"], r["status"]) for r in rows] == [("rejected", 400)], rows
        assert "unhandled error" not in server.log()

    def test_a_trailer_field_never_becomes_a_header(self, server):
        """A chunked PUT whose trailer says If-Match of a wrong revision is not refused (412)."""
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        conn.request("POST", "/v2.0/networks", body=b'{"network": {"name": "t"}}',
                     headers={"Content-Type": "application/json"})
        net = json.loads(conn.getresponse().read())["network"]
        conn.close()
        doc = b'{"network": {"name": "renamed"}}'
        raw = (b"PUT /v2.0/networks/%s HTTP/1.1\r\nHost: segmentd\r\n"
               b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"%x\r\n%s\r\n0\r\nIf-Match: revision_number=999\r\n\r\n"
               % (net["id"].encode(), len(doc), doc))
        with connect(server) as sock:
            sock.sendall(raw)
            status, _, body = read_response(sock)
        assert (status, json.loads(body)["network"]["name"]) == (200, "renamed")

    def test_a_flood_of_trailer_fields_is_cut_off_while_healthz_keeps_answering(self, server):
        """Trailers are buffered by the parser until their line ends: the connection is closed
        once a request has sent more than twice its body and head limits after its head."""
        total = 32 * MIB
        lines = b"X-T: b\r\n" * (MIB // 8)
        cut, sent, answers = [], [], []
        with connect(server) as sock:
            sock.sendall(b"POST /healthz HTTP/1.1\r\nHost: segmentd\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n0\r\n")

            def flood():
                n, was_cut = send_until_cut(sock, (lines for _ in range(total // len(lines))))
                sent.append(n)
                cut.append(was_cut)

            sender = threading.Thread(target=flood)
            sender.start()
            while sender.is_alive() and len(answers) < 50:
                answers.append(healthz(server))
            sender.join(120)
        assert cut == [True], f"sent {sent} bytes of trailers uncut"
        assert sent[0] < total // 2
        assert set(answers) <= {200} and healthz(server) == 200


MALFORMED = [
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    b"POST /v2.0/networks HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
    b"Content-Length: 3\r\n\r\n{}",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\r\n folded\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Nul: a\x00b\r\n\r\n",
    b"NOT A REQUEST\r\n\r\n",
]


class TestMalformed:
    @pytest.mark.parametrize("raw", MALFORMED)
    def test_what_the_http_parser_refuses_is_a_neutron_error_with_the_security_headers(
            self, server, raw):
        with connect(server) as sock:
            sock.sendall(raw)
            reply = read_refusal(sock)
        head_part, _, body = reply.partition(b"\r\n\r\n")
        assert head_part.startswith(b"HTTP/1.1 400 Bad Request\r\n"), reply[:200]
        assert b"\r\nx-content-type-options: nosniff" in head_part
        assert b"\r\ncontent-security-policy: default-src 'none'" in head_part
        assert b"\r\ncontent-type: application/json" in head_part
        assert json.loads(body) == {"NeutronError": {
            "type": "HTTPBadRequest", "message": "Malformed HTTP request.", "detail": ""}}
        assert healthz(server) == 200

    def test_a_websocket_upgrade_is_served_as_plain_http(self, server):
        with connect(server) as sock:
            sock.sendall(b"GET /v2.0/no-such-thing HTTP/1.1\r\nHost: x\r\n"
                         b"Connection: Upgrade\r\nUpgrade: websocket\r\n"
                         b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: "
                         b"dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
            status, headers, body = read_response(sock)
        assert status == 404
        assert headers["x-content-type-options"] == "nosniff"
        assert json.loads(body)["NeutronError"]["type"] == "HTTPNotFound"


def test_the_limits_are_configurable(tmp_path):
    config = {**E2E_CONFIG, "max_request_header_bytes": SMALL_LIMIT, "max_request_header_fields": 20}
    results = []
    with serving(tmp_path, name="small-head", config=config) as srv:
        for raw in (head(SMALL_LIMIT - 512), head(SMALL_LIMIT), head(40, fields=19),
                    head(40, fields=20)):
            with connect(srv) as sock:
                sock.sendall(raw)
                results.append(read_response(sock)[0])
    assert results == [200, 431, 200, 431]
