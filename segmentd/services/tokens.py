"""Tokens: issued once, stored as a hash, expiring and revocable."""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from segmentd.auth.tokens import TOKEN_PREFIX, hash_token, token_state
from segmentd.db import tokens as rows
from segmentd.errors import InvalidInput, TokenNameInUse
from segmentd.services.clock import utcnow

__all__ = [
    "create_token", "ensure_bootstrap_token", "hash_token", "list_tokens", "revoke_token", "token_state",
]

KNOWN_ROLES = frozenset({"admin", "member", "reader", "service"})
BOOTSTRAP_NAME = "bootstrap-admin"
_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> timedelta:
    """`30d`, `12h`, `15m`, `90s`."""
    m = _DURATION.match(text.strip())
    if not m or int(m.group(1)) == 0:
        raise InvalidInput(error_message=f"'{text}' is not a duration such as 30d, 12h or 15m")
    return timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})


def parse_roles(text: str) -> list[str]:
    roles = sorted({r.strip().lower() for r in text.split(",") if r.strip()})
    unknown = [r for r in roles if r not in KNOWN_ROLES]
    if not roles or unknown:
        raise InvalidInput(
            error_message=f"roles must be a comma-separated subset of {sorted(KNOWN_ROLES)}"
        )
    return roles


async def create_token(
    conn: AsyncConnection,
    *,
    project_id: str,
    roles: list[str],
    name: str | None = None,
    host: str | None = None,
    expires_in: timedelta | None = None,
    secret: str | None = None,
) -> tuple[str, dict]:
    """Store a new token and return (secret, row); the secret is never stored or shown again."""
    for what, value in (("project", project_id), ("name", name), ("host", host)):
        if value is not None and not (0 < len(value) <= 255 and value.isprintable()):
            raise InvalidInput(error_message=f"{what} must be 1 to 255 printable characters")
    if not project_id:
        raise InvalidInput(error_message="project must be 1 to 255 printable characters")
    secret = secret or TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    row = {
        "id": str(uuid.uuid4()),
        "name": name or f"token-{now:%Y%m%d%H%M%S}-{secrets.token_hex(3)}",
        "token_hash": hash_token(secret),
        "project_id": project_id,
        "roles": ",".join(roles),
        "host": host,
        "created_at": now,
        # Rounded up: a token lives at least as long as asked, never a fraction less.
        "expires_at": now + expires_in + timedelta(seconds=1) if expires_in else None,
        "revoked_at": None,
    }
    await rows.insert_token(conn, row)
    return secret, row


async def ensure_bootstrap_token(conn: AsyncConnection, secret: str | None) -> str | None:
    """On a database without tokens, create the admin token; return its secret if created."""
    if await rows.count_tokens(conn):
        return None
    try:
        secret, _row = await create_token(
            conn, project_id="admin", roles=["admin", "member", "reader"], name=BOOTSTRAP_NAME,
            secret=secret,
        )
    except TokenNameInUse:
        return None  # another server process bootstrapped the same database just now
    return secret


async def revoke_token(conn: AsyncConnection, id_or_name: str) -> bool:
    return await rows.revoke_token(conn, id_or_name, utcnow()) > 0


async def list_tokens(conn: AsyncConnection):
    return await rows.list_tokens(conn)
