"""Hypothesis properties of the subnet address rules (pools, gateways, CIDR overlap)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segmentd.errors import InvalidInput, SegmentdError
from segmentd.services import subnet_addressing as a

PROPS = settings(max_examples=400, deadline=None, database=None)


@st.composite
def networks(draw):
    """A subnet within the allowed prefix bounds, IPv4 or IPv6."""
    version = draw(st.sampled_from([4, 6]))
    low, high = a.PREFIX_BOUNDS[version]
    prefix = draw(st.integers(low, high))
    bits = 32 if version == 4 else 128
    raw = draw(st.integers(0, 2**bits - 1))
    cls = ipaddress.IPv4Network if version == 4 else ipaddress.IPv6Network
    return cls((raw, prefix), strict=False)


def address_in(draw, net):
    return net.network_address + draw(st.integers(0, net.num_addresses - 1))


@given(st.data(), networks())
@PROPS
def test_default_pools_cover_the_usable_range_except_the_gateway(data, net):
    first, last = a.usable_range(net)
    gateway = data.draw(st.sampled_from([None, a.default_gateway(net), address_in(data.draw, net)]))
    if gateway is not None and not first <= gateway <= last:
        with pytest.raises(SegmentdError):
            a.check_gateway(net, str(gateway))
        return
    assert a.check_gateway(net, None if gateway is None else str(gateway)) == gateway
    pools = a.default_pools(net, gateway)
    covered = sum(int(p.last) - int(p.first) + 1 for p in pools)
    assert covered == int(last) - int(first) + 1 - (gateway is not None)
    for pool in pools:
        assert first <= pool.first <= pool.last <= last
        assert gateway is None or gateway not in pool
    assert net.network_address not in [p.first for p in pools]
    # What was computed is also what the check of given pools accepts unchanged.
    assert a.check_pools(net, gateway, [p.view() for p in pools]) == pools


@given(st.data(), networks())
@PROPS
def test_accepted_pools_are_inside_disjoint_and_clear_of_the_gateway(data, net):
    gateway = a.default_gateway(net) if data.draw(st.booleans()) else None
    given_pools = []
    for _ in range(data.draw(st.integers(1, 4))):
        x, y = address_in(data.draw, net), address_in(data.draw, net)
        given_pools.append({"start": str(min(x, y)), "end": str(max(x, y))})
    first, last = a.usable_range(net)
    try:
        pools = a.check_pools(net, gateway, given_pools)
    except SegmentdError as exc:
        assert exc.status == 400
        return
    for pool in pools:
        assert first <= pool.first <= pool.last <= last
        assert gateway is None or gateway not in pool
    for before, after in zip(pools, pools[1:], strict=False):
        assert before.last < after.first


@given(networks(), networks())
@PROPS
def test_overlap_is_symmetric_and_matches_address_sets(one, other):
    found = a.overlapping(one, [{"cidr": str(other)}]) is not None
    back = a.overlapping(other, [{"cidr": str(one)}]) is not None
    assert found == back
    if one.version != other.version:
        assert not found
    else:
        shares = (one.network_address <= other.broadcast_address
                  and other.network_address <= one.broadcast_address)
        assert found == shares


@given(networks())
@PROPS
def test_cidrs_are_normalised_and_host_bits_refused(net):
    assert a.parse_cidr(str(net), net.version) == net
    upper = str(net).upper()
    assert str(a.parse_cidr(upper, net.version)) == str(net)
    if net.num_addresses > 1:
        with_host_bits = f"{net.network_address + 1}/{net.prefixlen}"
        with pytest.raises(InvalidInput) as info:
            a.parse_cidr(with_host_bits, net.version)
        assert str(info.value) == (f"Invalid input for operation: '{with_host_bits}' isn't a "
                                   f"recommended CIDR, '{net}' is recommended.")
    with pytest.raises(InvalidInput) as info:
        a.parse_cidr(str(net), 10 - net.version)
    assert str(info.value) == (
        f"Invalid input for operation: Cidr {net} and ip version {10 - net.version} mismatch.")
