"""Token validation behind one small interface: segmentd's own tokens here, Keystone's in
auth/keystone.py."""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from segmentd.db import tokens as rows
from segmentd.db.engine import read_connection

LOG = logging.getLogger(__name__)
CACHE_MAX_ENTRIES = 10_000
TOKEN_PREFIX = "sgd_"  # segmentd's own tokens: recognisable in logs and secret scanners


def hash_token(secret: str) -> str:
    """SHA-256 of the secret: tokens carry 256 random bits, so no slow hash is needed."""
    return hashlib.sha256(secret.encode()).hexdigest()


def token_state(row, now: datetime | None = None) -> str:
    """active, expired or revoked."""
    now = now or datetime.now(UTC).replace(tzinfo=None)
    if row["revoked_at"] is not None:
        return "revoked"
    if row["expires_at"] is not None and row["expires_at"] <= now:
        return "expired"
    return "active"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a valid token speaks for."""

    token_id: str
    project_id: str
    roles: frozenset[str]
    host: str | None = None
    user_id: str | None = None
    user_name: str | None = None


class TokenValidator(Protocol):
    async def validate(self, token: str,
                       before_asking: Callable[[], None] | None = None) -> Principal | None:
        """The principal of a valid token; None for an unknown, expired or revoked one.

        `before_asking` is called before a token is sent to another service (Keystone),
        and may raise to refuse the request first."""


class DatabaseTokenValidator:
    """Tokens issued by `segmentd token create`, looked up by hash.

    Results (valid or not) are cached for `cache_seconds` per process, so a revocation or
    expiry takes effect within that window.
    """

    def __init__(self, engine: AsyncEngine, cache_seconds: float) -> None:
        self._engine = engine
        self._ttl = cache_seconds
        self._cache: OrderedDict[str, tuple[float, Principal | None]] = OrderedDict()

    async def validate(self, token: str,
                       before_asking: Callable[[], None] | None = None) -> Principal | None:
        key = hash_token(token)
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        principal = await self._lookup(key)
        if self._ttl > 0:
            self._cache[key] = (now + self._ttl, principal)
            self._cache.move_to_end(key)
            while len(self._cache) > CACHE_MAX_ENTRIES:
                self._cache.popitem(last=False)
        return principal

    async def _lookup(self, token_hash: str) -> Principal | None:
        async with read_connection(self._engine) as conn:
            row = await rows.get_token_by_hash(conn, token_hash)
        if row is None:
            LOG.info("refused an unknown token")
            return None
        state = token_state(row)
        if state != "active":
            LOG.info("refused %s token %s (%s)", state, row["id"], row["name"])
            return None
        return Principal(
            token_id=row["id"],
            project_id=row["project_id"],
            roles=frozenset(row["roles"].split(",")),
            host=row["host"],
            user_id=row["name"],
            user_name=row["name"],
        )
