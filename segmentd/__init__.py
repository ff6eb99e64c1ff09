"""segmentd: network segment management speaking Neutron's /v2.0 API."""

from segmentd.events.signing import SignatureError, verify_delivery

__all__ = ["SignatureError", "verify_delivery"]
