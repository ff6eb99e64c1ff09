"""What a list request asks for, as plain data shared by the API, services and db layers."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

# The form of every id segmentd hands out; anything else can name no row.
_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def is_resource_id(value: str) -> bool:
    """Whether `value` could be an id (a lower-case canonical UUID): others need no lookup."""
    return _ID.fullmatch(value) is not None


class Rows(StrEnum):
    """Kinds of rows a list statement can be scoped to: services/scoping.py asks the policy
    which ones a caller may read; each db module knows the kinds its table has."""

    EVERY = "every"  # every project's rows
    OWN = "own"  # the caller's project's rows
    SHARED = "shared"  # rows of shared networks
    ON_OWN_NETWORK = "on_own_network"  # ports of any project on the caller's networks


@dataclass(frozen=True, slots=True)
class ListQuery:
    filters: dict[str, list[str]] = field(default_factory=dict)  # repeated values mean OR
    sorts: tuple[tuple[str, str], ...] = ()  # (attribute, "asc" | "desc")
    limit: int = 0  # rows per page; the API layer clamps it to the configured maximum
    marker: str | None = None  # id of the last row of the previous page
    page_reverse: bool = False
    paged: bool = False  # the client asked for pages (limit, marker or page_reverse)


@dataclass(frozen=True, slots=True)
class Page:
    items: list[dict]  # `limit` of them, fewer only where the caller's rows run out


# Host names as agents report them: DNS labels, dots, underscores (some deployments).
_HOST = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,253}[A-Za-z0-9])?$")


def is_host_name(value: str) -> bool:
    """Whether `value` could name a host: others need no lookup."""
    return _HOST.fullmatch(value) is not None
