"""Small rules every service shares."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from segmentd.errors import RevisionNumberConstraintFailed


def utcnow() -> datetime:
    """Timestamps are stored as naive UTC, whole seconds, as Neutron shows them."""
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def check_revision(row: Mapping[str, Any], if_revision: int | None) -> None:
    """Neutron's If-Match: revision_number=N; a mismatch is 412 and changes nothing."""
    if if_revision is not None and row["revision_number"] != if_revision:
        raise RevisionNumberConstraintFailed(constraint=if_revision, current=row["revision_number"])
