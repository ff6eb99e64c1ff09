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
