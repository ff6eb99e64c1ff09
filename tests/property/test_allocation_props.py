"""Hypothesis properties of segment validation and ID allocation, on the in-process app."""

from __future__ import annotations

import json
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segmentd.db import migrate
from tests.conftest import build_api
from tests.factories import error_of, make_network

ABSENT = object()  # the attribute is left out of the request body
KNOWN_VLAN_PHYSNETS = {"physnet1": (100, 2999), "physnet2": (1, 4094), "small": (10, 12)}
VXLAN_POOL = (1, 1000)  # vni_ranges of tests.conftest.BASE_CONFIG
VLAN_MAX, VNI_MAX = 4094, 2**24 - 1
SMALL_RANGE = range(10, 21)  # vlan_ranges ["small:10:20"]: 11 IDs

PROPS = settings(
    max_examples=300, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def fresh_api(tmp_path, **overrides):
    """The real app on a newly migrated SQLite file."""
    path = tmp_path / f"{uuid.uuid4().hex}.db"
    migrate.upgrade(f"sqlite+aiosqlite:///{path}")
    return build_api(f"sqlite+aiosqlite:///{path}", **overrides)


def post_raw(api, path: str, body: dict):
    """POST with the stdlib encoder, which also writes NaN and Infinity (invalid JSON)."""
    return api.post(path, content=json.dumps(body),
                    headers={"Content-Type": "application/json"})


def is_json_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def has_control(text: str) -> bool:
    """C0/C1 control characters, which segmentd refuses in names and types."""
    return any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in text)


def expected_created(network_type, physnet, seg_id) -> bool:
    """segmentd's (and Neutron's) rules for a segment create, written out independently."""
    if not (isinstance(network_type, str) and 1 <= len(network_type) <= 32):
        return False
    if has_control(network_type):
        return False
    given_physnet = physnet not in (ABSENT, None)
    given_id = seg_id not in (ABSENT, None)
    if given_physnet and not (isinstance(physnet, str) and 1 <= len(physnet) <= 64):
        return False
    if given_physnet and has_control(physnet):
        return False
    if given_id and not is_json_int(seg_id):
        return False
    if network_type == "flat":
        return given_physnet and not given_id  # flat_networks = ["*"]
    if network_type == "vlan":
        if given_physnet and physnet not in KNOWN_VLAN_PHYSNETS:
            return False
        if given_id:
            return given_physnet and 1 <= seg_id <= VLAN_MAX
        return True
    if network_type in ("vxlan", "geneve"):
        return not given_physnet and (not given_id or 1 <= seg_id <= VNI_MAX)
    return False


NOT_GIVEN = st.sampled_from([ABSENT, None])
any_id = st.one_of(
    st.sampled_from([0, 1, 4094, 4095, VNI_MAX, VNI_MAX + 1, -1, 2**31, 2**63, 2**64]),
    st.integers(), st.booleans(), st.floats(), st.text(max_size=6),
    st.integers(1, 4094).map(str), st.lists(st.integers(1, 10), max_size=2),
    st.dictionaries(st.text(max_size=2), st.none(), max_size=1), NOT_GIVEN,
)
any_type = st.one_of(
    st.sampled_from(["vlan", "vxlan", "geneve", "flat", "gre", "local", "VLAN", "", "x" * 33]),
    st.text(max_size=40), st.integers(), st.booleans(), st.none(),
)
any_physnet = st.one_of(
    st.sampled_from([*KNOWN_VLAN_PHYSNETS, "unknown", "", "x" * 64, "x" * 65]),
    st.text(max_size=70), st.integers(), st.booleans(), st.lists(st.just("physnet1"), max_size=1),
    NOT_GIVEN,
)
# (network_type, physical_network, segmentation_id) that should be created.
valid_requests = st.one_of(
    st.tuples(st.just("vlan"), NOT_GIVEN, NOT_GIVEN),
    st.tuples(st.just("vlan"), st.sampled_from(list(KNOWN_VLAN_PHYSNETS)),
              st.one_of(NOT_GIVEN, st.integers(1, VLAN_MAX))),
    st.tuples(st.sampled_from(["vxlan", "geneve"]), NOT_GIVEN,
              st.one_of(NOT_GIVEN, st.integers(1, VNI_MAX))),
    st.tuples(st.just("flat"), st.text(min_size=1, max_size=64), NOT_GIVEN),
)
ANY = (any_type, any_physnet, any_id)
# A valid request with one of its three values replaced by anything.
near_misses = st.tuples(valid_requests, st.integers(0, 2)).flatmap(
    lambda vi: ANY[vi[1]].map(lambda bad: vi[0][: vi[1]] + (bad,) + vi[0][vi[1] + 1:])
)
requests = st.sampled_from([valid_requests, near_misses, st.tuples(*ANY)]).flatmap(lambda s: s)


