"""The Alembic migrations build exactly the schema the models describe, on every database."""

from segmentd.db import migrate


def test_models_and_migrations_agree(db_url):
    current, head, diffs = migrate.check(db_url)
    assert current == head == "0010"
    assert diffs == []
