"""Revocation, expiry, a deleted project and Keystone going away, against a real Keystone:
private ones where a test stops Keystone or shortens its tokens' lives."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.keystone_auth.conftest import call, make_cloud, serve

pytestmark = pytest.mark.slow
CACHE_TIME = 2.0  # token_cache_time of the servers that show revocation


def status(url: str, token: str) -> int:
    return call(url, "GET", "/v2.0/networks", token).status_code


def wait_for(predicate, timeout: float, step: float = 0.2) -> float:
    """Seconds until predicate() held; fails after `timeout`."""
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < timeout, "timed out"
        time.sleep(step)
    return time.monotonic() - start


def test_a_revoked_token_is_refused_once_its_cache_time_is_over(request, cloud, tmp_path):
    server = serve(request, tmp_path, cloud, "revocation", token_cache_time=CACHE_TIME)
    url = server.base_url
    token = cloud.token("alice", "p1")
    assert status(url, token) == 200
    cloud.keystone.revoke_token(token)
    assert cloud.keystone.validate(token).status_code == 404
    wait_for(lambda: status(url, token) == 401, CACHE_TIME + 8)  # polled: 2 s plus slack
    assert status(url, token) == 401


def test_a_token_of_a_deleted_project_is_refused(request, cloud, tmp_path):
    server = serve(request, tmp_path, cloud, "deleted-project", token_cache_time=CACHE_TIME)
    doomed = cloud.add_project("doomed")
    cloud.add_user("dora", "doomed")
    token = cloud.token("dora", "doomed")
    assert status(server.base_url, token) == 200
    cloud.keystone.delete_project(doomed)
    wait_for(lambda: status(server.base_url, token) == 401, CACHE_TIME + 8)


def test_an_expired_token_is_refused_whatever_the_cache_time(request, private_keystone,
                                                             tmp_path):
    """Tokens living 6 s, segmentd's cache time as shipped (300 s): a token is refused once
    it expires, and segmentd's own token, renewed before it runs out, keeps validating new
    tokens past its own first lifetime."""
    keystone = private_keystone(token_expiration=6)
    cloud = make_cloud(keystone)
    server = serve(request, tmp_path, cloud, "expiry")
    token = cloud.token("alice", "p1")
    assert status(server.base_url, token) == 200
    wait_for(lambda: status(server.base_url, token) == 401, 10, step=0.5)
    for _ in range(2):  # each new token validated by segmentd's current token
        assert status(server.base_url, cloud.token("bob", "p2")) == 200
        time.sleep(3.5)
    assert server.log().count("signed in to Keystone") >= 2
    assert '" 401 ' not in keystone.log()  # renewed before it ran out, never refused


def test_keystone_down_is_503_for_new_tokens_only_and_recovery_needs_no_restart(
        request, private_keystone, tmp_path):
    keystone = private_keystone()
    cloud = make_cloud(keystone)
    server = serve(request, tmp_path, cloud, "outage")
    url = server.base_url
    known, new = cloud.token("alice", "p1"), cloud.token("bob", "p2")
    assert status(url, known) == 200
    assert call(url, "GET", "/readyz", None).json()["keystone"] == "reachable"

    keystone.stop()
    assert status(url, known) == 200  # remembered: keeps working
    refused = call(url, "GET", "/v2.0/networks", new)
    assert refused.status_code == 503, refused.text
    assert refused.json()["NeutronError"]["type"] == "IdentityUnavailable"
    assert 1 <= int(refused.headers["Retry-After"]) <= 5
    again = call(url, "POST", "/v2.0/networks", new, json={"network": {"name": "x"}})
    assert again.status_code == 503  # never 401, never 500; nothing written
    ready = call(url, "GET", "/readyz", None)
    assert ready.status_code == 200
    assert ready.json()["keystone"] == "unreachable" and ready.json()["status"] == "degraded"
    assert call(url, "GET", "/v2.0/networks", live_bootstrap(server)).status_code == 200

    keystone.start()
    wait_for(lambda: status(url, new) == 200, 15)
    assert call(url, "GET", "/readyz", None).json()["keystone"] == "reachable"
    assert call(url, "GET", "/v2.0/networks", new).json()["networks"] == []
    assert server.proc.poll() is None  # the same process throughout


def live_bootstrap(server) -> str:
    """segmentd's own admin token (printed at first start): it works while Keystone is down."""
    from tests.e2e.server import bootstrap_tokens

    (token,) = bootstrap_tokens(server)
    return token


def test_a_hung_keystone_costs_each_request_one_timeout_not_a_queue_of_them(
        request, private_keystone, tmp_path):
    """Keystone frozen (it accepts connections and never answers) before segmentd ever
    signed in: concurrent new tokens wait for one sign-in attempt together, not one after
    another; /readyz answers within its own short wait; /healthz at once; after a thaw all
    is well again without a restart."""
    keystone = private_keystone()
    cloud = make_cloud(keystone)
    server = serve(request, tmp_path, cloud, "hung", http_request_timeout=2.0,
                   http_connect_timeout=1.0)
    url = server.base_url
    tokens = [cloud.token("alice", "p1") for _ in range(5)]
    keystone.pause()
    try:
        started = time.monotonic()
        with ThreadPoolExecutor(len(tokens)) as pool:
            answers = list(pool.map(lambda t: call(url, "GET", "/v2.0/networks", t), tokens))
        took = time.monotonic() - started
        assert [a.status_code for a in answers] == [503] * 5
        assert took < 3 * 2.0, took  # one 2 s attempt shared; five in a row would be 10 s
        ready = call(url, "GET", "/readyz", None)
        assert ready.status_code == 200 and ready.json()["keystone"] == "unreachable"
        assert call(url, "GET", "/healthz", None).status_code == 200
    finally:
        keystone.resume()
    wait_for(lambda: status(url, tokens[0]) == 200, 20)
    assert all(status(url, t) == 200 for t in tokens)
