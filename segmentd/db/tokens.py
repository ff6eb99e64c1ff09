"""Token rows: looked up by the hash of the secret, never by the secret itself."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from segmentd.db.models import tokens as t
from segmentd.errors import TokenNameInUse

BY_HASH = select(t).where(t.c.token_hash == bindparam("token_hash"))


async def insert_token(conn: AsyncConnection, row: dict[str, Any]) -> None:
    """Insert a token; TokenNameInUse if the name is taken (in a savepoint, so the caller's
    transaction survives, e.g. two servers bootstrapping one database at once)."""
    try:
        async with conn.begin_nested():
            await conn.execute(insert(t), row)
    except IntegrityError:
        raise TokenNameInUse(name=row["name"]) from None


async def get_token_by_hash(conn: AsyncConnection, token_hash: str):
    return (await conn.execute(BY_HASH, {"token_hash": token_hash})).mappings().first()


async def list_tokens(conn: AsyncConnection):
    return (await conn.execute(select(t).order_by(t.c.created_at, t.c.name))).mappings().all()


async def count_tokens(conn: AsyncConnection) -> int:
    return (await conn.execute(select(func.count()).select_from(t))).scalar()


async def revoke_token(conn: AsyncConnection, id_or_name: str, now: datetime) -> int:
    """Mark a token revoked; returns how many rows changed (0 when unknown or already revoked)."""
    stmt = (
        update(t)
        .where(or_(t.c.id == id_or_name, t.c.name == id_or_name), t.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return (await conn.execute(stmt)).rowcount
