"""Token buckets (per server process: N processes allow N times the rate).

Two limits, one design. Callers without a valid token (failed authentication, paths with
no route) spend from their client address's bucket, on by default: that traffic is
accountable to no one, and it is refused before anything is recorded for it. Authenticated
callers spend from their token's bucket only where an operator configures one: a client
that sends one request at a time must never see a 429 at the defaults, however fast the
server answers it (Neutron has no API rate limit at all).
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict

from segmentd.config import Settings
from segmentd.context import RequestContext
from segmentd.errors import OverLimit

MAX_TRACKED = 50_000  # least recently seen keys are forgotten beyond this
IPV6_CLIENT_PREFIX = 64  # one IPv6 client holds a /64: its addresses share a bucket
# New tokens sent to Keystone from addresses whose anonymous budget is spent, per process:
# clients behind one proxy or NAT as a flooder still get theirs validated, and Keystone
# sees at most this many more validations a second.
UNPROVEN_PER_SECOND, UNPROVEN_BURST = 10.0, 20


class RateLimiter:
    def __init__(self, per_second: float, burst: int) -> None:
        self.per_second = per_second
        self.burst = burst
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.per_second > 0

    def take(self, key: str) -> None:
        """Spend one request for `key`; OverLimit (429) with Retry-After when none is left."""
        left = self._spend(key)
        if left is not None:
            raise OverLimit(retry_after=max(1, math.ceil((1.0 - left) / self.per_second)))

    def refund(self, key: str) -> None:
        """Give back one request spent for `key` (never beyond the burst)."""
        if self.enabled and key in self._buckets:
            tokens, stamp = self._buckets[key]
            self._buckets[key] = (min(float(self.burst), tokens + 1.0), stamp)

    def allows(self, key: str) -> bool:
        """Spend one for `key` if it has one left (always True while the limit is off)."""
        return not self.enabled or self._spend(key) is None

    def _spend(self, key: str) -> float | None:
        """None once one is spent; what is left (under one) when nothing could be."""
        now = time.monotonic()
        tokens, stamp = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - stamp) * self.per_second)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return tokens
        self._buckets[key] = (tokens - 1.0, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > MAX_TRACKED:
            self._buckets.popitem(last=False)
        return None


def address_key(host: str | None) -> str:
    """The bucket of a client address (an IPv6 one by its /64)."""
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return f"address:{host or 'unknown'}"
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return f"address:{address.ipv4_mapped}"
        return f"address:{ipaddress.ip_network((address, IPV6_CLIENT_PREFIX), strict=False)}"
    return f"address:{address}"


class RequestLimits:
    """The per-token limit (operator opt-in), the per-address limit of anonymous callers,
    and the budget of audit rows a caller's refused requests may add."""

    def __init__(self, settings: Settings) -> None:
        self.per_token = RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)
        self.anonymous = RateLimiter(settings.anonymous_rate_limit_per_second,
                                     settings.anonymous_rate_limit_burst)
        self.exempt_admin = settings.rate_limit_exempt_admin
        self.refusal_records = RateLimiter(settings.audit_refusals_per_second,
                                           settings.audit_refusals_burst)
        self.unrecorded_refusals = 0  # refusals logged instead of stored, since start
        self.unproven = RateLimiter(
            UNPROVEN_PER_SECOND if self.anonymous.enabled else 0.0, UNPROVEN_BURST)
        self.host_changes = RateLimiter(settings.host_report_changes_per_minute / 60,
                                        settings.host_report_changes_burst)

    def take_host_change(self, host: str) -> None:
        """One report that changes what `host` reports: a host's credential may not make
        segmentd store events as fast as it can send reports (OverLimit beyond)."""
        if self.host_changes.enabled:
            self.host_changes.take(f"host:{host}")

    def record_refusal(self, key: str) -> bool:
        """Whether this refusal of the caller `key` may be stored in the audit trail: a
        token that may not change anything must not be able to grow a table without bound
        by sending requests that are refused. Beyond the budget it is logged instead."""
        if self.refusal_records.allows(key):
            return True
        self.unrecorded_refusals += 1
        return False

    def take_caller(self, ctx: RequestContext, key: str) -> None:
        """One request of an authenticated caller (development mode: every caller)."""
        if self.per_token.enabled and not (ctx.is_admin and self.exempt_admin):
            self.per_token.take(key)

    def charge_unknown_token(self, host: str | None) -> bool:
        """Before a token this process does not know is sent to Keystone: paid from the
        client address' anonymous budget (True: refund it if the token proves valid), or,
        once that is spent, from the process' small allowance for such tokens (False);
        OverLimit (429) when both are spent."""
        if not self.anonymous.enabled:
            return False
        if self.anonymous.allows(address_key(host)):
            return True
        self.unproven.take("unproven")
        return False

    def refund_anonymous(self, host: str | None) -> None:
        """A request charged before its token was sent to Keystone proved to be someone's."""
        self.anonymous.refund(address_key(host))

    def take_anonymous(self, host: str | None) -> None:
        """One request of a caller without a valid token, from client address `host`."""
        if self.anonymous.enabled:
            self.anonymous.take(address_key(host))