def test_segment_create_is_201_only_for_valid_ids_else_400_and_nothing_written(tmp_path):
    """Random segmentation_id/network_type/physnet: 201 exactly when valid, else 400, never 500."""
    api = fresh_api(tmp_path)
    with api.client:
        # The network's own segment sits on a physnet no example can name; MTU 1400 fits all types.
        net = make_network(api, mtu=1400, **{"provider:network_type": "flat",
                                             "provider:physical_network": f"own-{uuid.uuid4()}"})
        baseline = api.counts()

        @PROPS
        @given(request=requests)
        def check(request):
            network_type, physnet, seg_id = request
            body = {"network_id": net["id"], "network_type": network_type}
            for key, value in (("physical_network", physnet), ("segmentation_id", seg_id)):
                if value is not ABSENT:
                    body[key] = value
            resp = post_raw(api, "/v2.0/segments", {"segment": body})

            if not expected_created(network_type, physnet, seg_id):
                assert resp.status_code == 400, (body, resp.status_code, resp.text)
                error_of(resp)  # exactly Neutron's error body
                assert api.counts() == baseline
                return
            assert resp.status_code == 201, (body, resp.text)
            seg = resp.json()["segment"]
            assert seg["network_type"] == network_type and seg["network_id"] == net["id"]
            if network_type == "flat":
                assert seg["physical_network"] == physnet and seg["segmentation_id"] is None
            elif network_type == "vlan":
                lo, hi = KNOWN_VLAN_PHYSNETS[seg["physical_network"]]
                if physnet not in (ABSENT, None):
                    assert seg["physical_network"] == physnet
                if seg_id not in (ABSENT, None):
                    assert seg["segmentation_id"] == seg_id
                else:
                    assert lo <= seg["segmentation_id"] <= hi
            else:
                assert seg["physical_network"] is None
                if seg_id not in (ABSENT, None):
                    assert seg["segmentation_id"] == seg_id
                elif network_type == "vxlan":
                    assert VXLAN_POOL[0] <= seg["segmentation_id"] <= VXLAN_POOL[1]
                else:
                    assert 1 <= seg["segmentation_id"] <= VNI_MAX
            assert api.counts()["segments"] == baseline["segments"] + 1
            assert api.delete(f"/v2.0/segments/{seg['id']}").status_code == 204
            assert api.counts() == baseline

        check()


operations = st.lists(
    st.one_of(
        st.sampled_from(["create", "create-on-small"]),  # without / with physical_network
        st.integers(min_value=0, max_value=10),  # delete the live segment at this position
    ),
    max_size=60,
)


def test_vlan_allocation_stays_in_range_without_duplicates_and_reuses_freed_ids(tmp_path):
    """Random creates/deletes on an 11-ID range: IDs in 10..20, unique, 503 exactly when full."""
    api = fresh_api(tmp_path, vlan_ranges=["small:10:20"])
    with api.client:

        @settings(max_examples=60, deadline=None, database=None)
        @given(ops=operations)
        def check(ops):
            net = make_network(api, **{"provider:network_type": "vxlan"})
            live: dict[str, int] = {}  # segment id -> VLAN ID

            def create(with_physnet: bool):
                body = {"network_id": net["id"], "network_type": "vlan"}
                if with_physnet:
                    body["physical_network"] = "small"
                resp = api.post("/v2.0/segments", json={"segment": body})
                if len(live) == len(SMALL_RANGE):
                    assert resp.status_code == 503, resp.text
                    assert error_of(resp)["type"] == "NoNetworkAvailable"
                    return
                assert resp.status_code == 201, resp.text
                seg = resp.json()["segment"]
                assert seg["physical_network"] == "small"
                assert seg["segmentation_id"] in SMALL_RANGE
                assert seg["segmentation_id"] not in live.values()
                live[seg["id"]] = seg["segmentation_id"]

            for op in ops:
                if isinstance(op, str):
                    create(op == "create-on-small")
                elif live:
                    seg_id = sorted(live)[op % len(live)]
                    assert api.delete(f"/v2.0/segments/{seg_id}").status_code == 204
                    del live[seg_id]
            # Fill what is left: every freed ID must come back, then the range is exhausted.
            while len(live) < len(SMALL_RANGE):
                create(with_physnet=False)
            assert sorted(live.values()) == list(SMALL_RANGE)
            create(with_physnet=True)  # 503
            listed = api.get("/v2.0/segments", params={"network_id": net["id"],
                                                         "network_type": "vlan"})
            assert {s["id"]: s["segmentation_id"] for s in listed.json()["segments"]} == live
            assert api.delete(f"/v2.0/networks/{net['id']}").status_code == 204
            assert api.counts() == {"segments": 0, "networks": 0}

        check()
