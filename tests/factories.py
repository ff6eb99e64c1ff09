"""Small keyword-only helpers that create resources through the API and check the status."""

from __future__ import annotations


def make_network(api, *, expect: int = 201, headers=None, **attrs) -> dict:
    attrs.setdefault("name", "net")
    resp = api.post("/v2.0/networks", json={"network": attrs}, headers=headers)
    assert resp.status_code == expect, resp.text
    return resp.json().get("network", resp.json())


def make_segment(api, network_id: str, *, expect: int = 201, headers=None, **attrs) -> dict:
    attrs.setdefault("network_type", "vxlan")
    body = {"segment": {"network_id": network_id, **attrs}}
    resp = api.post("/v2.0/segments", json=body, headers=headers)
    assert resp.status_code == expect, resp.text
    return resp.json().get("segment", resp.json())


def error_of(resp) -> dict:
    body = resp.json()
    assert set(body) == {"NeutronError"}, body
    assert set(body["NeutronError"]) == {"type", "message", "detail"}, body
    return body["NeutronError"]
