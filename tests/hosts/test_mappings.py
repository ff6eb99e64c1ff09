"""Which hosts reach which segments: the rules, their events, and the mapping queries."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.factories import OVS, SERVICE, bridges, error_of, make_network, send_report, walk
from tests.hosts import (
    LINUXBRIDGE,
    MEMBER,
    READER,
    SRIOV,
    add_segment,
    base_network,
    changes,
    host_entry,
    hosts_of,
    reach_keys,
    segments_of,
    table_rows,
)


@dataclass
class World:
    """Segments of every kind on one network (whose own segment no host reaches)."""

    net: dict
    flat1: str
    vlan1a: str
    vlan1b: str
    flat2: str
    vlan2: str
    flat_rack3: str
    vxlan_a: str
    vxlan_b: str
    geneve: str
    nobody: str

    def on(self, *names: str) -> set[str]:
        return {getattr(self, n) for n in names}

    @property
    def physnet1(self) -> set[str]:
        return self.on("flat1", "vlan1a", "vlan1b")

    @property
    def physnet2(self) -> set[str]:
        return self.on("flat2", "vlan2")

    @property
    def vxlan(self) -> set[str]:
        return self.on("vxlan_a", "vxlan_b")

    @property
    def everything(self) -> set[str]:
        return self.physnet1 | self.physnet2 | self.vxlan | self.on("flat_rack3", "geneve", "nobody")


@pytest.fixture
def world(api) -> World:
    net = base_network(api)
    nid = net["id"]
    nobody = api.get(f"/v2.0/segments?network_id={nid}").json()["segments"][0]["id"]
    w = World(
        net=net,
        flat1=add_segment(api, nid, "flat", "physnet1"),
        vlan1a=add_segment(api, nid, "vlan", "physnet1"),
        vlan1b=add_segment(api, nid, "vlan", "physnet1"),
        flat2=add_segment(api, nid, "flat", "physnet2"),
        vlan2=add_segment(api, nid, "vlan", "physnet2"),
        flat_rack3=add_segment(api, nid, "flat", "rack3"),
        vxlan_a=add_segment(api, nid, "vxlan"),
        vxlan_b=add_segment(api, nid, "vxlan"),
        geneve=add_segment(api, nid, "geneve"),
        nobody=nobody,
    )
    api.clear_events()
    return w


def assert_reach(api, world: World, host: str, expected: set[str]) -> None:
    """The three ways of asking agree with each other and with `expected`."""
    assert segments_of(api, host) == expected
    items, _ = walk(api, f"/v2.0/hosts/{host}/segments?limit=50", "segments")
    assert {s["id"] for s in items} == expected
    for seg in world.everything:
        assert (host in hosts_of(api, seg)) == (seg in expected), seg
    assert host_entry(api, host)["segment_count"] == len(expected)


class TestReachRules:
    def test_each_mapping_kind_gives_its_physnet_and_a_physnet_its_flat_and_vlan_segments(
            self, api, world):
        kinds = {"bridge_mappings": {"physnet1": "br-1"}, "interface_mappings": {"physnet1": "eth1"},
                 "device_mappings": {"physnet1": ["eth1", "eth2"]}}
        for kind, value in kinds.items():
            send_report(api, kind.replace("_", "-"), **{kind: value})
        send_report(api, "rack-host", bridge_mappings=bridges("physnet2", "rack3"))
        for kind in kinds:
            host = kind.replace("_", "-")
            assert_reach(api, world, host, world.physnet1)
            entry = host_entry(api, host)
            assert (entry["physnets"], entry["tunnel_types"]) == (["physnet1"], [])
        assert_reach(api, world, "rack-host", world.physnet2 | world.on("flat_rack3"))

    def test_a_tunnel_type_reaches_every_segment_of_that_type_and_gre_nothing(self, api, world):
        expected = {"vxlan": world.vxlan, "geneve": world.on("geneve"), "gre": set()}
        for tunnel in expected:
            send_report(api, f"{tunnel}-host", tunnel_types=[tunnel])
        for tunnel, segments in expected.items():
            assert_reach(api, world, f"{tunnel}-host", segments)
            # gre is accepted and reaches nothing, so it is not listed as reached either
            listed = host_entry(api, f"{tunnel}-host")["tunnel_types"]
            assert listed == ([] if tunnel == "gre" else [tunnel])
        seg = add_segment(api, world.net["id"], "geneve")
        assert hosts_of(api, seg) == {"geneve-host"}

    def test_a_host_reaches_the_union_of_its_agents(self, api, world):
        send_report(api, "compute-1", agent_type=OVS, bridge_mappings=bridges("physnet1"),
                    tunnel_types=["vxlan"])
        send_report(api, "compute-1", agent_type=SRIOV, device_mappings={"physnet2": ["eth3"]})
        send_report(api, "compute-1", agent_type=LINUXBRIDGE, interface_mappings={"rack3": "eth4"})
        expected = world.physnet1 | world.physnet2 | world.vxlan | world.on("flat_rack3")
        assert_reach(api, world, "compute-1", expected)
        entry = host_entry(api, "compute-1")
        assert entry["physnets"] == ["physnet1", "physnet2", "rack3"]
        assert entry["tunnel_types"] == ["vxlan"] and entry["alive"] is True
        assert api.delete(f"/v2.0/segments/{world.vlan1b}").status_code == 204
        assert segments_of(api, "compute-1") == expected - {world.vlan1b}
        assert host_entry(api, "compute-1")["segment_count"] == len(expected) - 1


class TestReachEvents:
    def test_each_report_that_changes_reach_is_one_event_naming_exact_segments(self, api, world):
        send_report(api, "compute-1", bridge_mappings=bridges("physnet1"))
        (first,) = changes(api)
        assert first == {"host": "compute-1", "reason": "report", "physnets": ["physnet1"],
                         "tunnel_types": [], "gained": sorted(world.physnet1), "lost": []}
        api.clear_events()

        send_report(api, "compute-1", bridge_mappings=bridges("physnet2"), tunnel_types=["vxlan"])
        events = api.events
        assert [e.type for e in events] == ["agent.updated", "host.segments_changed"]
        assert events[1].resource == {
            "host": "compute-1", "reason": "report", "physnets": ["physnet2"],
            "tunnel_types": ["vxlan"], "gained": sorted(world.physnet2 | world.vxlan),
            "lost": sorted(world.physnet1),
        }
        assert events[1].project_id is None

    def test_a_physnet_another_agent_still_reports_is_not_lost(self, api, world):
        send_report(api, "compute-1", agent_type=OVS,
                    bridge_mappings=bridges("physnet1", "physnet2"))
        send_report(api, "compute-1", agent_type=SRIOV, device_mappings={"physnet2": ["eth1"]})
        api.clear_events()
        send_report(api, "compute-1", agent_type=OVS, bridge_mappings=bridges("physnet1"))
        assert [e.type for e in api.events] == ["agent.updated"]  # the host's reach is unchanged
        assert_reach(api, world, "compute-1", world.physnet1 | world.physnet2)

    def test_a_new_segment_or_network_writes_nothing_per_host(self, api, world):
        hosts = [f"compute-{i}" for i in range(5)]
        for host in hosts:
            send_report(api, host, bridge_mappings=bridges("physnet1"), tunnel_types=["vxlan"])
        before = table_rows(api)
        api.clear_events()

        seg = add_segment(api, world.net["id"], "vlan", "physnet1")
        net = make_network(api, **{"provider:network_type": "vxlan"})
        tunnel = api.get(f"/v2.0/segments?network_id={net['id']}").json()["segments"][0]["id"]

        after = table_rows(api)
        assert after["host_reach"] == before["host_reach"]
        assert after["hosts"] == before["hosts"] and after["agents"] == before["agents"]
        assert [e.type for e in api.events] == [
            "segment.created", "network.created", "segment.created"]
        assert hosts_of(api, seg) == set(hosts) and hosts_of(api, tunnel) == set(hosts)
        assert seg in segments_of(api, "compute-3") and tunnel in segments_of(api, "compute-3")


class TestAgentDelete:
    def test_deleting_one_of_two_agents_loses_only_what_it_alone_reported(self, api, world):
        ovs = send_report(api, "compute-1", agent_type=OVS,
                          bridge_mappings=bridges("physnet1", "physnet2"), tunnel_types=["vxlan"])
        sriov = send_report(api, "compute-1", agent_type=SRIOV,
                            device_mappings={"physnet2": ["eth1"]}, tunnel_types=["geneve"])
        api.clear_events()

        assert api.delete(f"/v2.0/agents/{ovs['id']}").status_code == 204

        events = api.events
        assert [e.type for e in events] == ["host.segments_changed", "agent.deleted"]
        assert events[0].resource == {
            "host": "compute-1", "reason": "agent_deleted", "physnets": ["physnet2"],
            "tunnel_types": ["geneve"], "gained": [], "lost": sorted(world.physnet1 | world.vxlan),
        }
        assert events[1].resource_id == ovs["id"] and events[1].resource["host"] == "compute-1"
        assert_reach(api, world, "compute-1", world.physnet2 | world.on("geneve"))
        assert reach_keys(api, "compute-1") == {
            ("flat", "physnet2"), ("vlan", "physnet2"), ("geneve", "")}
        agents = api.get("/v2.0/agents").json()["agents"]
        assert [a["id"] for a in agents] == [sriov["id"]]

    def test_deleting_the_last_agent_forgets_the_host_until_it_reports_again(self, api, world):
        agent = send_report(api, "compute-1", bridge_mappings=bridges("physnet1"))
        send_report(api, "compute-2", bridge_mappings=bridges("physnet1"))
        api.clear_events()
        assert api.delete(f"/v2.0/agents/{agent['id']}").status_code == 204
        (change,) = changes(api)
        assert (change["reason"], change["lost"], change["physnets"]) == (
            "agent_deleted", sorted(world.physnet1), [])
        gone = api.get("/v2.0/hosts/compute-1/segments")
        assert gone.status_code == 404 and error_of(gone)["type"] == "HostNotFound"
        assert [h["host"] for h in api.get("/v2.0/hosts").json()["hosts"]] == ["compute-2"]
        assert hosts_of(api, world.flat1) == {"compute-2"}
        assert reach_keys(api, "compute-1") == set()

        api.clear_events()
        again = send_report(api, "compute-1", bridge_mappings=bridges("physnet1"))
        assert again["id"] != agent["id"]
        assert changes(api)[0]["gained"] == sorted(world.physnet1)
        assert hosts_of(api, world.flat1) == {"compute-1", "compute-2"}


class TestQueries:
    def test_host_filter_means_any_of_the_hosts_and_pages_with_other_filters(self, api, world):
        send_report(api, "compute-1", bridge_mappings=bridges("physnet1", "physnet2"))
        send_report(api, "compute-2", tunnel_types=["vxlan"])
        both = api.get("/v2.0/segments?host=compute-1&host=compute-2").json()["segments"]
        assert {s["id"] for s in both} == world.physnet1 | world.physnet2 | world.vxlan
        vlans = api.get("/v2.0/segments?host=compute-1&network_type=vlan").json()["segments"]
        assert {s["id"] for s in vlans} == world.on("vlan1a", "vlan1b", "vlan2")
        assert api.get("/v2.0/segments?host=unknown-host").json() == {"segments": []}
        shown = api.get("/v2.0/segments?host=compute-1&fields=id&fields=network_type").json()
        assert shown["segments"] and all(set(s) == {"id", "network_type"}
                                         for s in shown["segments"])
        items, pages = walk(api, "/v2.0/segments?host=compute-1&host=compute-2&limit=2",
                            "segments")
        assert [s["id"] for s in items] == sorted(world.physnet1 | world.physnet2 | world.vxlan)
        assert pages == 4

    def test_names_and_ids_that_cannot_exist_are_400_or_404(self, api, world):
        send_report(api, "compute-1", bridge_mappings=bridges("physnet1"))
        before = table_rows(api)
        for query in ("host=bad%20host", "host=%27%20OR%20%271%27=%271", "host=",
                      "host=" + "h" * 256, "host=compute-1%00",
                      "&".join(f"host=h{i}" for i in range(65))):
            resp = api.get(f"/v2.0/segments?{query}")
            assert resp.status_code == 400, (query, resp.text)
            assert error_of(resp)["type"] == "HTTPBadRequest"
        for host in ("unknown-host", "bad%20host", "x" * 300, "%27%20OR%201=1"):
            resp = api.get(f"/v2.0/hosts/{host}/segments")
            assert resp.status_code == 404, (host, resp.text)
            assert error_of(resp)["type"] == "HostNotFound"
        for seg in ("00000000-0000-0000-0000-000000000000", "not-a-uuid"):
            resp = api.get(f"/v2.0/segments/{seg}/hosts")
            assert resp.status_code == 404 and error_of(resp)["type"] == "SegmentNotFound"
        assert table_rows(api) == before

    def test_segment_hosts_show_alive_and_reported_at(self, api, world):
        agent = send_report(api, "compute-1", bridge_mappings=bridges("physnet1"))
        body = api.get(f"/v2.0/segments/{world.flat1}/hosts").json()
        assert body == {"hosts": [{"host": "compute-1", "alive": True,
                                   "reported_at": agent["heartbeat_timestamp"]}]}
        assert api.get(f"/v2.0/segments/{world.nobody}/hosts").json() == {"hosts": []}
        (entry,) = api.get("/v2.0/hosts").json()["hosts"]
        assert entry == {"host": "compute-1", "physnets": ["physnet1"], "tunnel_types": [],
                         "alive": True, "chassis": None, "segment_count": 3,
                         "reported_at": agent["heartbeat_timestamp"]}


class TestPaging:
    HOSTS = tuple(f"compute-{c}" for c in "gcaefdb")

    @pytest.fixture
    def many(self, api, world):
        for host in self.HOSTS:
            send_report(api, host, bridge_mappings=bridges("physnet1"))
        return world

    def test_hosts_and_segment_hosts_page_by_name(self, api, many):
        items, pages = walk(api, "/v2.0/hosts?limit=3", "hosts")
        assert [h["host"] for h in items] == sorted(self.HOSTS)
        assert pages == 3
        assert all(h["segment_count"] == 3 and h["physnets"] == ["physnet1"] for h in items)
        first = api.get("/v2.0/hosts?limit=3").json()
        link, back_link = first["hosts_links"]
        assert link["rel"] == "next" and link["href"].endswith("marker=compute-c")
        assert back_link["rel"] == "previous"

        second = api.get("/v2.0/hosts?limit=3&marker=compute-c").json()
        assert [h["host"] for h in second["hosts"]] == ["compute-d", "compute-e", "compute-f"]
        prev = next(link["href"] for link in second["hosts_links"] if link["rel"] == "previous")
        back = api.get(prev.replace("http://testserver", "")).json()
        assert [h["host"] for h in back["hosts"]] == ["compute-a", "compute-b", "compute-c"]
        items, _ = walk(api, "/v2.0/hosts?limit=2&sort_key=host&sort_dir=desc", "hosts")
        assert [h["host"] for h in items] == sorted(self.HOSTS, reverse=True)

        items, pages = walk(api, f"/v2.0/segments/{many.vlan1a}/hosts?limit=2", "hosts")
        assert [h["host"] for h in items] == sorted(self.HOSTS)
        assert pages == 4
        first = api.get(f"/v2.0/segments/{many.vlan1a}/hosts?limit=2").json()
        assert first["hosts_links"][0]["href"].endswith("marker=compute-b")
        third = api.get(f"/v2.0/segments/{many.vlan1a}/hosts?limit=2&marker=compute-d").json()
        assert [h["host"] for h in third["hosts"]] == ["compute-e", "compute-f"]

    def test_fields_filters_and_metacharacters(self, api, many):
        body = api.get("/v2.0/hosts?fields=host&fields=segment_count&limit=2").json()
        assert body["hosts"] == [{"host": "compute-a", "segment_count": 3},
                                 {"host": "compute-b", "segment_count": 3}]
        assert "marker=compute-b" in body["hosts_links"][0]["href"]
        body = api.get(f"/v2.0/segments/{many.flat1}/hosts?fields=host&limit=1").json()
        assert body["hosts"] == [{"host": "compute-a"}]
        picked = api.get("/v2.0/hosts?host=compute-c&host=compute-e&fields=host").json()
        assert picked == {"hosts": [{"host": "compute-c"}, {"host": "compute-e"}]}
        for query, message in (
                ("fields=password", "['password'] is invalid attribute for fields"),
                ("physnets=physnet1", "['physnets'] is invalid attribute for filtering"),
                ("alive=true", "['alive'] is invalid attribute for filtering"),
                ("sort_key=segment_count&sort_dir=asc",
                 "['segment_count'] is invalid attribute for sort_keys")):
            resp = api.get(f"/v2.0/hosts?{query}")
            assert resp.status_code == 400, query
            assert error_of(resp) == {"type": "HTTPBadRequest", "detail": "", "message": message}

        before = table_rows(api)
        for value in ("' OR 1=1 --", "compute-a'; DROP TABLE hosts; --", "%", "*", "x" * 300,
                      "compute-a\x00"):
            resp = api.get("/v2.0/hosts", params={"marker": value})
            # a marker that names no host is ignored, as in Neutron
            assert resp.status_code == 200, (value, resp.text)
            assert [h["host"] for h in resp.json()["hosts"]] == sorted(self.HOSTS)
            resp = api.get(f"/v2.0/segments/{many.flat1}/hosts", params={"marker": value})
            assert resp.status_code == 200, (value, resp.text)
            assert [h["host"] for h in resp.json()["hosts"]] == sorted(self.HOSTS)
            resp = api.get("/v2.0/hosts", params={"host": value})
            if len(value) > 255 or "\x00" in value:  # no host name can be that
                assert resp.status_code == 400, (value, resp.text)
                assert error_of(resp) == {"type": "HTTPBadRequest", "detail": "",
                                          "message": "Invalid filter value for host"}
            else:  # a filter that matches nothing
                assert (resp.status_code, resp.json()) == (200, {"hosts": []}), value
        assert table_rows(api) == before


class TestMappingAuthorization:
    def test_mapping_queries_are_admin_only(self, api, world):
        send_report(api, "compute-1", bridge_mappings=bridges("physnet1"))
        for headers in (MEMBER, READER, SERVICE):
            for path in ("/v2.0/hosts", "/v2.0/hosts/compute-1/segments",
                         "/v2.0/hosts/no-such-host/segments", f"/v2.0/segments/{world.flat1}/hosts",
                         "/v2.0/segments/00000000-0000-0000-0000-000000000000/hosts"):
                resp = api.get(path, headers=headers)
                # 403 before any lookup, so a refusal tells nothing about what exists
                assert resp.status_code == 403, (headers, path, resp.text)
                assert error_of(resp)["type"] == "PolicyNotAuthorized"
            # segments are admin-only to read: a non-admin lists none, as in Neutron
            listed = api.get("/v2.0/segments?host=compute-1", headers=headers)
            assert listed.json() == {"segments": []}


class TestNamesAreCaseSensitive:
    """Host and physnet names are compared byte for byte on every database (MariaDB's
    default collation would fold case)."""

    def test_physnets_and_hosts_differing_in_case_are_different(self, api):
        net = base_network(api)
        lower = add_segment(api, net["id"], "flat", "physnetx")
        upper = add_segment(api, net["id"], "flat", "PHYSNETX")
        send_report(api, "h1", bridge_mappings=bridges("physnetx", "PHYSNETX"))
        send_report(api, "H1", bridge_mappings=bridges("PHYSNETX"))
        assert segments_of(api, "h1") == {lower, upper}
        assert segments_of(api, "H1") == {upper}
        assert hosts_of(api, lower) == {"h1"}
        assert hosts_of(api, upper) == {"h1", "H1"}
        listed = api.get("/v2.0/hosts").json()["hosts"]
        assert sorted(h["host"] for h in listed) == ["H1", "h1"]
