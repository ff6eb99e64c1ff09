"""What a subnet does to things around it, as Neutron: the `shared` filter it takes from its
network, its network's revision, and the ports of an auto-address subnet being deleted."""

from __future__ import annotations

from tests.api.test_ports import (
    OTHER,
    refused,
)
from tests.api.test_subnets import make_subnet
from tests.factories import make_network


def subnet_ids(api, query, headers=None) -> list[str]:
    resp = api.get(f"/v2.0/subnets?{query}", headers=headers)
    assert resp.status_code == 200, resp.text
    return [s["id"] for s in resp.json()["subnets"]]


class TestSharedFilter:
    def test_shared_selects_subnets_by_their_network(self, api):
        private = make_network(api)
        public = make_network(api, shared=True)
        mine = make_subnet(api, private["id"], name="a")
        theirs = make_subnet(api, public["id"], cidr="10.1.0.0/24", name="b")
        assert subnet_ids(api, "shared=False") == [mine["id"]]
        assert subnet_ids(api, "shared=false") == [mine["id"]]
        assert subnet_ids(api, "shared=True") == [theirs["id"]]
        assert subnet_ids(api, "shared=True&shared=False&sort_key=name&sort_dir=asc") == [
            mine["id"], theirs["id"]]
        # What tempest's subnet sorting and paging tests send first.
        assert subnet_ids(api, "shared=False&sort_key=name&sort_dir=asc&limit=1") == [mine["id"]]
        # Another project sees the shared network's subnet only.
        assert subnet_ids(api, "shared=True", OTHER) == [theirs["id"]]
        assert subnet_ids(api, "shared=False", OTHER) == []
        # Filterable, not shown, not a sort key (neutron-lib's attribute map).
        assert "shared" not in api.get(f"/v2.0/subnets/{mine['id']}").json()["subnet"]
        for query in ("sort_key=shared&sort_dir=asc", "shared=maybe", "shared="):
            refused(api.get(f"/v2.0/subnets?{query}"), 400, "HTTPBadRequest", what=query)

    def test_the_filter_follows_the_network_being_shared(self, api):
        net = make_network(api)
        sub = make_subnet(api, net["id"])
        assert subnet_ids(api, "shared=True") == []
        assert api.put(f"/v2.0/networks/{net['id']}",
                       json={"network": {"shared": True}}).status_code == 200
        assert subnet_ids(api, "shared=True") == [sub["id"]]


