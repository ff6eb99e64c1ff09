"""Delivery signatures: what a receiver checks, including every way it must refuse."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from segmentd.events.signing import (
    DEFAULT_TOLERANCE_SECONDS,
    HEADER_EVENT_ID,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    SignatureError,
    sign,
    signature_headers,
    verify_delivery,
)

SECRET = "s3cret-for-tests"
BODY = b'{"type": "segment.created", "id": "9f1c"}'
NOW = 1_700_000_000


def signed(body: bytes = BODY, secret: str | bytes = SECRET, now: float = NOW) -> dict[str, str]:
    return signature_headers(secret, "ev-1", body, now=now)


class TestSign:
    def test_signature_is_hmac_sha256_over_timestamp_dot_body(self):
        expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
        assert sign(SECRET, NOW, BODY) == "sha256=" + expected

    def test_str_and_bytes_secrets_sign_alike(self):
        assert sign(SECRET, NOW, BODY) == sign(SECRET.encode(), NOW, BODY)

    def test_headers_carry_event_id_whole_second_timestamp_and_signature(self):
        headers = signature_headers(SECRET, "ev-1", BODY, now=NOW + 0.9)
        assert headers == {
            HEADER_EVENT_ID: "ev-1",
            HEADER_TIMESTAMP: str(NOW),
            HEADER_SIGNATURE: sign(SECRET, NOW, BODY),
        }


class TestVerifyDelivery:
    def test_round_trip_returns_the_timestamp(self):
        assert verify_delivery(SECRET, signed(), BODY, now=NOW) == NOW

    def test_without_now_uses_the_clock(self):
        headers = signature_headers(SECRET, "ev-1", BODY)
        assert verify_delivery(SECRET, headers, BODY) == int(headers[HEADER_TIMESTAMP])

    @pytest.mark.parametrize("case", [str.lower, str.upper, str.swapcase])
    def test_header_names_are_case_insensitive(self, case):
        headers = {case(k): v for k, v in signed().items()}
        assert verify_delivery(SECRET, headers, BODY, now=NOW) == NOW

    def test_bytes_header_values_are_accepted(self):
        headers = {k: v.encode() for k, v in signed().items()}
        assert verify_delivery(SECRET, headers, BODY, now=NOW) == NOW

    def test_tampered_body_is_refused(self):
        with pytest.raises(SignatureError, match="signature does not match"):
            verify_delivery(SECRET, signed(), BODY.replace(b"created", b"deleted"), now=NOW)

    def test_reserialized_json_is_refused(self):
        with pytest.raises(SignatureError, match="signature does not match"):
            verify_delivery(SECRET, signed(), BODY.replace(b": ", b":"), now=NOW)

    def test_wrong_secret_is_refused(self):
        with pytest.raises(SignatureError, match="signature does not match"):
            verify_delivery("another-secret", signed(), BODY, now=NOW)

    def test_timestamp_moved_forward_is_refused(self):
        """A replayer cannot freshen an old delivery: the timestamp is signed."""
        headers = signed(now=NOW - 3600)
        headers[HEADER_TIMESTAMP] = str(NOW)
        with pytest.raises(SignatureError, match="signature does not match"):
            verify_delivery(SECRET, headers, BODY, now=NOW)

    @pytest.mark.parametrize("signature", ["", "sha256=", "sha1=" + "0" * 40, "0" * 64])
    def test_malformed_signature_is_refused(self, signature):
        headers = signed() | {HEADER_SIGNATURE: signature}
        with pytest.raises(SignatureError, match="signature does not match"):
            verify_delivery(SECRET, headers, BODY, now=NOW)

    @pytest.mark.parametrize(
        "timestamp", ["", "abc", "-5", "+5", "1.5", " 1700000000", "1e9", "١٢٣", "9" * 13]
    )
    def test_malformed_timestamp_is_refused(self, timestamp):
        headers = signed() | {HEADER_TIMESTAMP: timestamp}
        with pytest.raises(SignatureError, match="malformed timestamp"):
            verify_delivery(SECRET, headers, BODY, now=NOW)

    @pytest.mark.parametrize("missing", [HEADER_TIMESTAMP, HEADER_SIGNATURE])
    def test_missing_header_is_refused_by_name(self, missing):
        headers = {k: v for k, v in signed().items() if k != missing}
        with pytest.raises(SignatureError, match=f"missing header {missing}"):
            verify_delivery(SECRET, headers, BODY, now=NOW)

    @pytest.mark.parametrize(
        ("offset", "accepted"),
        [
            (0, True),
            (DEFAULT_TOLERANCE_SECONDS, True),
            (DEFAULT_TOLERANCE_SECONDS + 1, False),  # replayed or badly delayed
            (-DEFAULT_TOLERANCE_SECONDS, True),  # sender's clock ahead of ours
            (-DEFAULT_TOLERANCE_SECONDS - 1, False),
        ],
    )
    def test_default_tolerance_edges(self, offset, accepted):
        if accepted:
            assert verify_delivery(SECRET, signed(), BODY, now=NOW + offset) == NOW
        else:
            with pytest.raises(SignatureError, match="stale or replayed"):
                verify_delivery(SECRET, signed(), BODY, now=NOW + offset)

    def test_custom_tolerance(self):
        assert verify_delivery(SECRET, signed(), BODY, tolerance=10, now=NOW + 10) == NOW
        with pytest.raises(SignatureError, match="stale or replayed"):
            verify_delivery(SECRET, signed(), BODY, tolerance=10, now=NOW + 10.5)

    def test_stale_delivery_is_refused_before_the_signature_is_checked(self):
        """Age is judged first, so an old delivery is refused whatever its signature."""
        with pytest.raises(SignatureError, match="stale or replayed"):
            verify_delivery("another-secret", signed(), BODY, now=NOW + 86_400)
