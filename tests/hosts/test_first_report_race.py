"""A port written for a host that has never reported, while that host's first report comes in.

The report's rebinding can only see committed ports, and a host that never reported has no
row for the port write to lock. So the port write holds a placeholder row for the host
until it commits: the first report, which creates the host row, waits for it, then finds
the port and binds it. Interleaved on purpose, on the databases where writers run side by
side (SQLite takes one writer at a time).
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import text

from segmentd.context import RequestContext
from segmentd.services import hosts as hosts_service
from segmentd.services import ports as ports_service
from segmentd.services.clock import HostClock
from segmentd.services.uow import transact, unit_of_work
from tests.conftest import run_on
from tests.factories import make_port, make_vlan_network, report_body, send_report

HELD_SECONDS = 0.5  # how long the port's transaction stays open once the report is sent
CLOCK = HostClock(75, 300)
BRIDGES = {"bridge_mappings": {"physnet1": "br-ex"}}  # what every host here reports


@pytest.mark.parametrize("db_kind", ["postgresql", "mariadb"], indirect=True)
def test_a_first_report_waits_for_a_port_in_flight_and_then_binds_it(api):
    net = make_vlan_network(api, name="n", vlan=120)
    admin = RequestContext.build("admin-project", {"admin"}, request_id="req-port")
    agent = RequestContext.build("agents", {"service"}, request_id="req-report")

    async def scenario(engine):
        async with unit_of_work(engine) as uow:
            created = await ports_service.create_port(
                admin, uow, CLOCK, {"network_id": net["id"], "binding:host_id": "newcomer"})
            report = asyncio.create_task(transact(
                engine, lambda u: hosts_service.apply_report(
                    agent, u, CLOCK, report_body("newcomer", **BRIDGES)["report"])))
            await asyncio.sleep(HELD_SECONDS)
            waited = not report.done()
        await report
        return created, waited

    created, waited = run_on(api.db_url, scenario)
    # When the port was written, the host reached nothing.
    assert (created["binding:vif_type"], created["status"]) == ("binding_failed", "DOWN")
    assert waited, "the first report did not wait for the port being written for its host"
    port = api.get(f"/v2.0/ports/{created['id']}").json()["port"]
    assert (port["binding:vif_type"], port["status"], port["binding:host_id"]) == (
        "ovs", "ACTIVE", "newcomer")
    updates = [e for e in api.events if e.type == "port.updated"]
    assert [(e.resource_id, e.resource["binding:vif_type"]) for e in updates] == [
        (created["id"], "ovs")]
    # The placeholder never outlived the port's transaction: the host row is the report's.
    agents = api.get("/v2.0/agents?host=newcomer").json()["agents"]
    assert [(a["host"], a["agent_type"]) for a in agents] == [("newcomer", "Open vSwitch agent")]


@pytest.mark.parametrize("db_kind", ["postgresql", "mariadb"], indirect=True)
def test_a_port_for_an_unknown_host_leaves_no_host_behind(api):
    net = make_vlan_network(api, name="n", vlan=121)
    made = make_port(api, net["id"], **{"binding:host_id": "nowhere"})
    port_id = made["id"]
    assert made["binding:vif_type"] == "binding_failed"

    async def host_names(engine):
        async with engine.connect() as conn:
            return (await conn.execute(text("SELECT name FROM hosts"))).scalars().all()

    assert run_on(api.db_url, host_names) == []
    # The host's first report afterwards binds the port: its rebinding sees it.
    send_report(api, "nowhere", **BRIDGES)
    assert run_on(api.db_url, host_names) == ["nowhere"]
    port = api.get(f"/v2.0/ports/{port_id}").json()["port"]
    assert (port["binding:vif_type"], port["status"]) == ("ovs", "ACTIVE")


@pytest.mark.parametrize("db_kind", ["postgresql", "mariadb"], indirect=True)
def test_concurrent_ports_for_unreported_hosts_neither_deadlock_nor_leave_hosts(
        api, caplog):
    """Sixteen port writes at once, eight naming one host that never reported and eight
    naming new hosts of their own: every one succeeds and no host row is left.

    On PostgreSQL none is retried. On MariaDB, three or more writers of one new host can
    deadlock (InnoDB's duplicate-key insert: the waiters hold shared locks on the first
    writer's row and each needs it exclusively once that row is deleted); the database
    aborts one and it runs again, so the client never sees it. (A locking read of a
    missing host first would have made even two writers of different new hosts deadlock
    on their gap locks, which is why MariaDB inserts first.)"""
    net = make_vlan_network(api, name="n", vlan=122)
    admin = RequestContext.build("admin-project", {"admin"}, request_id="req-ports")
    hosts = ["ghost"] * 8 + [f"ghost-{i}" for i in range(8)]
    caplog.set_level(logging.INFO, logger="segmentd.services.uow")

    async def scenario(engine):
        return await asyncio.gather(*[
            transact(engine, lambda u, h=h: ports_service.create_port(
                admin, u, CLOCK, {"network_id": net["id"], "binding:host_id": h}))
            for h in hosts])

    created = run_on(api.db_url, scenario)
    assert sorted(p["binding:host_id"] for p in created) == sorted(hosts)
    assert {p["binding:vif_type"] for p in created} == {"binding_failed"}
    retried = [r for r in caplog.records if "aborted by the database" in r.getMessage()]
    if api.db_url.startswith("postgresql"):
        assert retried == []

    async def host_names(engine):
        async with engine.connect() as conn:
            return (await conn.execute(text("SELECT name FROM hosts"))).scalars().all()

    assert run_on(api.db_url, host_names) == []
