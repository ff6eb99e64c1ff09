"""A backend is a plug-in: the in-memory one in tests/backends/memory.py is registered by
name and realizes networks through the real dispatcher, limits what the API accepts, and
is repaired by the real drift worker, with no OVN anywhere."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from segmentd import backends
from segmentd.backends.none import NoBackend
from tests.conftest import build_api, make_settings, wait_until
from tests.backends.memory import holder
from tests.factories import error_of, make_vlan_network

ADMIN = {"X-Roles": "admin"}


@pytest.fixture
def memory(db_url):
    created = []
    backends.register("memory", holder(created))
    try:
        api = build_api(db_url, backend="memory", event_dispatch_interval_seconds=0.1,
                        event_retry_max_seconds=1)
        with api.client:
            (backend,) = created
            assert backend.started
            yield api, backend
        assert backend.stopped  # the app's shutdown stopped it
    finally:
        backends.unregister("memory")


def status_of(api, network_id: str) -> str:
    return api.get(f"/v2.0/networks/{network_id}").json()["network"]["status"]


def test_a_registered_backend_realizes_through_the_dispatcher(memory):
    api, backend = memory
    net = make_vlan_network(api, name="first", vlan=101)
    assert net["status"] == "BUILD"  # the answer of a write: not yet applied
    wait_until(lambda: backend.networks.get(net["id"]) == "first", "the network realized")
    wait_until(lambda: status_of(api, net["id"]) == "ACTIVE", "status ACTIVE")
    assert api.get("/readyz").json() == {"status": "ready", "database": "ok",
                                         "memory": "in sync", "memory_connection": "connected",
                                         "memory_backlog": 0}

    r = api.put(f"/v2.0/networks/{net['id']}", json={"network": {"name": "renamed"}})
    assert r.status_code == 200
    wait_until(lambda: backend.networks.get(net["id"]) == "renamed", "the rename realized")
    assert api.delete(f"/v2.0/networks/{net['id']}").status_code == 204
    wait_until(lambda: net["id"] not in backend.networks, "the delete realized")
    assert [t for t, i in backend.applied if i == net["id"]] == [
        "network.created", "network.updated", "network.deleted"]


def test_its_limits_apply_at_api_time(memory):
    api, backend = memory
    geneve = api.post("/v2.0/networks", json={"network": {
        "name": "g", "provider:network_type": "geneve"}})
    assert geneve.status_code == 400
    assert error_of(geneve)["message"] == ("Invalid input for operation: Network type geneve "
                                           "is not supported by the memory backend.")
    high = api.post("/v2.0/networks", json={"network": {
        "name": "v", "provider:network_type": "vxlan", "provider:segmentation_id": 6000}})
    assert high.status_code == 400
    assert error_of(high)["message"] == ("Invalid input for operation: Segmentation ID should "
                                         "be lower or equal to 5000.")
    assert api.get("/v2.0/networks").json()["networks"] == []


def test_a_disconnected_backend_holds_writes_until_it_returns(memory):
    api, backend = memory
    backend.connected = False
    net = make_vlan_network(api, name="waits", vlan=102)
    status = wait_until(
        lambda: (s := api.get("/v2.0/ovn/status", headers=ADMIN).json()["ovn"])
        and s["pending"] and all(p["attempts"] for p in s["pending"]) and s,
        "the delivery attempted")
    assert status["target"] == "memory" and status["connected"] is False
    assert [(p["type"], p["resource_id"]) for p in status["pending"]] == [
        ("network.created", net["id"])]
    ready = api.get("/readyz").json()
    assert ready["status"] == "degraded" and ready["memory_connection"] == "unreachable"
    assert ready["memory_backlog"] == 1
    assert status_of(api, net["id"]) == "BUILD"

    backend.connected = True
    wait_until(lambda: status_of(api, net["id"]) == "ACTIVE", "status ACTIVE once back")
    assert backend.networks == {net["id"]: "waits"}


def test_the_drift_worker_repairs_it(memory):
    api, backend = memory
    kept, changed, lost = (make_vlan_network(api, name=n, vlan=v) for n, v in
                           (("kept", 103), ("changed", 104), ("lost", 105)))
    wait_until(lambda: len(backend.networks) == 3, "three networks realized")
    backend.networks[changed["id"]] = "tampered"
    del backend.networks[lost["id"]]
    backend.networks["not-segmentds"] = "extra"
    want = {kept["id"]: "kept", changed["id"]: "changed", lost["id"]: "lost"}
    wait_until(lambda: backend.networks == want, "the drift worker's repair")
    report = wait_until(lambda: (r := api.get("/v2.0/ovn/drift", headers=ADMIN)).status_code
                        == 200 and r.json()["drift"]["in_sync"] and r.json()["drift"],
                        "a report in sync")
    assert report["mode"] == "repair" and report["networks_checked"] == 3


def test_unknown_backends_are_refused_by_name():
    with pytest.raises(ValidationError) as err:
        make_settings("sqlite+aiosqlite://", backend="nope")
    assert "unknown backend 'nope': one of none, ovn" in str(err.value)


def test_backend_none_realizes_nothing(api):
    """The default: no target, no realization status, nothing to compare."""
    backend = backends.create_backend(make_settings("sqlite+aiosqlite://"))
    assert isinstance(backend, NoBackend)
    assert backend.target() is None and backend.chassis() is None and not backend.realizes
    assert api.get("/readyz").json() == {"status": "ready", "database": "ok"}
    resp = api.get("/v2.0/ovn/status", headers=ADMIN)
    assert resp.status_code == 404
    assert error_of(resp) == {
        "type": "OvnBackendNotConfigured", "detail": "",
        "message": 'This server does not realize networks in OVN (backend is not "ovn").'}
