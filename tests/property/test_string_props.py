"""Hypothesis properties of free-form strings (names, physnets, IDs in paths) on both databases."""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segmentd.db import migrate
from segmentd.inputs import CONTROL, CONTROL_IN_TEXT
from tests.conftest import build_api, create_pg_database, drop_pg_database
from tests.factories import error_of, make_network

DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]
STRINGS = settings(max_examples=120, deadline=None, database=None)

# Any text, and text that certainly holds a NUL (plain st.text() draws one only now and then).
texts = st.one_of(
    st.text(max_size=30),
    st.builds(lambda a, b: f"{a}\x00{b}", st.text(max_size=5), st.text(max_size=5)),
)


@contextmanager
def fresh_api(kind: str, tmp_path):
    """The real app on a new, migrated database of `kind`, dropped afterwards."""
    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'strings.db'}"
        migrate.upgrade(url)
        api = build_api(url)
        with api.client:
            yield api
        return
    name = f"segmentd_props_{uuid.uuid4().hex[:8]}"
    url = create_pg_database(name)
    try:
        migrate.upgrade(url)
        api = build_api(url)
        with api.client:
            yield api
    finally:
        drop_pg_database(name)


@pytest.mark.parametrize("kind", DATABASES)
def test_any_name_description_or_flat_physnet_is_stored_exactly_or_refused_with_400(
    kind, tmp_path
):
    """A segment with any name/description/physnet is 201 and round-trips, or 400; never 500."""
    with fresh_api(kind, tmp_path) as api:
        net = make_network(api, mtu=1400, **{"provider:network_type": "vxlan"})

        @STRINGS
        @given(name=texts, description=texts, physnet=texts)
        def check(name, description, physnet):
            body = {"network_id": net["id"], "network_type": "flat", "name": name,
                    "description": description, "physical_network": physnet}
            resp = api.post("/v2.0/segments", json={"segment": body})
            # Refused exactly when a string breaks the body rules: a control character (the
            # description may hold tab and newlines) or an empty physnet. Every drawn string
            # is shorter than any length limit, and any physnet may be flat ("*").
            refused = (CONTROL.search(name) or CONTROL_IN_TEXT.search(description)
                       or CONTROL.search(physnet) or physnet == "")
            if refused:
                assert resp.status_code == 400, (body, resp.status_code, resp.text)
                assert error_of(resp)["type"] == "HTTPBadRequest", (body, resp.text)
                return
            assert resp.status_code == 201, (body, resp.status_code, resp.text)
            seg = resp.json()["segment"]
            shown = api.get(f"/v2.0/segments/{seg['id']}").json()["segment"]
            assert (shown["name"], shown["description"], shown["physical_network"]) == (
                name, description, physnet)
            assert api.delete(f"/v2.0/segments/{seg['id']}").status_code == 204

        check()


@pytest.mark.parametrize("kind", DATABASES)
def test_any_id_in_a_path_or_marker_is_404_or_ignored_never_500(kind, tmp_path):
    """GET/PUT/DELETE of /segments/{anything} is 404, and an unknown marker is ignored."""
    with fresh_api(kind, tmp_path) as api:
        make_network(api, **{"provider:network_type": "vxlan"})

        @STRINGS
        # ASGI paths arrive decoded: %2F is a "/" and "." / ".." are dot segments.
        @given(ident=texts.filter(lambda s: s not in ("", ".", "..") and "/" not in s))
        def check(ident):
            path = f"/v2.0/segments/{quote(ident, safe='')}"
            for resp in (api.get(path), api.delete(path),
                         api.put(path, json={"segment": {"name": "x"}})):
                assert resp.status_code == 404, (ident, resp.status_code, resp.text)
                assert error_of(resp)["type"] == "SegmentNotFound"
            listed = api.get("/v2.0/segments", params={"marker": ident})
            assert listed.status_code == 200, (ident, listed.text)
            assert len(listed.json()["segments"]) == 1

        check()
