"""/v2.0/event-subscriptions end to end: the API, and real HTTP receivers getting deliveries
from the app's own dispatcher, signed, filtered, in order per key, retried, stopped."""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler

import pytest
from sqlalchemy import select, update

from segmentd import verify_delivery
from segmentd.db.models import event_deliveries, event_subscriptions
from segmentd.events.signing import (
    DEFAULT_TOLERANCE_SECONDS,
    HEADER_EVENT_ID,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    SignatureError,
)
from tests.conftest import build_api, wait_until
from tests.events.test_webhooks import Receiver
from tests.factories import error_of, make_network

SECRET = "s3cret-for-the-hook-" + "x" * 12
ALL_TYPES = ["network.created", "network.updated", "network.deleted", "segment.created",
             "segment.updated", "segment.deleted", "agent.created", "agent.updated",
             "agent.deleted", "host.segments_changed"]
RETRY_BASE = 0.2
# Loopback receivers allowed; fast cycles and short backoff so tests take seconds.
HOOK_SETTINGS = {
    "webhook_allowed_networks": ["127.0.0.1/32"],
    "event_retry_base_seconds": RETRY_BASE,
    "event_retry_max_seconds": 1.0,
    "event_dispatch_interval_seconds": 0.05,
    "webhook_timeout_seconds": 3.0,
}
SUBSCRIPTION_FIELDS = {"id", "name", "url", "event_types", "enabled", "created_at",
                       "updated_at", "revision_number"}


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() on arrival

    @property
    def event(self) -> dict:
        return json.loads(self.body)

    @property
    def event_id(self) -> str:
        return self.headers[HEADER_EVENT_ID]


