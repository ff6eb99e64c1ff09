"""Signatures on outbound events, and the check a receiver runs on them.

A delivery carries three headers: the event id, the Unix time it was signed, and
`sha256=<hex>` — HMAC-SHA256 keyed with the subscription's secret over
"<timestamp>.<raw body>". Signing the timestamp with the body lets a receiver refuse a
replayed delivery by its age without trusting anything unsigned.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

HEADER_EVENT_ID = "X-Segmentd-Event-Id"
HEADER_TIMESTAMP = "X-Segmentd-Timestamp"
HEADER_SIGNATURE = "X-Segmentd-Signature"
SCHEME = "sha256="
DEFAULT_TOLERANCE_SECONDS = 300  # a receiver's window for clock skew and delivery delay


class SignatureError(ValueError):
    """A delivery that must not be trusted; the message says why."""


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def sign(secret: str | bytes, timestamp: int, body: bytes) -> str:
    """`sha256=<hex>` over "<timestamp>.<body>"."""
    mac = hmac.new(_key(secret), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return SCHEME + mac.hexdigest()


def signature_headers(
    secret: str | bytes, event_id: str, body: bytes, now: float | None = None
) -> dict[str, str]:
    """The three headers of a signed delivery."""
    timestamp = int(time.time() if now is None else now)
    return {
        HEADER_EVENT_ID: event_id,
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_SIGNATURE: sign(secret, timestamp, body),
    }


def _header(headers: Mapping[str, str], name: str) -> str:
    """Header lookup that ignores case, whatever mapping the receiver's framework hands us."""
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value if isinstance(value, str) else value.decode()
    raise SignatureError(f"missing header {name}")


def verify_delivery(
    secret: str | bytes,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> int:
    """Check a delivery's signature and age; return its timestamp or raise SignatureError.

    `body` must be the raw bytes received, before any JSON parsing.
    """
    raw_ts = _header(headers, HEADER_TIMESTAMP)
    signature = _header(headers, HEADER_SIGNATURE)
    if not raw_ts.isascii() or not raw_ts.isdigit() or len(raw_ts) > 12:
        raise SignatureError("malformed timestamp")
    timestamp = int(raw_ts)
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise SignatureError("timestamp outside the allowed window (stale or replayed)")
    if not hmac.compare_digest(sign(secret, timestamp, body), signature):
        raise SignatureError("signature does not match")
    return timestamp
