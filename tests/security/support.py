"""Shared by the security tests: token-mode apps, tokens revoked, expired and read in-process,
the segmentd CLI (tests/factories.py issues tokens)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from segmentd.db.models import tokens as tokens_table
from segmentd.services import tokens
from segmentd.services.clock import utcnow
from tests.conftest import Api, build_api, in_transaction
from tests.e2e.server import clean_env, segmentd  # noqa: F401 (used by the security tests)

# Validation results are not cached, so a revocation or an expiry shows at once. The
# matrix sends hundreds of tokenless requests from the one test client address: the
# per-address limit of anonymous callers is off here (tests/limits tests it).
TOKEN_MODE = {"auth_mode": "token", "token_cache_seconds": 0, "anonymous_rate_limit_per_second": 0}


def token_api(db_url: str, **overrides) -> Api:
    """The real app in token mode on `db_url` (enter `api.client` to start it)."""
    return build_api(db_url, **{**TOKEN_MODE, **overrides})


def auth(secret: str) -> dict[str, str]:
    return {"X-Auth-Token": secret}


def revoke_token(api: Api, id_or_name: str) -> None:
    assert in_transaction(api, lambda conn: tokens.revoke_token(conn, id_or_name))


def expire_token(api: Api, name: str) -> None:
    """Move a token's expiry a minute into the past (no waiting for the clock)."""
    past = utcnow() - timedelta(minutes=1)
    in_transaction(api, lambda conn: conn.execute(
        update(tokens_table).where(tokens_table.c.name == name).values(expires_at=past)
    ))


def token_rows(api: Api) -> list[dict]:
    async def rows(conn):
        return [dict(r) for r in (await conn.execute(select(tokens_table))).mappings()]

    return in_transaction(api, rows)


