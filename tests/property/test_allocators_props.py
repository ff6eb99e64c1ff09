"""Hypothesis properties of address and MAC choice (services/allocators), and of port address
allocation through the API on every database the `api` fixture gives."""

from __future__ import annotations

import ipaddress
import itertools
import random
import re
from collections import Counter

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from segmentd.errors import InvalidInput
from segmentd.services import allocators
from segmentd.services.subnet_addressing import Pool
from tests.factories import error_of, make_network

PROPS = settings(max_examples=300, deadline=None, database=None)
API_PROPS = settings(
    max_examples=25, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
LOW64 = 2**64 - 1


def address(version: int, value: int):
    return allocators.as_address(version, value)


def brute_force_free(pools, taken, limit: int) -> list[int]:
    """Every pool address in pool order, minus the taken ones, cut at `limit`."""
    taken = set(taken)
    every = (x for p in pools for x in range(int(p.first), int(p.last) + 1))
    return list(itertools.islice((x for x in every if x not in taken), max(limit, 0)))


def lazy_free(pools, taken, limit: int) -> list[int]:
    """The same answer for pools of any size: walks no further than it has to."""
    taken = set(taken)
    out: list[int] = []
    for p in pools:
        x = int(p.first)
        while x <= int(p.last) and len(out) < limit:
            if x not in taken:
                out.append(x)
            x += 1
    return out


def pool_of(pools, value: int) -> int | None:
    """The index of the pool holding `value`, or None."""
    return next((i for i, p in enumerate(pools) if int(p.first) <= value <= int(p.last)), None)


@st.composite
def small_pools(draw, max_pools: int = 5):
    """(version, pools, low, high): disjoint small pools (in order, or shuffled) placed
    anywhere in the address space; [low, high] spans them with a margin."""
    version = draw(st.sampled_from([4, 6]))
    bits = 32 if version == 4 else 128
    base = draw(st.integers(8, 2**bits - 1 - 8 * 64))
    cursor, pools = base, []
    for _ in range(draw(st.integers(0, max_pools))):
        first = cursor + draw(st.integers(0, 4))
        last = first + draw(st.integers(0, 11))
        pools.append(Pool(address(version, first), address(version, last)))
        cursor = last + 1 + draw(st.integers(0, 1))  # adjacent pools too
    if draw(st.booleans()):
        pools = draw(st.permutations(pools))
    return version, pools, base - 3, cursor + 3


@st.composite
def pools_and_taken(draw):
    _, pools, low, high = draw(small_pools())
    taken = draw(st.lists(st.integers(low, high), max_size=40))  # duplicates and outsiders too
    if pools and draw(st.booleans()):  # sometimes a whole pool taken
        p = draw(st.sampled_from(pools))
        taken += list(range(int(p.first), int(p.last) + 1))
    return pools, taken


# free_addresses --------------------------------------------------------------------------


@given(pools_and_taken(), st.integers(0, 40))
@PROPS
def test_free_addresses_are_the_first_free_pool_addresses_in_pool_order(pt, limit):
    pools, taken = pt
    free = allocators.free_addresses(pools, iter(taken), limit)  # any iterable of taken addresses

    assert len(free) <= limit
    positions = []
    for value in free:
        index = pool_of(pools, value)
        assert index is not None, value
        assert value not in taken
        positions.append((index, value))
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    expected = brute_force_free(pools, taken, limit)
    assert free == expected
    assert len(free) == min(limit, sum(1 for _ in brute_force_free(pools, taken, 10**6)))


@given(pools_and_taken(), st.integers(0, 40))
@PROPS
def test_free_addresses_of_sorted_pools_are_strictly_increasing(pt, limit):
    pools, taken = pt
    pools = sorted(pools, key=lambda p: p.first)
    free = allocators.free_addresses(pools, taken, limit)
    assert all(a < b for a, b in itertools.pairwise(free))
    assert free == brute_force_free(pools, taken, limit)


@st.composite
def huge_pools_and_taken(draw):
    """A pool of 2**24 addresses, a /8's worth (and maybe a small one after it), and a few
    taken addresses, mostly packed at the start of the big pool."""
    version = draw(st.sampled_from([4, 6]))
    size = 2**24
    first = 2**24 if version == 4 else 2**64
    pools = [Pool(address(version, first), address(version, first + size - 1))]
    if draw(st.booleans()):
        pools.append(Pool(address(version, first + size + 5), address(version, first + size + 9)))
    head = draw(st.integers(0, 300))  # the first `head` addresses all taken
    taken = list(range(first, first + head))
    taken += draw(st.lists(st.integers(first, first + size + 9), max_size=8))
    return pools, taken


@given(huge_pools_and_taken(), st.integers(0, 64))
@settings(max_examples=100, deadline=None, database=None)
def test_free_addresses_of_huge_pools_walk_only_what_is_taken(pt, limit):
    """A /8 answers as a /28 does: the cost follows the taken addresses (not timed)."""
    pools, taken = pt
    free = allocators.free_addresses(pools, taken, limit)
    assert free == lazy_free(pools, taken, limit)


def test_free_addresses_of_a_slash_8_pool_with_a_few_taken_answers_at_once():
    net = ipaddress.ip_network("10.0.0.0/8")
    pools = [Pool(net.network_address + 1, net.broadcast_address - 1)]
    assert allocators.pool_total(pools) == 2**24 - 2
    taken = [int(net.network_address) + k for k in (1, 2, 3, 5, 40)]
    free = allocators.free_addresses(pools, taken, 32)
    start = int(net.network_address)
    assert free == [start + k for k in [4, *range(6, 40), *range(41, 100)]][:32]
    # The last addresses of the pool only, everything before them taken: a gap walk.
    last = int(net.broadcast_address) - 1
    assert allocators.free_addresses([Pool(address(4, last - 2), address(4, last))],
                               [last - 1], 5) == [last - 2, last]


# pool_total and random_addresses --------------------------------------------------------


@given(small_pools())
@PROPS
def test_pool_total_counts_every_pool_address(vp):
    _, pools, _, _ = vp
    assert allocators.pool_total(pools) == len(brute_force_free(pools, [], 10**6))


@given(small_pools(), st.integers(0, 2**32), st.integers(0, 50))
@PROPS
def test_random_addresses_are_always_inside_a_pool(vp, seed, n):
    _, pools, _, _ = vp
    drawn = allocators.random_addresses(pools, random.Random(seed), n)
    if not pools:
        assert drawn == []
        return
    assert len(drawn) == n
    assert all(pool_of(pools, value) is not None for value in drawn), (pools, drawn)


@given(st.integers(0, 2**32), st.integers(0, 50))
@PROPS
def test_random_addresses_without_pools_are_empty(seed, n):
    assert allocators.random_addresses([], random.Random(seed), n) == []


def test_random_addresses_are_uniform_over_all_pools_not_per_pool():
    """A pool of 1 and a pool of 7: every address drawn about as often (a fixed seed, so
    the counts are the same on every run)."""
    pools = [Pool(address(4, 100), address(4, 100)), Pool(address(4, 200), address(4, 206))]
    counts = Counter(allocators.random_addresses(pools, random.Random(1234), 8000))
    assert set(counts) == {100, *range(200, 207)}
    assert all(800 <= k <= 1200 for k in counts.values()), counts  # 1000 each expected


# eui64 -----------------------------------------------------------------------------------

unicast_mac_bytes = st.binary(min_size=6, max_size=6).map(
    lambda b: bytes([b[0] & 0xFE]) + b[1:]).filter(any)
slash_64s = st.integers(0, LOW64).map(lambda hi: ipaddress.IPv6Network((hi << 64, 64)))


def mac_text(raw: bytes, sep: str = ":") -> str:
    return sep.join(f"{b:02x}" for b in raw)


def modified_eui64(raw: bytes) -> int:
    """RFC 4291 appendix A, written out: the universal/local bit flipped, ff:fe inserted."""
    interface = bytes([raw[0] ^ 0x02, raw[1], raw[2], 0xFF, 0xFE, raw[3], raw[4], raw[5]])
    return int.from_bytes(interface, "big")


@given(slash_64s, unicast_mac_bytes)
@PROPS
def test_eui64_is_the_modified_eui64_interface_id_inside_the_64(net, raw):
    got = allocators.eui64(net, mac_text(raw))
    assert isinstance(got, ipaddress.IPv6Address)
    assert got in net
    assert int(got) >> 64 == int(net.network_address) >> 64
    assert int(got) & LOW64 == modified_eui64(raw)
    interface = (int(got) & LOW64).to_bytes(8, "big")
    assert interface[3:5] == b"\xff\xfe"
    assert interface[0] == raw[0] ^ 0x02 and interface[0] & 0x02 != raw[0] & 0x02


@given(slash_64s, unicast_mac_bytes, unicast_mac_bytes)
@PROPS
def test_eui64_of_distinct_macs_are_distinct(net, one, other):
    assume(one != other)
    assert allocators.eui64(net, mac_text(one)) != allocators.eui64(net, mac_text(other))


# parse_mac and random_mac ----------------------------------------------------------------

VALID_MAC = re.compile(r"[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(?:\1[0-9a-fA-F]{2}){4}")


@st.composite
def spelled(draw, raw: bytes) -> str:
    """`raw` as text with ':' or '-' and any mix of upper and lower case."""
    sep = draw(st.sampled_from([":", "-"]))
    text = mac_text(raw, sep)
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(ch.upper() if flip else ch for ch, flip in zip(text, flips, strict=True))


@given(st.data(), unicast_mac_bytes)
@PROPS
def test_parse_mac_accepts_unicast_macs_in_colon_or_dash_form_and_answers_lower_colon(data, raw):
    text = data.draw(spelled(raw))
    assert allocators.parse_mac(text) == mac_text(raw)
    assert allocators.parse_mac(text.upper()) == mac_text(raw)


@given(st.data(), st.binary(min_size=6, max_size=6))
@PROPS
def test_parse_mac_refuses_multicast_macs(data, raw):
    raw = bytes([raw[0] | 0x01]) + raw[1:]  # the group bit: multicast (and broadcast)
    with pytest.raises(InvalidInput) as info:
        allocators.parse_mac(data.draw(spelled(raw)))
    assert info.value.status == 400


@pytest.mark.parametrize("text", ["00:00:00:00:00:00", "00-00-00-00-00-00",
                                  "ff:ff:ff:ff:ff:ff", "01:00:5e:00:00:01", "33-33-00-00-00-01"])
def test_parse_mac_refuses_zero_broadcast_and_multicast(text):
    with pytest.raises(InvalidInput):
        allocators.parse_mac(text)


@st.composite
def malformed_macs(draw):
    """Near misses of a valid MAC, and any text that is not one."""
    raw = draw(unicast_mac_bytes)
    groups = [f"{b:02x}" for b in raw]
    kind = draw(st.integers(0, 9))
    if kind == 0:  # five or seven groups
        groups = groups[:5] if draw(st.booleans()) else [*groups, "aa"]
        return ":".join(groups)
    if kind == 1:  # a group of one or three digits
        i = draw(st.integers(0, 5))
        groups[i] = groups[i][0] if draw(st.booleans()) else groups[i] + "0"
        return ":".join(groups)
    if kind == 2:  # a digit that is not hexadecimal
        i = draw(st.integers(0, 5))
        groups[i] = draw(st.sampled_from("gGzZx_ .:;")) + groups[i][1]
        return ":".join(groups)
    if kind == 3:  # separators mixed, or another separator
        seps = draw(st.lists(st.sampled_from([":", "-", ".", "_", " ", ""]), min_size=5, max_size=5)
                    .filter(lambda s: len(set(s)) > 1 or s[0] not in ":-"))
        return groups[0] + "".join(s + g for s, g in zip(seps, groups[1:], strict=True))
    if kind == 4:  # Cisco dotted or bare
        bare = "".join(groups)
        return draw(st.sampled_from([bare, f"{bare[:4]}.{bare[4:8]}.{bare[8:]}"]))
    if kind == 5:  # a separator too many, at either end or doubled
        text = ":".join(groups)
        return draw(st.sampled_from([text + ":", ":" + text, text.replace(":", "::", 1)]))
    if kind == 6:
        return draw(st.sampled_from(["", ":", "-----", "::::::", "0", "fa:16:3e",
                                     "fa:16:3e:00:00:01/24", "fa:16:3e:00:00:01%eth0"]))
    if kind == 7:  # a full-width or other non-ASCII digit
        i = draw(st.integers(0, 11))
        text = "".join(groups)
        text = text[:i] + draw(st.sampled_from("０ａＡ٣߀ᠠ")) + text[i + 1:]
        return ":".join(text[j:j + 2] for j in range(0, 12, 2))
    text = draw(st.text(max_size=24))
    assume(not VALID_MAC.fullmatch(text.strip()))
    return text


@given(malformed_macs())
@PROPS
def test_parse_mac_refuses_malformed_text_with_invalid_input(text):
    with pytest.raises(InvalidInput) as info:
        allocators.parse_mac(text)
    assert info.value.status == 400


@given(st.integers(0, 2**32))
@PROPS
def test_random_macs_are_under_fa_16_3e_and_parse_as_themselves(seed):
    mac = allocators.random_mac(random.Random(seed))
    assert mac.startswith("fa:16:3e:")
    assert allocators.parse_mac(mac) == mac


@pytest.mark.parametrize(("version", "mode", "auto"), [
    (6, "slaac", True), (6, "dhcpv6-stateless", True), (6, "dhcpv6-stateful", False),
    (6, None, False), (4, None, False), (4, "slaac", False),
])
def test_is_auto_address_only_for_slaac_and_stateless_ipv6(version, mode, auto):
    assert allocators.is_auto_address(version, mode) is auto


# Allocation through the API --------------------------------------------------------------

CREATE = "create"


@st.composite
def small_subnets(draw):
    """(subnet request attributes, gateway or None, the pools as (first, last) integers):
    an IPv4 /28–/29 or IPv6 /125–/126 with a random gateway and random valid pools."""
    version = draw(st.sampled_from([4, 4, 4, 6]))
    if version == 4:
        prefix = draw(st.integers(28, 29))
        net = ipaddress.IPv4Network((draw(st.integers(0x0A000000, 0x0AFFFFFF)), prefix),
                                    strict=False)
        first, last = int(net.network_address) + 1, int(net.broadcast_address) - 1
    else:
        prefix = draw(st.integers(125, 126))
        net = ipaddress.IPv6Network((0xFD00 << 112 | draw(st.integers(0, 2**64)), prefix),
                                    strict=False)
        first, last = int(net.network_address) + 1, int(net.broadcast_address)
    attrs = {"cidr": str(net), "ip_version": version}
    gateway_kind = draw(st.sampled_from(["default", "none", "any"]))
    if gateway_kind == "default":  # left out: the first usable address
        gateway = first
    elif gateway_kind == "none":
        gateway, attrs["gateway_ip"] = None, None
    else:
        gateway = draw(st.integers(first, last))
        attrs["gateway_ip"] = str(address(version, gateway))
    if draw(st.integers(0, 3)) == 0:  # the default pools: the usable range minus the gateway
        pools = [(first, last)] if gateway is None else [
            (lo, hi) for lo, hi in ((first, gateway - 1), (gateway + 1, last)) if lo <= hi]
    else:  # runs of chosen addresses, sometimes cut in two; maybe none at all
        pools, run = [], None
        for value in range(first, last + 1):
            if value == gateway or not draw(st.booleans()):
                run = None
                continue
            if run is not None and not draw(st.booleans()):
                run[1] = value
                continue
            run = [value, value]
            pools.append(run)
        pools = [tuple(p) for p in pools]
        attrs["allocation_pools"] = [
            {"start": str(address(version, lo)), "end": str(address(version, hi))}
            for lo, hi in pools
        ]
    return attrs, gateway, pools


operations = st.lists(st.one_of(st.just(CREATE), st.just(CREATE), st.integers(0, 15)),
                      min_size=4, max_size=30)


def held_in_api(api, network_id) -> dict[str, str]:
    resp = api.get("/v2.0/ports", params={"network_id": network_id})
    assert resp.status_code == 200, resp.text
    out = {}
    for port in resp.json()["ports"]:
        assert len(port["fixed_ips"]) == 1, port
        out[port["id"]] = port["fixed_ips"][0]["ip_address"]
    return out


def availability(api, network_id) -> dict:
    resp = api.get(f"/v2.0/network-ip-availabilities/{network_id}")
    assert resp.status_code == 200, resp.text
    return resp.json()["network_ip_availability"]


def test_ports_take_distinct_pool_addresses_until_full_and_deletes_free_them(api):
    """Random subnets, random creates and deletes: each address in a pool, never the
    gateway, never held twice; 409 IpAddressGenerationFailure exactly when the pools are
    full; a deleted port's address is given again; used_ips counts what is held."""

    @API_PROPS
    @given(subnet=small_subnets(), ops=operations)
    def check(subnet, ops):
        attrs, gateway, pools = subnet
        version = attrs["ip_version"]
        net = make_network(api, **{"provider:network_type": "vxlan"})
        resp = api.post("/v2.0/subnets", json={"subnet": {"network_id": net["id"], **attrs}})
        assert resp.status_code == 201, resp.text
        sub = resp.json()["subnet"]
        expected_pools = [{"start": str(address(version, lo)), "end": str(address(version, hi))}
                          for lo, hi in pools]
        assert sub["allocation_pools"] == expected_pools
        assert sub["gateway_ip"] == (None if gateway is None else str(address(version, gateway)))
        pool_addresses = {str(address(version, x)) for lo, hi in pools for x in range(lo, hi + 1)}
        total = len(pool_addresses)
        held: dict[str, str] = {}  # port id -> address, in creation order

        def create(expect_address: str | None = None) -> None:
            resp = api.post("/v2.0/ports", json={"port": {"network_id": net["id"]}})
            if len(held) == total:
                assert resp.status_code == 409, resp.text
                assert error_of(resp)["type"] == "IpAddressGenerationFailure"
                return
            assert resp.status_code == 201, (len(held), total, resp.text)
            port = resp.json()["port"]
            assert [f["subnet_id"] for f in port["fixed_ips"]] == [sub["id"]], port
            ip = port["fixed_ips"][0]["ip_address"]
            assert ip in pool_addresses, (ip, expected_pools)
            assert gateway is None or ip != str(address(version, gateway))
            assert ip not in held.values(), (ip, held)
            if expect_address is not None:
                assert ip == expect_address
            held[port["id"]] = ip

        def delete(index: int) -> str:
            port_id = list(held)[index % len(held)]
            resp = api.delete(f"/v2.0/ports/{port_id}")
            assert resp.status_code == 204, resp.text
            return held.pop(port_id)

        def agree() -> None:
            assert held_in_api(api, net["id"]) == held
            avail = availability(api, net["id"])
            assert (avail["used_ips"], avail["total_ips"]) == (len(held), total), avail
            [entry] = avail["subnet_ip_availability"]
            assert (entry["subnet_id"], entry["used_ips"], entry["total_ips"]) == (
                sub["id"], len(held), total)

        for op in ops:
            if op == CREATE:
                create()
            elif held:
                delete(op)
            agree()
        # Fill what is left, one create more than fits, then free one address and take it.
        while len(held) < total:
            create()
        create()  # 409: full
        agree()
        if held:
            freed = delete(len(held) // 2)
            create(expect_address=freed)  # the one free address: the next create gets it
            create()  # full again
            agree()

    check()
