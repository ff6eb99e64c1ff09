"""Which URLs a webhook may name and which addresses a delivery may connect to.

Subscriptions are made by API callers, so a webhook URL is untrusted input: without a
policy it could make segmentd reach its own loopback services or the cloud metadata
endpoint (server-side request forgery). `check_url` screens a URL when a subscription is
created; `resolve` vets every address a name resolves to at delivery time.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx

if TYPE_CHECKING:
    from segmentd.config import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

URL_MAX_LENGTH = 2048  # the practical limit browsers and most servers agree on
ALLOWED_SCHEMES = frozenset({"http", "https"})
# Instance metadata services: AWS/GCP/Azure/OpenStack (v4), AWS (v6), Alibaba Cloud.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)


class InvalidUrl(ValueError):
    """A webhook URL that is malformed or uses something other than plain http(s)."""


class AddressRefused(ValueError):
    """An address a webhook must not reach; the message names the rule."""


NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: always a /96
NAT64_LOCAL_USE = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215: a /48 to /96 inside
# Where RFC 6052 puts the IPv4 address for each prefix length a local-use prefix may have:
# (bit offset, bit count) pieces, skipping bits 64-71 (the "u" octet).
NAT64_LAYOUTS = (((48, 16), (72, 16)), ((56, 8), (72, 24)), ((72, 32),), ((96, 32),))


def _bits(value: int, offset: int, count: int) -> int:
    return (value >> (128 - offset - count)) & ((1 << count) - 1)


def _judged_as(ip: IPAddress) -> list[IPAddress]:
    """The addresses `ip` is judged as. An IPv6 address that carries an IPv4 one is that
    IPv4 address: mapped (::ffff:127.0.0.1), 6to4 (2002:7f00:1::), Teredo (its client),
    NAT64 (64:ff9b::7f00:1, which a translator forwards to 127.0.0.1 on its side). A
    local-use NAT64 address could carry its IPv4 address at any of RFC 6052's places (the
    prefix length is the translator's): each candidate is judged, and one refusal refuses."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return [ip]
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    if ip.teredo is not None:
        return [ip.teredo[1]]
    if ip in NAT64_WELL_KNOWN:
        return [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
    if ip in NAT64_LOCAL_USE:
        found = []
        for layout in NAT64_LAYOUTS:
            v4 = 0
            for offset, count in layout:
                v4 = (v4 << count) | _bits(int(ip), offset, count)
            if v4:  # zeros: this layout is not the translator's (0.0.0.0 is no destination)
                found.append(ipaddress.IPv4Address(v4))
        return found or [ip]
    return [ip]


def _literal_ip(host: str) -> IPAddress | None:
    """The address a URL host names directly, including short forms like 127.1 or 0x7f000001."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    # WHATWG URL parsing (and getaddrinfo) read a host whose last label is a number as IPv4.
    last = host.rstrip(".").rsplit(".", 1)[-1].lower()
    if last.isdigit() or last.startswith("0x"):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


class AddressPolicy:
    """Refuses the addresses a webhook must not reach; see README "Events"."""

    def __init__(self, allowed_networks: list[str], allow_loopback: bool = False) -> None:
        self.allowed_networks = [ipaddress.ip_network(n, strict=False) for n in allowed_networks]
        self.allow_loopback = allow_loopback

    @classmethod
    def from_settings(cls, settings: Settings) -> AddressPolicy:
        return cls(list(settings.webhook_allowed_networks), settings.webhook_allow_loopback)

    def check_address(self, ip: IPAddress) -> None:
        """Raise AddressRefused unless a delivery may connect to `ip`."""
        for judged in _judged_as(ip):
            self._check_one(judged)

    def _check_one(self, ip: IPAddress) -> None:
        if ip.is_unspecified:
            raise AddressRefused(f"address {ip} is unspecified")
        if ip.is_multicast:
            raise AddressRefused(f"address {ip} is multicast")
        if ip.is_reserved and not ip.is_loopback:  # ipaddress counts ::1 as reserved (::/8)
            raise AddressRefused(f"address {ip} is reserved")
        if self.allowed_networks:
            # An explicit listing is the whole rule: it can admit loopback or link-local.
            if any(ip in net for net in self.allowed_networks):
                return
            raise AddressRefused(f"address {ip} is outside webhook_allowed_networks")
        if ip.is_loopback:
            if self.allow_loopback:
                return
            raise AddressRefused(f"address {ip} is loopback")
        if ip in METADATA_ADDRESSES or ip.is_link_local:
            raise AddressRefused(f"address {ip} is link-local or cloud metadata")

    def check_url(self, url: str) -> None:
        """Screen a subscription's URL without resolving it; literal IPs are checked now."""
        if len(url) > URL_MAX_LENGTH:
            raise InvalidUrl(f"url is longer than {URL_MAX_LENGTH} characters")
        # Backslashes are read as slashes by some URL parsers and not by others.
        if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F or c == "\\" for c in url):
            raise InvalidUrl("url contains whitespace, control characters or backslashes")
        try:
            parts = urlsplit(url)
        except ValueError:  # e.g. an unclosed "[" around an IPv6 host
            raise InvalidUrl("url is malformed") from None
        if parts.scheme.lower() not in ALLOWED_SCHEMES:
            raise InvalidUrl("url scheme must be http or https")
        if "@" in parts.netloc:
            raise InvalidUrl("url must not contain credentials (user:password@)")
        host = parts.hostname
        if not host:
            raise InvalidUrl("url has no host")
        try:
            port = parts.port
        except ValueError:
            port = 0
        if port is not None and not 1 <= port <= 65535:
            raise InvalidUrl("url port must be between 1 and 65535")
        try:  # the host as the HTTP client will connect to it (IDNA and all)
            host = httpx.URL(url).host
        except (httpx.InvalidURL, ValueError):
            raise InvalidUrl("url is malformed") from None
        if "%" in host and ":" not in host:  # percent-escapes resolve to nothing
            raise InvalidUrl("url host must not contain percent-escapes")
        if ":" not in host and (".." in host or host.startswith(".")):
            raise InvalidUrl("url host has an empty label")
        host = host.removesuffix(".")  # "127.0.0.1." and "localhost." are the same hosts
        # RFC 6761: these names are loopback wherever they are resolved.
        if (host == "localhost" or host.endswith(".localhost")) and not self.allow_loopback:
            raise AddressRefused(f"host {host} is loopback")
        ip = _literal_ip(host)
        if ip is not None:
            self.check_address(ip)

    async def resolve(self, host: str, port: int) -> list[str]:
        """Every address `host` resolves to, refusing the name if any one of them is refused."""
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        for address in addresses:
            self.check_address(ipaddress.ip_address(address))
        return addresses
