"""Two `segmentd serve` processes on one PostgreSQL database allocating IDs at the same time."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import asyncpg
import httpx
import pytest

from tests.e2e.server import E2E_CONFIG, two_servers_on_postgresql

pytestmark = [pytest.mark.postgresql, pytest.mark.slow]

CONCURRENT = 32
TINY_VLANS = range(10, 18)  # vlan_ranges "tiny:10:17": 8 IDs


@pytest.fixture
def two_servers(request, tmp_path):
    """(db_url, [server_a, server_b]): one migrated PostgreSQL database, two processes on it."""
    with two_servers_on_postgresql(request, tmp_path) as both:
        yield both


def fire(bodies_and_urls: list[tuple[str, dict]]) -> list[httpx.Response]:
    """POST every (url, body) from its own thread, released together by a barrier."""
    barrier = threading.Barrier(len(bodies_and_urls))

    def post(item):
        url, body = item
        with httpx.Client(timeout=60) as client:
            barrier.wait()
            return client.post(url, json=body)

    with ThreadPoolExecutor(len(bodies_and_urls)) as pool:
        return list(pool.map(post, bodies_and_urls))


def create_network(base_url: str, **attrs) -> dict:
    resp = httpx.post(f"{base_url}/v2.0/networks", json={"network": {"name": "n", **attrs}})
    assert resp.status_code == 201, resp.text
    return resp.json()["network"]


def segment_rows(db_url: str, network_id: str) -> list[asyncpg.Record]:
    """segment_index and alloc_id are not in the API: read them from the table."""

    async def fetch():
        conn = await asyncpg.connect(db_url)
        try:
            return await conn.fetch(
                "SELECT id, segment_index, alloc_id, segmentation_id FROM segments "
                "WHERE network_id = $1", network_id,
            )
        finally:
            await conn.close()

    return asyncio.run(fetch())


def test_32_concurrent_vxlan_creates_on_one_network_across_two_servers(two_servers):
    """Every create succeeds with its own VNI and its own segment_index; no lost rows."""
    db_url, (a, b) = two_servers
    net = create_network(a.base_url, **{"provider:network_type": "vxlan"})
    work = [
        (f"{(a, b)[i % 2].base_url}/v2.0/segments",
         {"segment": {"network_id": net["id"], "network_type": "vxlan", "name": f"s{i}"}})
        for i in range(CONCURRENT)
    ]
    responses = fire(work)

    assert [r.status_code for r in responses] == [201] * CONCURRENT, [
        r.text for r in responses if r.status_code != 201
    ]
    created = [r.json()["segment"] for r in responses]
    vnis = [s["segmentation_id"] for s in created] + [net["provider:segmentation_id"]]
    assert len(set(vnis)) == CONCURRENT + 1 and all(1 <= v <= 1000 for v in vnis)

    rows = segment_rows(db_url, net["id"])
    assert len(rows) == CONCURRENT + 1
    assert sorted(r["segment_index"] for r in rows) == list(range(CONCURRENT + 1))
    assert len({r["alloc_id"] for r in rows}) == CONCURRENT + 1
    assert all(r["alloc_id"] == r["segmentation_id"] for r in rows)

    listed = httpx.get(f"{b.base_url}/v2.0/segments", params={"network_id": net["id"]})
    assert listed.status_code == 200
    assert {s["id"] for s in listed.json()["segments"]} == {r["id"] for r in rows}
    shown = httpx.get(f"{a.base_url}/v2.0/networks/{net['id']}").json()["network"]
    assert len(shown["segments"]) == CONCURRENT + 1


def test_16_concurrent_vlan_creates_on_8_free_ids_give_8_created_and_8_503(two_servers):
    """A pool of 8 VLAN IDs under 16 concurrent creates: 8 win distinct IDs, 8 get 503."""
    db_url, (a, b) = two_servers
    assert "tiny:10:17" in E2E_CONFIG["vlan_ranges"]
    net = create_network(a.base_url, **{"provider:network_type": "vxlan"})
    work = [
        (f"{(a, b)[i % 2].base_url}/v2.0/segments",
         {"segment": {"network_id": net["id"], "network_type": "vlan",
                      "physical_network": "tiny"}})
        for i in range(16)
    ]
    responses = fire(work)

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * 8 + [503] * 8, [(r.status_code, r.text) for r in responses]
    won = [r.json()["segment"] for r in responses if r.status_code == 201]
    assert sorted(s["segmentation_id"] for s in won) == list(TINY_VLANS)
    assert all(s["physical_network"] == "tiny" for s in won)
    for resp in responses:
        if resp.status_code == 503:
            error = resp.json()
            assert set(error) == {"NeutronError"}
            assert error["NeutronError"]["type"] == "NoNetworkAvailable"
            assert set(error["NeutronError"]) == {"type", "message", "detail"}

    rows = segment_rows(db_url, net["id"])
    assert len(rows) == 9  # the network's own vxlan segment and the 8 VLANs
    assert sorted(r["segment_index"] for r in rows) == list(range(9))
