"""Choosing addresses and MACs: pure functions over pools and the addresses already taken.

Free addresses are never listed or stored. An allocator first tries a few random addresses
of the pools (in a sparse subnet, a /8 or a /64, the first one is free), and only in a dense
subnet reads what is taken and picks among the first free addresses (`free_addresses`).
"""

from __future__ import annotations

import bisect
import ipaddress
import random
import re
from collections.abc import Iterable, Iterator, Sequence

from segmentd import constants as c
from segmentd.errors import InvalidInput
from segmentd.services.subnet_addressing import IPAddress, IPNetwork, Pool

_MAC = re.compile(r"[0-9a-f]{2}([:-])[0-9a-f]{2}(\1[0-9a-f]{2}){4}")
AUTO_ADDRESS_MODES = ("slaac", "dhcpv6-stateless")


def random_mac(rng: random.Random) -> str:
    """A MAC under Neutron's default base (fa:16:3e), the rest random."""
    tail = rng.getrandbits(24).to_bytes(3, "big")
    return ":".join(f"{b:02x}" for b in (*c.MAC_PREFIX, *tail))


def parse_mac(text: str) -> str:
    """A given MAC in canonical form (lower case, colons); 400 unless it is a unicast MAC."""
    mac = text.lower()  # no whitespace, as Neutron
    if not _MAC.fullmatch(mac):
        raise InvalidInput(error_message=f"'{text}' is not a valid MAC address")
    mac = mac.replace("-", ":")
    first = int(mac[:2], 16)
    if mac == "00:00:00:00:00:00" or first & 1:
        raise InvalidInput(error_message=f"'{text}' is not a valid unicast MAC address")
    return mac


def is_auto_address(ip_version: int, address_mode: str | None) -> bool:
    """Whether a subnet's addresses derive from the MAC (SLAAC, DHCPv6-stateless)."""
    return ip_version == 6 and address_mode in AUTO_ADDRESS_MODES


def eui64(net: IPNetwork, mac: str) -> ipaddress.IPv6Address:
    """The modified EUI-64 address of `mac` in a /64 (RFC 4291 appendix A)."""
    octets = bytes(int(part, 16) for part in mac.split(":"))
    interface = octets[:3] + b"\xff\xfe" + octets[3:]
    interface = bytes([interface[0] ^ 0x02]) + interface[1:]
    return ipaddress.IPv6Address(int(net.network_address) | int.from_bytes(interface, "big"))


def pool_total(pools: Sequence[Pool]) -> int:
    return sum(int(p.last) - int(p.first) + 1 for p in pools)


def random_addresses(pools: Sequence[Pool], rng: random.Random, n: int) -> list[int]:
    """`n` addresses drawn uniformly over all pools (as integers); empty without pools."""
    total = pool_total(pools)
    out = []
    for _ in range(n if total else 0):
        k = rng.randrange(total)
        for pool in pools:
            size = int(pool.last) - int(pool.first) + 1
            if k < size:
                out.append(int(pool.first) + k)
                break
            k -= size
    return out


def free_addresses(pools: Sequence[Pool], taken: Iterable[int], limit: int) -> list[int]:
    """The first `limit` addresses of the pools, in pool order, that are not taken."""
    taken_sorted = sorted(set(taken))
    out: list[int] = []
    for pool in pools:
        out.extend(_free_in(int(pool.first), int(pool.last), taken_sorted, limit - len(out)))
        if len(out) >= limit:
            break
    return out


def _free_in(first: int, last: int, taken: list[int], limit: int) -> Iterator[int]:
    """Walk the gaps between taken addresses: cost follows what is taken, not the pool size."""


    i = bisect.bisect_left(taken, first)
    cursor = first
    produced = 0
    while cursor <= last and produced < limit:
        if i < len(taken) and taken[i] == cursor:
            cursor += 1
            i += 1
            continue
        gap_end = min(last, taken[i] - 1) if i < len(taken) else last
        while cursor <= gap_end and produced < limit:
            yield cursor
            cursor += 1
            produced += 1


def as_address(version: int, value: int) -> IPAddress:
    return ipaddress.IPv4Address(value) if version == 4 else ipaddress.IPv6Address(value)
