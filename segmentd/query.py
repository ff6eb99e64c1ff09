"""What a list request asks for, as plain data shared by the API, services and db layers."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# The form of every id segmentd hands out; anything else can name no row.
_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def is_resource_id(value: str) -> bool:
    """Whether `value` could be an id (a lower-case canonical UUID): others need no lookup."""
    return _ID.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class ListQuery:
    filters: dict[str, list[str]] = field(default_factory=dict)  # repeated values mean OR
    sorts: tuple[tuple[str, str], ...] = ()  # (attribute, "asc" | "desc")
    limit: int = 0  # rows per page; the API layer clamps it to the configured maximum
    marker: str | None = None  # id of the last row of the previous page
    page_reverse: bool = False


@dataclass(frozen=True, slots=True)
class Page:
    items: list[dict]
    has_more: bool  # rows exist beyond this page in the direction of travel


# Host names as agents report them: DNS labels, dots, underscores (some deployments).
_HOST = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,253}[A-Za-z0-9])?$")


def is_host_name(value: str) -> bool:
    """Whether `value` could name a host: others need no lookup."""
    return _HOST.fullmatch(value) is not None
