"""The shipped example config never refuses a client that sends one request at a time.

The server is started as README's start command starts it (etc/segmentd.example.toml,
only the database and port differ); the client is as fast as a sequential client can be:
one keep-alive connection, each request sent as soon as the previous answer arrived.
"""

from __future__ import annotations

from collections import Counter

import httpx
import pytest

pytestmark = pytest.mark.slow

REQUESTS = 2000


def test_sequential_client_at_full_speed_never_sees_a_429(sqlite_live_server):
    live_server = sqlite_live_server  # the example config's own database
    with httpx.Client(base_url=live_server.url,
                      headers={"X-Auth-Token": live_server.admin}) as client:
        created = client.post("/v2.0/networks", json={"network": {"name": "sequential"}})
        assert created.status_code == 201, created.text
        net_id = created.json()["network"]["id"]
        steps = [
            ("GET", "/v2.0/networks", None),
            ("GET", f"/v2.0/networks/{net_id}", None),
            ("GET", f"/v2.0/segments?network_id={net_id}", None),
            ("PUT", f"/v2.0/networks/{net_id}", {"network": {"description": "again"}}),
        ]
        statuses = Counter({created.status_code: 1})
        for i in range(REQUESTS - 1):
            method, path, body = steps[i % len(steps)]
            resp = client.request(method, path, json=body)
            statuses[resp.status_code] += 1
    assert statuses == {201: 1, 200: REQUESTS - 1}
