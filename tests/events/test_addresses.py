"""The webhook address policy: which URLs and resolved addresses a delivery may reach."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import pytest

from segmentd.config import Settings
from segmentd.events.addresses import AddressPolicy, AddressRefused, InvalidUrl

DEFAULT = AddressPolicy([])
LOOPBACK_OK = AddressPolicy([], allow_loopback=True)
LISTED = AddressPolicy(["10.0.0.0/8", "127.0.0.1/32", "169.254.169.254/32", "fd00::/8"])


class FixedDnsLoop(asyncio.SelectorEventLoop):
    """A real event loop whose resolver answers from a fixed table, like a hosts file."""

    def __init__(self, records: dict[str, list[str]]) -> None:
        super().__init__()
        self.records = records

    async def getaddrinfo(self, host, port, *args, **kwargs):
        if host not in self.records:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in self.records[host]
        ]


def run_with_dns(records: dict[str, list[str]], coro):
    with asyncio.Runner(loop_factory=lambda: FixedDnsLoop(records)) as runner:
        return runner.run(coro)


def ip(text: str):
    return ipaddress.ip_address(text)


class TestCheckAddressDefault:
    @pytest.mark.parametrize(
        ("address", "reason"),
        [
            ("0.0.0.0", "unspecified"),
            ("::", "unspecified"),
            ("::ffff:0.0.0.0", "unspecified"),
            ("224.0.0.1", "multicast"),
            ("ff02::1", "multicast"),
            ("240.0.0.1", "reserved"),
            ("255.255.255.255", "reserved"),
            ("::7f00:1", "reserved"),  # deprecated IPv4-compatible form of 127.0.0.1
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("::1", "loopback"),
            ("::ffff:127.0.0.1", "loopback"),
            ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
            ("2002:a9fe:a9fe::1", "link-local or cloud metadata"),  # 6to4 of 169.254.169.254
            ("2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback"),  # Teredo, client 127.0.0.1
            ("64:ff9b::7f00:1", "loopback"),  # NAT64 of 127.0.0.1
            ("64:ff9b:1::a9fe:a9fe", "link-local or cloud metadata"),  # the /96 layout
            ("64:ff9b:1:7f00:0:100:808:808", "loopback"),  # /48 layout: 127.0.0.1
            ("64:ff9b:1:7f:0:1:808:808", "loopback"),  # /56 layout: 127.0.0.1
            ("169.254.169.254", "link-local or cloud metadata"),
            ("::ffff:169.254.169.254", "link-local or cloud metadata"),
            ("fd00:ec2::254", "link-local or cloud metadata"),
            ("100.100.100.200", "link-local or cloud metadata"),
            ("169.254.0.1", "link-local or cloud metadata"),
            ("fe80::1", "link-local or cloud metadata"),
            ("fe80::1%eth0", "link-local or cloud metadata"),
        ],
    )
    def test_refused_with_the_rule_named(self, address, reason):
        with pytest.raises(AddressRefused) as err:
            DEFAULT.check_address(ip(address))
        assert str(err.value).startswith("address ")
        assert str(err.value).endswith(f" is {reason}")

    def test_message_names_the_address(self):
        with pytest.raises(AddressRefused) as err:
            DEFAULT.check_address(ip("169.254.169.254"))
        assert str(err.value) == "address 169.254.169.254 is link-local or cloud metadata"

    def test_mapped_address_is_reported_as_its_ipv4_address(self):
        with pytest.raises(AddressRefused) as err:
            DEFAULT.check_address(ip("::ffff:127.0.0.1"))
        assert str(err.value) == "address 127.0.0.1 is loopback"

    @pytest.mark.parametrize(
        "address",
        [
            "8.8.8.8",
            "10.0.0.5",
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "::ffff:8.8.8.8",
            "2002:808:808::1",  # 6to4 of 8.8.8.8
            "64:ff9b::808:808",
            "2001:4860:4860::8888",
            "fd12:3456::1",
        ],
    )
    def test_public_and_private_addresses_are_allowed(self, address):
        assert DEFAULT.check_address(ip(address)) is None

    def test_refusal_is_a_value_error(self):
        assert issubclass(AddressRefused, ValueError)
        assert issubclass(InvalidUrl, ValueError)


class TestCheckAddressAllowLoopback:
    @pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.53", "::1", "::ffff:127.0.0.1"])
    def test_loopback_is_allowed(self, address):
        assert LOOPBACK_OK.check_address(ip(address)) is None

    @pytest.mark.parametrize(
        "address", ["169.254.169.254", "fe80::1", "0.0.0.0", "::", "224.0.0.1", "240.0.0.1"]
    )
    def test_everything_else_refused_by_default_stays_refused(self, address):
        with pytest.raises(AddressRefused):
            LOOPBACK_OK.check_address(ip(address))


class TestCheckAddressAllowedNetworks:
    @pytest.mark.parametrize(
        "address",
        ["10.1.2.3", "127.0.0.1", "::ffff:10.9.9.9", "169.254.169.254", "fd00:ec2::254", "fd12::1"],
    )
    def test_listed_networks_are_allowed_even_loopback_and_metadata(self, address):
        assert LISTED.check_address(ip(address)) is None

    @pytest.mark.parametrize(
        "address", ["8.8.8.8", "192.168.1.1", "127.0.0.2", "::1", "169.254.1.1", "2001:db8::1"]
    )
    def test_only_listed_networks_are_allowed(self, address):
        with pytest.raises(AddressRefused, match="outside webhook_allowed_networks"):
            LISTED.check_address(ip(address))

    def test_allow_loopback_does_not_widen_a_listing(self):
        policy = AddressPolicy(["10.0.0.0/8"], allow_loopback=True)
        with pytest.raises(AddressRefused, match="outside webhook_allowed_networks"):
            policy.check_address(ip("127.0.0.1"))

    @pytest.mark.parametrize(
        ("address", "reason"),
        [("0.0.0.0", "unspecified"), ("224.0.0.1", "multicast"), ("240.0.0.1", "reserved"),
         ("::", "unspecified"), ("ff02::1", "multicast")],
    )
    def test_unspecified_multicast_and_reserved_are_refused_even_when_listed(self, address, reason):
        policy = AddressPolicy(["0.0.0.0/0", "::/0"])
        with pytest.raises(AddressRefused, match=reason):
            policy.check_address(ip(address))

    def test_host_bits_in_a_listed_network_are_tolerated_like_the_config_validator(self):
        assert AddressPolicy(["10.1.2.3/8"]).check_address(ip("10.200.0.1")) is None

    def test_from_settings(self):
        settings = Settings(webhook_allowed_networks="127.0.0.1/32,10.0.0.0/8")
        policy = AddressPolicy.from_settings(settings)
        assert policy.check_address(ip("127.0.0.1")) is None
        with pytest.raises(AddressRefused, match="outside"):
            policy.check_address(ip("8.8.8.8"))

    def test_from_settings_defaults_refuse_loopback(self):
        policy = AddressPolicy.from_settings(Settings())
        with pytest.raises(AddressRefused, match="loopback"):
            policy.check_address(ip("127.0.0.1"))
        assert AddressPolicy.from_settings(Settings(webhook_allow_loopback=True)).check_address(
            ip("127.0.0.1")
        ) is None


class TestCheckUrl:
    @pytest.mark.parametrize(
        "url",
        [
            "https://hooks.example.com/segmentd",
            "http://hooks.example.com:8080/x?y=1#frag",
            "HTTPS://Hooks.Example.COM/",
            "https://example.com:1/",
            "https://example.com:65535/",
            "http://10.0.0.5/hook",
            "https://[2001:4860:4860::8888]:8443/hook",
            "http://hooks.internal.example:8080/",  # names are judged when resolved
            "http://[64:ff9b:1::808:808]/",  # local-use NAT64 (/96 layout) of 8.8.8.8
            "https://example.com/" + "a" * (2048 - len("https://example.com/")),
        ],
    )
    def test_acceptable(self, url):
        assert DEFAULT.check_url(url) is None

    @pytest.mark.parametrize(
        ("url", "reason"),
        [
            ("", "scheme must be http or https"),
            ("example.com/hook", "scheme must be http or https"),
            ("ftp://example.com/", "scheme must be http or https"),
            ("file:///etc/passwd", "scheme must be http or https"),
            ("gopher://example.com:70/_x", "scheme must be http or https"),
            ("javascript:alert(1)", "scheme must be http or https"),
            ("http:///path", "no host"),
            ("https://:8080/", "no host"),
            ("https://user:pass@example.com/", "credentials"),
            ("https://user@example.com/", "credentials"),
            ("https://@example.com/", "credentials"),
            ("http://example.com:0/", "port"),
            ("http://example.com:65536/", "port"),
            ("http://example.com:abc/", "port"),
            ("http://exa mple.com/", "whitespace"),
            ("http://example.com/\n", "whitespace"),
            ("http://example.com/\r\nX-Injected: 1", "whitespace"),
            ("http://example.com/\x00", "control"),
            ("http://example.com/\x7f", "control"),
            ("http://example.com/\u00a0", "whitespace"),
            ("http://example.com\\@127.0.0.1/", "backslash"),
            ("http://[::1/", "malformed"),
            ("http://%31%32%37.0.0.1/", "percent-escapes"),
            ("http://127.0.0.1../", "empty label"),
            ("http://127.0.0.1.../", "empty label"),
            ("http://hooks..example.com/", "empty label"),
            ("http://\uff11\uff12\uff17.\uff10.\uff10.\uff11/", "malformed"),  # fullwidth digits
            ("https://example.com/" + "a" * 2048, "longer than 2048"),
        ],
    )
    def test_invalid(self, url, reason):
        with pytest.raises(InvalidUrl, match=reason):
            DEFAULT.check_url(url)

    @pytest.mark.parametrize(
        ("url", "reason"),
        [
            ("http://127.0.0.1/", "loopback"),
            ("http://127.0.0.1:8080/admin", "loopback"),
            ("http://[::1]:8080/", "loopback"),
            ("http://[::ffff:127.0.0.1]/", "loopback"),
            ("http://[2002:7f00:1::]/", "loopback"),
            ("http://localhost/", "host localhost is loopback"),
            ("http://LOCALHOST./", "host localhost is loopback"),
            ("http://hooks.localhost:8080/", "host hooks.localhost is loopback"),
            ("http://127.0.0.1./", "loopback"),

            ("http://2130706433/", "loopback"),  # 127.0.0.1 as one number
            ("http://0x7f000001/", "loopback"),
            ("http://127.1/", "loopback"),
            ("http://169.254.169.254/latest/meta-data/", "link-local or cloud metadata"),
            ("http://[fd00:ec2::254]/", "link-local or cloud metadata"),
            ("http://100.100.100.200/", "link-local or cloud metadata"),
            ("http://[fe80::1%25eth0]/", "link-local or cloud metadata"),
            ("http://[FE80::1]/", "link-local or cloud metadata"),
            ("http://0.0.0.0:8080/", "unspecified"),
            ("http://[::]/", "unspecified"),
            ("http://224.0.0.1/", "multicast"),
        ],
    )
    def test_literal_addresses_are_checked_now(self, url, reason):
        with pytest.raises(AddressRefused, match=reason):
            DEFAULT.check_url(url)

    def test_literal_addresses_follow_the_listing(self):
        assert LISTED.check_url("http://127.0.0.1:9000/hook") is None
        assert LISTED.check_url("http://[fd00:ec2::254]/") is None
        with pytest.raises(AddressRefused, match="outside"):
            LISTED.check_url("http://8.8.8.8/")

    def test_message_does_not_echo_the_url(self):
        with pytest.raises(InvalidUrl) as err:
            DEFAULT.check_url("https://user:token-abc@example.com/")
        assert "token-abc" not in str(err.value)


class TestResolve:
    def test_literal_address(self):
        assert asyncio.run(LOOPBACK_OK.resolve("127.0.0.1", 80)) == ["127.0.0.1"]

    def test_localhost_is_refused_by_default(self):
        with pytest.raises(AddressRefused, match="loopback"):
            asyncio.run(DEFAULT.resolve("localhost", 80))

    def test_localhost_with_allow_loopback(self):
        addresses = asyncio.run(LOOPBACK_OK.resolve("localhost", 80))
        assert addresses and all(ip(a).is_loopback for a in addresses)

    def test_unknown_name_raises_os_error(self):
        with pytest.raises(OSError):
            asyncio.run(DEFAULT.resolve("no-such-host.invalid", 80))

    def test_every_address_of_a_name_is_returned_once(self):
        records = {"hooks.test": ["10.0.0.1", "10.0.0.2", "10.0.0.1", "fd12::1"]}
        addresses = run_with_dns(records, DEFAULT.resolve("hooks.test", 443))
        assert addresses == ["10.0.0.1", "10.0.0.2", "fd12::1"]

    @pytest.mark.parametrize("bad", ["127.0.0.1", "169.254.169.254", "::1", "::ffff:127.0.0.1"])
    @pytest.mark.parametrize("bad_first", [True, False])
    def test_one_refused_address_refuses_the_name(self, bad, bad_first):
        records = {"hooks.test": [bad, "10.0.0.1"] if bad_first else ["10.0.0.1", bad]}
        with pytest.raises(AddressRefused):
            run_with_dns(records, DEFAULT.resolve("hooks.test", 443))

    def test_listing_applies_to_resolved_addresses(self):
        records = {"hooks.test": ["10.0.0.1", "192.168.0.1"]}
        with pytest.raises(AddressRefused, match="192.168.0.1 is outside"):
            run_with_dns(records, LISTED.resolve("hooks.test", 443))
