"""Two `segmentd serve` processes on one PostgreSQL database giving ports addresses of one
subnet at the same time: every address once, and a clean 409 for the ports that find none."""

from __future__ import annotations

import asyncio
import ipaddress

import asyncpg
import httpx
import pytest

from tests.e2e import test_concurrency
from tests.e2e.test_concurrency import create_network, fire

two_servers = test_concurrency.two_servers  # the fixture: two processes on one database

pytestmark = [pytest.mark.postgresql, pytest.mark.slow]

CIDR = ipaddress.ip_network("10.40.0.0/26")
GATEWAY = CIDR.network_address + 1  # the default gateway
POOL = [str(CIDR.network_address + k) for k in range(2, 63)]  # .2 to .62: the default pool
CONCURRENT = 64


def allocation_rows(db_url: str, network_id: str):
    """(ports of the network, address rows of the network), read from the tables."""

    async def fetch():
        conn = await asyncpg.connect(db_url)
        try:
            ports = await conn.fetch("SELECT id FROM ports WHERE network_id = $1", network_id)
            addresses = await conn.fetch(
                "SELECT subnet_id, ip_address, port_id FROM ip_allocations WHERE network_id = $1",
                network_id,
            )
            return ports, addresses
        finally:
            await conn.close()

    return asyncio.run(fetch())


def test_64_concurrent_port_creates_on_61_addresses_across_two_servers(two_servers):
    """61 ports get the 61 pool addresses, each once; the 3 others get 409
    IpAddressGenerationFailure; no 500 and nothing half-written, whichever process served."""
    db_url, (a, b) = two_servers
    assert a.proc.pid != b.proc.pid and a.proc.poll() is None and b.proc.poll() is None
    net = create_network(a.base_url, **{"provider:network_type": "vxlan"})
    resp = httpx.post(f"{a.base_url}/v2.0/subnets", json={"subnet": {
        "network_id": net["id"], "cidr": str(CIDR), "ip_version": 4}})
    assert resp.status_code == 201, resp.text
    subnet = resp.json()["subnet"]
    assert subnet["gateway_ip"] == str(GATEWAY)
    assert subnet["allocation_pools"] == [{"start": POOL[0], "end": POOL[-1]}]
    assert len(POOL) == 61

    servers = [(a, b)[i % 2] for i in range(CONCURRENT)]
    responses = fire([(f"{s.base_url}/v2.0/ports",
                       {"port": {"network_id": net["id"], "name": f"p{i}"}})
                      for i, s in enumerate(servers)])

    statuses = [r.status_code for r in responses]
    assert sorted(statuses) == [201] * 61 + [409] * 3, [
        (r.status_code, r.text) for r in responses if r.status_code != 201]
    for resp in responses:
        if resp.status_code == 409:
            body = resp.json()
            assert set(body) == {"NeutronError"}, body
            assert set(body["NeutronError"]) == {"type", "message", "detail"}, body
            assert body["NeutronError"]["type"] == "IpAddressGenerationFailure", body
    created = {r.json()["port"]["id"]: r.json()["port"] for r in responses if r.status_code == 201}
    assert len(created) == 61
    addresses = []
    for port in created.values():
        assert [f["subnet_id"] for f in port["fixed_ips"]] == [subnet["id"]], port
        addresses.append(port["fixed_ips"][0]["ip_address"])
    assert len(set(addresses)) == len(addresses), sorted(addresses)  # no address twice
    assert str(GATEWAY) not in addresses
    assert sorted(addresses, key=ipaddress.ip_address) == POOL  # every one inside the pool
    # Both processes gave addresses: the race really ran between two processes.
    for server in (a, b):
        won = [r for r, s in zip(responses, servers, strict=True)
               if s is server and r.status_code == 201]
        assert len(won) >= 29, (server.base_url, len(won))  # 32 sent, at most 3 refused

    # The tables hold what the answers said: no port of a refused create, one row each.
    ports, rows = allocation_rows(db_url, net["id"])
    assert {p["id"] for p in ports} == set(created)
    assert sorted((r["port_id"], r["ip_address"]) for r in rows) == sorted(
        (pid, p["fixed_ips"][0]["ip_address"]) for pid, p in created.items())
    assert {r["subnet_id"] for r in rows} == {subnet["id"]}

    for server in (a, b):
        listed = httpx.get(f"{server.base_url}/v2.0/ports", params={"network_id": net["id"]})
        assert listed.status_code == 200, listed.text
        assert {p["id"]: p["fixed_ips"] for p in listed.json()["ports"]} == {
            pid: p["fixed_ips"] for pid, p in created.items()}
        avail = httpx.get(f"{server.base_url}/v2.0/network-ip-availabilities/{net['id']}")
        assert avail.status_code == 200, avail.text
        view = avail.json()["network_ip_availability"]
        assert (view["used_ips"], view["total_ips"]) == (61, 61), view
        assert [(e["subnet_id"], e["used_ips"], e["total_ips"])
                for e in view["subnet_ip_availability"]] == [(subnet["id"], 61, 61)]

    # Full, and stays full to either process; a freed address is taken again.
    for server in (a, b):
        again = httpx.post(f"{server.base_url}/v2.0/ports", json={"port": {"network_id": net["id"]}})
        assert again.status_code == 409, again.text
        assert again.json()["NeutronError"]["type"] == "IpAddressGenerationFailure"
    gone = next(iter(created.values()))
    assert httpx.delete(f"{b.base_url}/v2.0/ports/{gone['id']}").status_code == 204
    again = httpx.post(f"{a.base_url}/v2.0/ports", json={"port": {"network_id": net["id"]}})
    assert again.status_code == 201, again.text
    assert again.json()["port"]["fixed_ips"] == gone["fixed_ips"]