class HookReceiver(Receiver):
    """The shared test receiver, recording arrival times and answering `answer(delivery)`."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.answer: Callable[[Delivery], int] = lambda got: 200
        super().__init__()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                if len(body) < length:  # the sender died mid-request: nothing was delivered
                    self.close_connection = True
                    return
                got = Delivery(self.path, dict(self.headers.items()), body, time.monotonic())
                with receiver.lock:
                    receiver.requests.append(got)
                    status = receiver.answer(got)
                if receiver.delay:
                    receiver.release.wait(receiver.delay)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler

    def got(self) -> list[Delivery]:
        with self.lock:
            return list(self.requests)

    def events(self, **match) -> list[dict]:
        """Received event documents (every attempt), oldest first, filtered by field values."""
        return [d.event for d in self.got()
                if all(d.event.get(k) == v for k, v in match.items())]


@pytest.fixture
def receiver():
    r = HookReceiver()
    yield r
    r.stop()


@pytest.fixture
def second_receiver():
    r = HookReceiver()
    yield r
    r.stop()


@pytest.fixture
def hook_api(db_url):
    api = build_api(db_url, **HOOK_SETTINGS)
    with api.client:
        yield api


def subscribe(api, url: str, *, types=None, expect: int = 201, **extra) -> dict:
    body = {"url": url, "secret": SECRET, "event_types": types or ALL_TYPES, **extra}
    resp = api.post("/v2.0/event-subscriptions", json={"event_subscription": body})
    assert resp.status_code == expect, resp.text
    return resp.json().get("event_subscription", resp.json())


def deliveries(api, sub_id: str) -> list[dict]:
    resp = api.get(f"/v2.0/event-subscriptions/{sub_id}/deliveries")
    assert resp.status_code == 200, resp.text
    return resp.json()["deliveries"]


def all_delivered(api, sub_id: str, count: int) -> list[dict] | None:
    found = deliveries(api, sub_id)
    if len(found) == count and all(d["status"] == "delivered" for d in found):
        return found
    return None


def subscription_count(api) -> int:
    return len(api.get("/v2.0/event-subscriptions").json()["event_subscriptions"])


def pending_rows(api, target: str) -> list[dict]:
    async def read(conn):
        d = event_deliveries
        stmt = select(d).where(d.c.target == target)
        return [dict(r) for r in (await conn.execute(stmt)).mappings()]

    return api._run(read)


def rename(api, net_id: str, name: str) -> dict:
    resp = api.put(f"/v2.0/networks/{net_id}", json={"network": {"name": name}})
    assert resp.status_code == 200, resp.text
    return resp.json()["network"]


# -- the subscription resource ---------------------------------------------------------------

REFUSED_URLS = (
    "ftp://127.0.0.1/hook",
    "file:///etc/passwd",
    "http://user:hunter2@127.0.0.1/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.1/hook",  # outside webhook_allowed_networks
    "http://[::1]/hook",  # loopback, but not in the IPv4 listing
    "http://0x7f000002/hook",  # 127.0.0.2, spelt another way, outside the /32
    "http://127.0.0.1:0/hook",
    "http:///hook",
    "http://127.0.0.1/ho ok",
)
INVALID_BODIES = (
    {"secret": "short"},
    {"secret": "line\nbreak-in-the-secret"},
    {"event_types": []},
    {"event_types": ["network.created", "network.created"]},
    {"event_types": ["network.exploded"]},
    {"url": ""},
    {"url": "http://127.0.0.1/" + "a" * 3000},
    {"enabled": "yes"},
    {"id": str(uuid.uuid4())},
    {"unknown": 1},
)

class TestSubscriptionResource:
    def test_create_show_list_update_never_return_the_secret(self, hook_api, receiver):
        sub = subscribe(hook_api, receiver.url(), types=["segment.created"], name="ops")
        assert set(sub) == SUBSCRIPTION_FIELDS
        assert (sub["name"], sub["url"], sub["event_types"], sub["enabled"]) == (
            "ops", receiver.url(), ["segment.created"], True)
        assert sub["revision_number"] == 0
        new_secret = "another-secret-" + "y" * 20
        responses = [
            hook_api.get(f"/v2.0/event-subscriptions/{sub['id']}"),
            hook_api.get("/v2.0/event-subscriptions"),
            hook_api.put(f"/v2.0/event-subscriptions/{sub['id']}",
                         json={"event_subscription": {"secret": new_secret, "name": "ops2"}}),
        ]
        for resp in responses:
            assert resp.status_code == 200, resp.text
            assert SECRET not in resp.text and new_secret not in resp.text
            assert "secret" not in resp.text
        asked = hook_api.get("/v2.0/event-subscriptions", params={"fields": "secret"})
        assert asked.status_code == 400 and SECRET not in asked.text
        assert error_of(asked) == {"type": "HTTPBadRequest", "detail": "",
                                   "message": "['secret'] is invalid attribute for fields"}
        updated = responses[-1].json()["event_subscription"]
        assert (updated["name"], updated["revision_number"]) == ("ops2", 1)
        assert hook_api.get(f"/v2.0/event-subscriptions/{sub['id']}").json()[
            "event_subscription"] == updated

    @pytest.mark.sqlite_only
    def test_refused_url_is_400_and_writes_nothing(self, hook_api):
        problems = []
        for url in REFUSED_URLS:
            resp = hook_api.post("/v2.0/event-subscriptions", json={"event_subscription": {
                "url": url, "secret": SECRET, "event_types": ["network.created"]}})
            err = error_of(resp) if resp.status_code == 400 else {}
            if resp.status_code != 400 or err["type"] != "InvalidInput" \
                    or not err["message"].startswith("Invalid input for operation: url: "):
                problems.append(f"{url}: {resp.status_code} {resp.text}")
            if "hunter2" in resp.text:
                problems.append(f"{url}: the error repeats the password")
        assert problems == []
        assert subscription_count(hook_api) == 0

    @pytest.mark.sqlite_only
    def test_loopback_and_metadata_refused_without_an_allow_list(self, db_url):
        api = build_api(db_url)
        with api.client:
            for url, why in (
                    ("http://127.0.0.1:8080/hook", "address 127.0.0.1 is loopback"),
                    ("http://[::1]/hook", "address ::1 is loopback"),
                    ("http://127.1/hook", "address 127.0.0.1 is loopback"),
                    ("http://169.254.169.254/",
                     "address 169.254.169.254 is link-local or cloud metadata"),
                    ("http://[::ffff:127.0.0.1]/hook", "address 127.0.0.1 is loopback")):
                resp = api.post("/v2.0/event-subscriptions", json={"event_subscription": {
                    "url": url, "secret": SECRET, "event_types": ["network.created"]}})
                assert resp.status_code == 400, (url, resp.text)
                assert error_of(resp) == {
                    "type": "InvalidInput", "detail": "",
                    "message": f"Invalid input for operation: url: {why}."}, url
            assert subscription_count(api) == 0

    @pytest.mark.sqlite_only
    def test_invalid_body_is_400(self, hook_api, receiver):
        for body in INVALID_BODIES:
            full = {"url": receiver.url(), "secret": SECRET, "event_types": ["network.created"],
                    **body}
            resp = hook_api.post("/v2.0/event-subscriptions", json={"event_subscription": full})
            assert resp.status_code == 400, (body, resp.text)
            assert error_of(resp)["type"] == "HTTPBadRequest", (body, resp.text)
        for body in ({"secret": SECRET}, {"event_subscription": {"secret": SECRET}, "x": 1}, []):
            resp = hook_api.post("/v2.0/event-subscriptions", json=body)
            assert resp.status_code == 400, (body, resp.text)
            assert error_of(resp) == {
                "type": "HTTPBadRequest", "detail": "",
                "message": "Resource body required with the single key 'event_subscription'"}
        assert subscription_count(hook_api) == 0

    @pytest.mark.sqlite_only
    def test_update_to_a_refused_url_is_400_and_changes_nothing(self, hook_api, receiver):
        sub = subscribe(hook_api, receiver.url())
        resp = hook_api.put(f"/v2.0/event-subscriptions/{sub['id']}", json={
            "event_subscription": {"url": "http://169.254.169.254/", "name": "x"}})
        assert resp.status_code == 400, resp.text
        assert error_of(resp) == {
            "type": "InvalidInput", "detail": "",
            "message": "Invalid input for operation: url: address 169.254.169.254 is outside "
                       "webhook_allowed_networks."}
        shown = hook_api.get(f"/v2.0/event-subscriptions/{sub['id']}").json()
        assert shown["event_subscription"] == sub

    @pytest.mark.parametrize("method,suffix", [
        ("GET", ""), ("PUT", ""), ("DELETE", ""), ("GET", "/deliveries")])
    @pytest.mark.sqlite_only
    def test_unknown_subscription_is_404(self, hook_api, method, suffix):
        resp = hook_api.request(
            method, f"/v2.0/event-subscriptions/{uuid.uuid4()}{suffix}",
            json={"event_subscription": {"name": "x"}} if method == "PUT" else None)
        assert resp.status_code == 404, resp.text
        assert error_of(resp)["type"] == "EventSubscriptionNotFound"

    @pytest.mark.sqlite_only
    def test_only_admins_manage_them(self, hook_api, receiver):
        member = {"X-Project-Id": "p1", "X-Roles": "member"}
        resp = hook_api.post("/v2.0/event-subscriptions", headers=member, json={
            "event_subscription": {"url": receiver.url(), "secret": SECRET,
                                   "event_types": ["network.created"]}})
        assert resp.status_code == 403, resp.text
        assert error_of(resp) == {
            "type": "PolicyNotAuthorized", "detail": "",
            "message": "rule:create_event_subscription is disallowed by policy"}
        listed = hook_api.get("/v2.0/event-subscriptions", headers=member)
        assert listed.status_code == 403
        assert error_of(listed) == {
            "type": "PolicyNotAuthorized", "detail": "",
            "message": "rule:get_event_subscription is disallowed by policy"}
        assert subscription_count(hook_api) == 0


# -- deliveries through the running app ------------------------------------------------------

class TestSignedDeliveries:
    def test_each_delivery_verifies_and_carries_the_outbox_body(self, hook_api, receiver):
        sub = subscribe(hook_api, receiver.url(path="/hook?team=net"))
        net = make_network(hook_api, name="signed")
        got = wait_until(lambda: len(receiver.got()) >= 2 and receiver.got(), "two deliveries")
        stored = {e.id: e.document() for e in hook_api.events}
        assert [(d.event["type"], d.event["resource_id"]) for d in got[:1]] == [
            ("network.created", net["id"])]
        for d in got:
            assert d.path == "/hook?team=net"
            assert d.headers["Content-Type"] == "application/json"
            signed_at = verify_delivery(SECRET, d.headers, d.body)
            assert abs(signed_at - time.time()) < 60
            assert int(d.headers[HEADER_TIMESTAMP]) == signed_at
            assert d.headers[HEADER_SIGNATURE].startswith("sha256=")
            assert d.event_id == d.event["id"]
            assert d.event == stored[d.event_id]  # exactly what the outbox committed
        first = got[0]
        with pytest.raises(SignatureError, match="does not match"):
            verify_delivery(SECRET, first.headers, first.body.replace(b"signed", b"signeD"))
        with pytest.raises(SignatureError, match="does not match"):
            verify_delivery(SECRET, {**first.headers, HEADER_TIMESTAMP: str(
                int(first.headers[HEADER_TIMESTAMP]) + 1)}, first.body)
        with pytest.raises(SignatureError, match="stale or replayed"):
            verify_delivery(SECRET, first.headers, first.body,
                            now=time.time() + DEFAULT_TOLERANCE_SECONDS + 5)
        with pytest.raises(SignatureError, match="does not match"):
            verify_delivery("not-the-secret-" + "z" * 20, first.headers, first.body)
        found = wait_until(lambda: all_delivered(hook_api, sub["id"], 2), "delivered status")
        assert {d["event_id"] for d in found} == {d.event_id for d in got}
        for d in found:
            assert (d["attempts"], d["last_error"], d["next_attempt_at"]) == (1, None, None)
            assert d["target"] == f"webhook:{sub['id']}"

    def test_event_types_filter_what_each_subscription_gets(
        self, hook_api, receiver, second_receiver
    ):
        segs = subscribe(hook_api, receiver.url(), types=["segment.created", "segment.deleted"])
        gone = subscribe(hook_api, second_receiver.url(), types=["network.deleted"])
        net = make_network(hook_api)
        rename(hook_api, net["id"], "renamed")
        assert hook_api.delete(f"/v2.0/networks/{net['id']}").status_code == 204
        wait_until(lambda: all_delivered(hook_api, segs["id"], 2), "segment deliveries")
        wait_until(lambda: all_delivered(hook_api, gone["id"], 1), "network.deleted delivery")
        assert [e["type"] for e in receiver.events()] == ["segment.created", "segment.deleted"]
        assert [(e["type"], e["resource_id"]) for e in second_receiver.events()] == [
            ("network.deleted", net["id"])]


class TestOrderPerKey:
    def test_a_burst_of_renames_arrives_in_revision_order(self, hook_api, receiver):
        subscribe(hook_api, receiver.url(), types=["network.created", "network.updated"])
        receiver.delay = 0.005  # deliveries lag behind the burst, so batches form
        a, b = make_network(hook_api, name="a-0"), make_network(hook_api, name="b-0")
        for n in range(1, 31):
            rename(hook_api, a["id"], f"a-{n}")
            if n % 3 == 0:
                rename(hook_api, b["id"], f"b-{n}")
        wait_until(lambda: len(receiver.got()) >= 42, "42 deliveries", timeout=20)
        for net, count in ((a, 31), (b, 11)):
            revisions = [e["resource"]["revision_number"]
                         for e in receiver.events(resource_id=net["id"])]
            assert revisions == sorted(set(revisions)), revisions  # strictly increasing
            assert len(revisions) == count
        assert receiver.events(resource_id=a["id"])[-1]["resource"]["name"] == "a-30"


class TestRetries:
    def test_failing_receiver_is_retried_with_growing_delays_and_nothing_overtakes(
        self, hook_api, receiver, db_url
    ):
        failures = 3
        attempts: dict[str, int] = {}

        def answer(got: Delivery) -> int:
            event = got.event
            attempts[got.event_id] = attempts.get(got.event_id, 0) + 1
            flaky = event["type"] == "network.created" and event["resource"]["name"] == "flaky"
            return 500 if flaky and attempts[got.event_id] <= failures else 200

        receiver.answer = answer
        sub = subscribe(hook_api, receiver.url())
        flaky = make_network(hook_api, name="flaky")
        rename(hook_api, flaky["id"], "flaky-1")
        rename(hook_api, flaky["id"], "flaky-2")
        steady = make_network(hook_api, name="steady")  # another key: not held up

        # While it fails, the deliveries API shows the attempts, the error and the next try.
        def retrying():
            found = [d for d in deliveries(hook_api, sub["id"])
                     if d["event_type"] == "network.created" and d["status"] == "retrying"]
            return found[0] if found else None

        shown = wait_until(retrying, "a retrying delivery")
        # Failed so far (each of its first `failures` attempts fails), and to be tried again.
        assert 1 <= shown["attempts"] <= failures and shown["last_error"] == "HTTP 500"
        assert shown["delivered_at"] is None and shown["next_attempt_at"] is not None
        datetime.strptime(shown["next_attempt_at"], "%Y-%m-%dT%H:%M:%SZ")
        wait_until(lambda: receiver.events(resource_id=steady["id"]), "the other key's event")
        assert len(receiver.events(type="network.created", resource_id=flaky["id"])) <= failures

        wait_until(lambda: all_delivered(hook_api, sub["id"], 6), "all six delivered")
        got = receiver.got()
        mine = [d for d in got if flaky["id"] in (d.event["resource_id"],
                                                   d.event["resource"].get("network_id"))]
        kinds = [(d.event["type"], d.event["resource"].get("name")) for d in mine]
        # One key: every attempt of the failing event first, then the rest in commit order.
        assert kinds == [("network.created", "flaky")] * (failures + 1) + [
            ("segment.created", None), ("network.updated", "flaky-1"),
            ("network.updated", "flaky-2")]
        # The other key got through while this one was failing.
        first_steady = next(i for i, d in enumerate(got) if d.event["resource_id"] == steady["id"])
        assert first_steady < got.index(mine[failures])

        times = [d.at for d in mine[: failures + 1]]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        for n, gap in enumerate(gaps):  # backoff n waits at least half of base * 2**n
            assert gap >= RETRY_BASE * 2**n / 2 * 0.9, gaps
        if not db_url.startswith("mysql"):  # MariaDB keeps retry times in whole seconds
            assert gaps[-1] > gaps[0], gaps

        (done,) = [d for d in deliveries(hook_api, sub["id"])
                   if d["event_type"] == "network.created" and d["event_id"] == mine[0].event_id]
        assert (done["attempts"], done["status"], done["last_error"]) == (
            failures + 1, "delivered", None)
        assert done["next_attempt_at"] is None
        datetime.strptime(done["delivered_at"], "%Y-%m-%dT%H:%M:%SZ")


class TestStopping:
    def test_disabled_subscription_gets_nothing_new(self, hook_api, receiver, second_receiver):
        off = subscribe(hook_api, receiver.url(), types=["network.created"])
        on = subscribe(hook_api, second_receiver.url(), types=["network.created"])
        first = make_network(hook_api, name="first")
        wait_until(lambda: all_delivered(hook_api, off["id"], 1), "first to the soon-disabled one")
        resp = hook_api.put(f"/v2.0/event-subscriptions/{off['id']}",
                            json={"event_subscription": {"enabled": False}})
        assert resp.status_code == 200 and resp.json()["event_subscription"]["enabled"] is False

        second = make_network(hook_api, name="second")
        wait_until(lambda: all_delivered(hook_api, on["id"], 2), "second to the enabled one")
        time.sleep(0.3)  # several dispatch cycles
        assert [e["resource_id"] for e in receiver.events()] == [first["id"]]
        assert [d["event_id"] for d in deliveries(hook_api, off["id"])] == [
            receiver.got()[0].event_id]

        resp = hook_api.put(f"/v2.0/event-subscriptions/{off['id']}",
                            json={"event_subscription": {"enabled": True}})
        assert resp.status_code == 200, resp.text
        third = make_network(hook_api, name="third")
        wait_until(lambda: receiver.events(resource_id=third["id"]), "third after re-enabling")
        assert second["id"] not in {e["resource_id"] for e in receiver.events()}

    def test_disabling_stops_retries_of_pending_deliveries(self, hook_api, receiver):
        receiver.answer = lambda got: 503
        sub = subscribe(hook_api, receiver.url(), types=["network.created"])
        make_network(hook_api)
        wait_until(lambda: len(receiver.got()) >= 2, "a retry")
        resp = hook_api.put(f"/v2.0/event-subscriptions/{sub['id']}",
                            json={"event_subscription": {"enabled": False}})
        assert resp.status_code == 200
        # Its next due time comes within event_retry_max_seconds; the dispatcher then holds it
        # instead of posting. An attempt in flight at the PUT lands before that (one lease).
        wait_until(
            lambda: [d for d in deliveries(hook_api, sub["id"])
                     if d["last_error"] == "subscription is disabled"], "the delivery held")
        settled = len(receiver.got())
        time.sleep(1.5)  # > event_retry_max_seconds: another due time passes, still no POST
        assert len(receiver.got()) == settled
        (pending,) = deliveries(hook_api, sub["id"])
        assert pending["status"] == "retrying" and pending["delivered_at"] is None
        assert pending["last_error"] == "subscription is disabled"

        # Enabled again, what it still owed is delivered (within event_retry_max_seconds).
        receiver.answer = lambda got: 200
        resp = hook_api.put(f"/v2.0/event-subscriptions/{sub['id']}",
                            json={"event_subscription": {"enabled": True}})
        assert resp.status_code == 200
        (done,) = wait_until(lambda: all_delivered(hook_api, sub["id"], 1), "the owed event")
        assert done["event_id"] == pending["event_id"] == receiver.got()[-1].event_id

    def test_deleting_drops_its_pending_deliveries(self, hook_api, receiver, second_receiver):
        receiver.answer = lambda got: 500
        doomed = subscribe(hook_api, receiver.url())
        kept = subscribe(hook_api, second_receiver.url())
        make_network(hook_api)
        wait_until(lambda: len(receiver.got()) >= 2, "retries")
        target = f"webhook:{doomed['id']}"
        assert pending_rows(hook_api, target)
        assert hook_api.delete(f"/v2.0/event-subscriptions/{doomed['id']}").status_code == 204
        assert pending_rows(hook_api, target) == []
        resp = hook_api.get(f"/v2.0/event-subscriptions/{doomed['id']}/deliveries")
        assert resp.status_code == 404
        assert error_of(resp) == {
            "type": "EventSubscriptionNotFound", "detail": "",
            "message": f"Event subscription {doomed['id']} could not be found."}
        time.sleep(0.2)  # an attempt in flight at the delete may still land
        settled = len(receiver.got())
        make_network(hook_api, name="after")
        wait_until(lambda: all_delivered(hook_api, kept["id"], 4), "the other subscription")
        time.sleep(0.8)  # > the backoff of its next attempt had it not been deleted
        assert len(receiver.got()) == settled
        assert pending_rows(hook_api, target) == []

    def test_a_name_resolving_to_loopback_is_refused_at_delivery(self, db_url, receiver):
        """localhost is refused when a subscription names it, and a subscription stored
        before that check (an older release's) is refused at delivery, which checks the URL
        again and then every address its name resolves to."""
        api = build_api(db_url, **{**HOOK_SETTINGS, "webhook_allowed_networks": []})
        with api.client:
            refused = api.post("/v2.0/event-subscriptions", json={"event_subscription": {
                "url": receiver.url(host="localhost"), "secret": SECRET,
                "event_types": ["network.created"]}})
            assert refused.status_code == 400
            assert "host localhost is loopback" in error_of(refused)["message"]
            sub = subscribe(api, "http://hooks.example.com/", types=["network.created"])
            async def point_at_localhost(conn):
                await conn.execute(
                    update(event_subscriptions).where(event_subscriptions.c.id == sub["id"])
                    .values(url=receiver.url(host="localhost")))
                await conn.commit()

            api._run(point_at_localhost)
            make_network(api)

            def refused():
                found = deliveries(api, sub["id"])
                return found and found[0]["last_error"] and found[0]

            shown = wait_until(refused, "a refused delivery")
            assert shown["last_error"] == "refused address: host localhost is loopback"
            assert shown["status"] == "retrying"
        assert receiver.got() == []


def test_enabling_again_sends_what_was_owed_at_once(db_url, receiver):
    """A disabled subscription's deliveries wait out the longest backoff; enabling it again
    makes them due at once rather than after event_retry_max_seconds (300 s here)."""
    api = build_api(db_url, **{**HOOK_SETTINGS, "event_retry_max_seconds": 300.0})
    with api.client:
        receiver.answer = lambda got: 503
        sub = subscribe(api, receiver.url(), types=["network.created"])
        make_network(api)
        wait_until(lambda: receiver.got(), "a first, failing attempt")
        api.put(f"/v2.0/event-subscriptions/{sub['id']}",
                json={"event_subscription": {"enabled": False}})
        wait_until(lambda: [d for d in deliveries(api, sub["id"])
                          if d["last_error"] == "subscription is disabled"], "the hold")
        receiver.answer = lambda got: 200
        resp = api.put(f"/v2.0/event-subscriptions/{sub['id']}",
                       json={"event_subscription": {"enabled": True}})
        assert resp.status_code == 200, resp.text
        (done,) = wait_until(lambda: all_delivered(api, sub["id"], 1), "the owed event", 5.0)
        assert done["event_id"] == receiver.got()[-1].event_id
