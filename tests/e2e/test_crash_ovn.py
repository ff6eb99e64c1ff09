"""kill -9 a `segmentd serve` with the OVN backend in the middle of a burst of creates;
after a restart the Northbound DB holds every committed network and segment exactly once,
and nothing that was not committed."""

from __future__ import annotations

import threading
import time
from collections import Counter

import httpx
import pytest

from tests.conftest import wait_until
from tests.e2e.server import E2E_CONFIG, database, start_server, stop_servers
from tests.e2e.test_crash_delivery import pending, query
from tests.ovn.conftest import OvnDatabases

pytestmark = [pytest.mark.postgresql, pytest.mark.slow]

CREATORS = 6


def create_until_stopped(base_url: str, first_vlan: int, stop: threading.Event,
                         acknowledged: list[str]) -> None:
    with httpx.Client(timeout=10) as client:
        vlan = first_vlan
        while not stop.is_set():
            try:
                resp = client.post(f"{base_url}/v2.0/networks", json={"network": {
                    "name": f"burst-{vlan}", "provider:network_type": "vlan",
                    "provider:physical_network": "physnet1", "provider:segmentation_id": vlan}})
            except httpx.HTTPError:
                return  # the server is gone: this one may or may not have committed
            assert resp.status_code == 201, resp.text
            acknowledged.append(resp.json()["network"]["id"])
            vlan += 1


def test_after_a_kill_9_mid_burst_the_nb_holds_every_committed_change_once(request, tmp_path):
    ovn = OvnDatabases(tmp_path / "ovn")
    (tmp_path / "ovn").mkdir()
    ovn.start()
    config = {**E2E_CONFIG, "backend": "ovn", "event_dispatch_interval_seconds": 0.1,
              "event_lease_seconds": 4, "webhook_timeout_seconds": 1.0,
              "ovn": {"nb_connection": ovn.remote, "sb_connection": ovn.remote,
                      "owner": "crash-test", "watch_chassis": False, "timeout_seconds": 2}}
    servers = []
    try:
        with database("postgresql", tmp_path) as db_url:
            first = start_server(tmp_path, db_url, name="before-kill", config=config)
            servers.append(first)
            stop = threading.Event()
            acknowledged: list[list[str]] = [[] for _ in range(CREATORS)]
            threads = [threading.Thread(target=create_until_stopped,
                                        args=(first.base_url, 100 + 400 * i, stop, acknowledged[i]))
                       for i in range(CREATORS)]
            for t in threads:
                t.start()
            time.sleep(1.5)
            first.proc.kill()  # SIGKILL, with creates in flight and events undelivered
            first.proc.wait(10)
            stop.set()
            for t in threads:
                t.join(15)
            assert pending(db_url) > 0, "the kill left nothing unrealized: it proves nothing"

            second = start_server(tmp_path, db_url, name="after-restart", config=config)
            servers.append(second)
            wait_until(lambda: pending(db_url) == 0, "events realized after the restart", timeout=30)
            networks = {r["id"] for r in query(db_url, "SELECT id FROM networks")}
            segments = {r["id"] for r in query(db_url, "SELECT id FROM segments")}
    finally:
        stop_servers(request, servers)
        switches = Counter(r["name"] for r in ovn.find("Logical_Switch"))
        ports = Counter(r["name"] for r in ovn.find("Logical_Switch_Port"))
        ovn.stop()

    acked = {net for per_thread in acknowledged for net in per_thread}
    assert len(acked) > 20 and acked <= networks
    assert switches == Counter({f"neutron-{n}": 1 for n in networks})  # each once, no other
    assert ports == Counter({f"provnet-{s}": 1 for s in segments})
