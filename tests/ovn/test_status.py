"""Realization is visible: network status BUILD until the NB holds the change, readiness
and metrics saying OVN is behind while the NB is down, the admin status endpoint listing
what waits; all back to ACTIVE / in sync once the NB returns."""

from __future__ import annotations

from tests.api.test_health import metric_samples
from tests.conftest import build_api, wait_until
from tests.factories import error_of
from tests.ovn.conftest import OvnDatabases
from tests.ovn.test_realize import OWNER, create_vlan_network, port, switch

ADMIN = {"X-Roles": "admin"}
BACKLOG = ("segmentd_backend_backlog", (("backend", "ovn"),))
CONNECTED = ("segmentd_backend_connected", (("backend", "ovn"),))


def status_of(api, network_id) -> str:
    return api.get(f"/v2.0/networks/{network_id}").json()["network"]["status"]


def listed_status(api) -> dict[str, str]:
    return {n["id"]: n["status"] for n in api.get("/v2.0/networks").json()["networks"]}


def test_status_readiness_and_metrics_follow_the_northbound_db(db_url, tmp_path):
    later = OvnDatabases(tmp_path)  # not started: the NB is unreachable at start-up
    api = build_api(db_url, backend="ovn",
                    ovn={"nb_connection": later.remote, "owner": OWNER, "timeout_seconds": 2},
                    event_dispatch_interval_seconds=0.1, event_retry_max_seconds=1)
    with api.client:
        ready = api.get("/readyz")
        assert ready.status_code == 200  # the API serves; writes wait in the outbox
        assert ready.json() == {"status": "degraded", "database": "ok", "ovn": "in sync",
                                "ovn_connection": "unreachable", "ovn_backlog": 0}

        r = api.post("/v2.0/networks", json={"network": {
            "name": "waits", "provider:network_type": "vlan",
            "provider:physical_network": "physnet1", "provider:segmentation_id": 300}})
        assert r.status_code == 201, r.text
        net = r.json()["network"]
        assert net["status"] == "BUILD"
        seg = api.get(f"/v2.0/segments?network_id={net['id']}").json()["segments"][0]
        assert status_of(api, net["id"]) == "BUILD"
        assert listed_status(api) == {net["id"]: "BUILD"}

        ready = wait_until(lambda: (r := api.get("/readyz").json())["ovn_backlog"] == 2 and r,
                           "the two events counted as backlog")
        assert ready["status"] == "degraded" and ready["ovn"] == "behind"
        samples = metric_samples(api.get("/metrics", headers=ADMIN).text)
        assert samples[BACKLOG] == 2 and samples[CONNECTED] == 0
        status = wait_until(
            lambda: (s := api.get("/v2.0/ovn/status", headers=ADMIN).json()["ovn"])
            and s["pending"] and all(p["attempts"] for p in s["pending"]) and s,
            "both attempted")
        assert status["connected"] is False and status["backlog"] == 2
        assert [(p["type"], p["resource_id"]) for p in status["pending"]] == [
            ("network.created", net["id"]), ("segment.created", seg["id"])]
        assert all(p["attempts"] >= 1 and p["last_error"] for p in status["pending"])

        later.start()
        try:
            wait_until(lambda: switch(later, net["id"]) and port(later, seg["id"]),
                       "the switch and port once the NB is up")
            wait_until(lambda: status_of(api, net["id"]) == "ACTIVE", "status ACTIVE")
            assert listed_status(api) == {net["id"]: "ACTIVE"}
            assert api.get("/readyz").json() == {
                "status": "ready", "database": "ok", "ovn": "in sync",
                "ovn_connection": "connected", "ovn_backlog": 0}
            samples = metric_samples(api.get("/metrics", headers=ADMIN).text)
            assert samples[BACKLOG] == 0 and samples[CONNECTED] == 1
            assert api.get("/v2.0/ovn/status", headers=ADMIN).json()["ovn"]["pending"] == []

            # A rename is BUILD in its answer, ACTIVE once applied.
            r = api.put(f"/v2.0/networks/{net['id']}", json={"network": {"name": "renamed"}})
            assert r.status_code == 200 and r.json()["network"]["status"] == "BUILD"
            wait_until(lambda: status_of(api, net["id"]) == "ACTIVE", "the rename applied")
            assert switch(later, net["id"])["external_ids"]["neutron:network_name"] == "renamed"
        finally:
            later.stop()


def test_status_endpoint_needs_admin(db_url, ovn_dbs):
    api = build_api(db_url, backend="ovn",
                    ovn={"nb_connection": ovn_dbs.remote, "owner": OWNER, "timeout_seconds": 5})
    with api.client:
        member = {"X-Roles": "member", "X-Project-Id": "p1"}
        refused = api.get("/v2.0/ovn/status", headers=member)
        assert refused.status_code == 403
        assert error_of(refused) == {"type": "PolicyNotAuthorized", "detail": "",
                                     "message": "rule:get_ovn_status is disallowed by policy"}
        net, _ = create_vlan_network(api, vlan=301)
        wait_until(lambda: status_of(api, net["id"]) == "ACTIVE", "realized")
        # A member sees the status of its own network the same way.
        assert api.get("/v2.0/networks", headers=member).status_code == 200
