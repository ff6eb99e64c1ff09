"""Schema upgrades and the models-vs-database check, through Alembic's API."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from segmentd.db.engine import make_engine
from segmentd.db.models import Base

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database to `revision`; safe to run on every start."""
    command.upgrade(alembic_config(url), revision)


def head_revision(url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


async def _inspect(url: str) -> tuple[str | None, list]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            def probe(sync_conn):
                ctx = MigrationContext.configure(sync_conn, opts={"compare_type": True})
                return ctx.get_current_revision(), compare_metadata(ctx, Base.metadata)
            return await conn.run_sync(probe)
    finally:
        await engine.dispose()


def check(url: str) -> tuple[str | None, str | None, list]:
    """(current revision, head revision, differences between the models and the database)."""
    current, diffs = asyncio.run(_inspect(url))
    return current, head_revision(url), diffs
