"""Small keyword-only helpers that create resources through the API and check the status.

Each takes the in-process `Api` (tests/conftest.py), the status it must answer (`expect=`),
the caller's `headers=` and the resource's attributes, and answers the resource (or, when
`expect` is an error status, the body). Tokens have no API: issue_token writes one through
the app's own engine, as `segmentd token create` does.
"""

from __future__ import annotations

from segmentd.services import tokens
from tests.conftest import in_transaction

# A host agent reporting (development auth); its reports need the service role.
SERVICE = {"X-Roles": "service", "X-Project-Id": "agents"}
OVS = "Open vSwitch agent"
OVS_BINARY = "neutron-openvswitch-agent"


def _answer(resp, expect: int, key: str):
    assert resp.status_code == expect, resp.text
    return resp.json().get(key, resp.json())


def make_network(api, *, expect: int = 201, headers=None, **attrs) -> dict:
    attrs.setdefault("name", "net")
    resp = api.post("/v2.0/networks", json={"network": attrs}, headers=headers)
    return _answer(resp, expect, "network")


def make_vlan_network(api, *, physnet: str = "physnet1", vlan: int | None = None,
                      expect: int = 201, headers=None, **attrs) -> dict:
    """A network whose own segment is a VLAN on `physnet`, with VLAN ID `vlan` (or one the
    service allocates)."""
    attrs = {"provider:network_type": "vlan", "provider:physical_network": physnet, **attrs}
    if vlan is not None:
        attrs["provider:segmentation_id"] = vlan
    return make_network(api, expect=expect, headers=headers, **attrs)


def make_segment(api, network_id: str, *, expect: int = 201, headers=None, **attrs) -> dict:
    attrs.setdefault("network_type", "vxlan")
    body = {"segment": {"network_id": network_id, **attrs}}
    resp = api.post("/v2.0/segments", json=body, headers=headers)
    return _answer(resp, expect, "segment")


def make_subnet(api, network_id: str, *, expect: int = 201, headers=None, **attrs) -> dict:
    """A subnet, 10.0.0.0/24 unless `cidr` says otherwise; ip_version follows the CIDR."""
    attrs.setdefault("cidr", "10.0.0.0/24")
    attrs.setdefault("ip_version", 6 if ":" in str(attrs["cidr"]) else 4)
    resp = api.post("/v2.0/subnets", json={"subnet": {"network_id": network_id, **attrs}},
                    headers=headers)
    return _answer(resp, expect, "subnet")


def update_subnet(api, subnet_id: str, *, expect: int = 200, headers=None, **attrs) -> dict:
    resp = api.put(f"/v2.0/subnets/{subnet_id}", json={"subnet": attrs}, headers=headers)
    return _answer(resp, expect, "subnet")


def make_port(api, network_id: str, *, expect: int = 201, headers=None, **attrs) -> dict:
    resp = api.post("/v2.0/ports", json={"port": {"network_id": network_id, **attrs}},
                    headers=headers)
    return _answer(resp, expect, "port")


def update_port(api, port_id: str, *, expect: int = 200, headers=None, **attrs) -> dict:
    resp = api.put(f"/v2.0/ports/{port_id}", json={"port": attrs}, headers=headers)
    return _answer(resp, expect, "port")


def bridges(*physnets: str) -> dict[str, str]:
    """An Open vSwitch agent's bridge_mappings: a bridge br-<physnet> on each physnet."""
    return {p: f"br-{p}" for p in physnets}


def report_body(host: str, *, agent_type: str = OVS, binary: str = OVS_BINARY,
                **configurations) -> dict:
    """The body of POST /v2.0/host-reports: an agent on `host` with these configurations."""
    return {"report": {"host": host, "agent_type": agent_type, "binary": binary,
                       "configurations": configurations}}


def send_report(api, host: str, *, agent_type: str = OVS, binary: str = OVS_BINARY,
                expect: int = 201, headers=SERVICE, **configurations) -> dict:
    """POST a host report (as the service role unless `headers` say otherwise); the agent
    it answers with."""
    body = report_body(host, agent_type=agent_type, binary=binary, **configurations)
    resp = api.post("/v2.0/host-reports", json=body, headers=headers)
    return _answer(resp, expect, "agent")


def issue_token(api, project: str, roles, **kwargs) -> tuple[str, dict]:
    """(secret, row) of a new token, as `segmentd token create` makes it."""
    return in_transaction(
        api, lambda conn: tokens.create_token(conn, project_id=project, roles=list(roles), **kwargs)
    )


def error_of(resp) -> dict:
    body = resp.json()
    assert set(body) == {"NeutronError"}, body
    assert set(body["NeutronError"]) == {"type", "message", "detail"}, body
    return body["NeutronError"]


def follow(api, url: str, key: str, rel: str = "next", headers=None, most: int = 200):
    """The pages met following `rel` links from `url` (each a list of items), and the last
    page's links by rel."""
    pages = []
    while True:
        resp = api.get(url, headers=headers)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        pages.append(body[key])
        links = {link["rel"]: link["href"] for link in body.get(f"{key}_links", [])}
        if rel not in links:
            return pages, links
        assert len(pages) < most, f"more than {most} pages from {url}"
        url = links[rel].replace("http://testserver", "")


def walk(api, url: str, key: str, headers=None) -> tuple[list[dict], int]:
    """Every item of a paged list, following `next` links from `url`; (items, pages)."""
    pages, _ = follow(api, url, key, headers=headers)
    return [item for page in pages for item in page], len(pages)
