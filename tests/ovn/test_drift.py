"""Drift between the database and the Northbound DB: reported by `segmentd ovn sync`,
repaired in repair mode, never touching rows without segmentd's owner marker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

from tests.conftest import build_api, wait_until
from tests.ovn.conftest import OvnDatabases
from tests.ovn.test_realize import OWNER, create_vlan_network, pending_ovn_deliveries, port, switch


def sync(db_url: str, ovn_dbs: OvnDatabases, mode: str) -> tuple[int, dict]:
    env = {**os.environ, "SEGMENTD_BACKEND": "ovn",
           "SEGMENTD_OVN__NB_CONNECTION": ovn_dbs.remote, "SEGMENTD_OVN__OWNER": OWNER}
    done = subprocess.run(
        [sys.executable, "-m", "segmentd.cli", "ovn", "sync", "--mode", mode, "--json",
         "--database-url", db_url],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert done.returncode in (0, 2), done.stderr
    return done.returncode, json.loads(done.stdout)


def problems(report: dict) -> set[tuple[str, str, str]]:
    return {(i["kind"], i["problem"], i["name"]) for i in report["items"]}


@pytest.fixture
def realized(db_url, ovn_dbs):
    """An app realizing into a fresh NB, two VLAN networks realized and settled."""
    ovn_dbs.stop()
    ovn_dbs.start(fresh=True)
    api = build_api(db_url, backend="ovn",
                    ovn={"nb_connection": ovn_dbs.remote, "owner": OWNER, "timeout_seconds": 5},
                    event_dispatch_interval_seconds=0.2)
    with api.client:
        a = create_vlan_network(api, name="a", vlan=301)
        b = create_vlan_network(api, name="b", vlan=302)
        for net, seg in (a, b):
            wait_until(lambda: port(ovn_dbs, seg["id"]), "the localnet port")
        wait_until(lambda: not pending_ovn_deliveries(api), "every delivery settled")
        yield api, a, b


def test_hand_made_drift_is_reported_then_repaired_and_foreign_rows_are_left_alone(
        realized, db_url, ovn_dbs):
    api, (net_a, seg_a), (net_b, seg_b) = realized
    stray, foreign = f"neutron-{uuid.uuid4()}", f"neutron-{uuid.uuid4()}"
    ovn_dbs.nbctl("lsp-del", f"provnet-{seg_a['id']}")
    ovn_dbs.nbctl("set", "Logical_Switch_Port", f"provnet-{seg_b['id']}", "tag_request=999")
    ovn_dbs.nbctl("ls-add", stray, "--", "set", "Logical_Switch", stray,
                  f"external_ids:segmentd\\:owner={OWNER}")
    ovn_dbs.nbctl("ls-add", foreign, "--", "set", "Logical_Switch", foreign,
                  "external_ids:neutron\\:network_name=theirs")

    code, report = sync(db_url, ovn_dbs, "log")
    assert code == 2
    assert problems(report) == {
        ("localnet_port", "missing", f"provnet-{seg_a['id']}"),
        ("localnet_port", "different", f"provnet-{seg_b['id']}"),
        ("switch", "extra", stray),
    }
    different = next(i for i in report["items"] if i["problem"] == "different")
    assert different["details"] == {"tag_request": {"database": 302, "northbound": 999}}
    assert report["repaired"] == 0
    # Log mode changed nothing.
    assert port(ovn_dbs, seg_a["id"]) is None and port(ovn_dbs, seg_b["id"])["tag_request"] == 999
    assert ovn_dbs.find("Logical_Switch", f"name={stray}")

    code, report = sync(db_url, ovn_dbs, "repair")
    assert (code, report["repaired"]) == (0, 3)
    assert port(ovn_dbs, seg_a["id"])["tag_request"] == 301
    assert port(ovn_dbs, seg_b["id"])["tag_request"] == 302
    assert not ovn_dbs.find("Logical_Switch", f"name={stray}")
    assert ovn_dbs.find("Logical_Switch", f"name={foreign}")  # not ours: untouched

    code, report = sync(db_url, ovn_dbs, "log")
    assert (code, report["in_sync"], report["items"]) == (0, True, [])
    # The last report is what admins read over the API.
    shown = api.client.get("/v2.0/ovn/drift")
    assert shown.status_code == 200
    assert shown.json()["drift"]["in_sync"] is True
    assert shown.json()["drift"]["networks_checked"] == 2


def test_a_wiped_northbound_db_is_rebuilt_by_repair(realized, db_url, ovn_dbs):
    api, (net_a, seg_a), (net_b, seg_b) = realized
    ovn_dbs.stop()
    ovn_dbs.start(fresh=True)
    code, report = sync(db_url, ovn_dbs, "log")
    assert code == 2
    assert {p for _, p, _ in problems(report)} == {"missing"}
    assert len(report["items"]) == 4  # two switches, two ports
    code, report = sync(db_url, ovn_dbs, "repair")
    assert (code, report["repaired"]) == (0, 4)
    for net, seg in ((net_a, seg_a), (net_b, seg_b)):
        ls = switch(ovn_dbs, net["id"])
        assert ls["external_ids"]["segmentd:owner"] == OWNER
        assert ls["external_ids"]["neutron:network_name"] == net["name"]
        assert port(ovn_dbs, seg["id"])["tag_request"] == seg["segmentation_id"]


def test_drift_report_is_admin_only_and_404_before_any_check(db_url):
    api = build_api(db_url)
    with api.client:
        member = {"X-Project-Id": "p1", "X-Roles": "member"}
        assert api.client.get("/v2.0/ovn/drift", headers=member).status_code == 403
        r = api.client.get("/v2.0/ovn/drift")
        assert r.status_code == 404
        assert r.json()["NeutronError"]["type"] == "OvnDriftReportNotFound"
