"""Webhook subscription request bodies."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints

from segmentd import constants as c
from segmentd.schemas.common import Name, Strict


def _unique_types(types: list[str]) -> list[str]:
    if len(set(types)) != len(types):
        raise ValueError("event_types has duplicates")
    return types


Secret = Annotated[str, StringConstraints(min_length=16, max_length=c.SECRET_MAX_LEN)]
Url = Annotated[str, StringConstraints(min_length=1, max_length=c.URL_MAX_LEN)]
EventTypes = Annotated[
    list[Literal[c.EVENT_TYPES]],
    Field(min_length=1, max_length=len(c.EVENT_TYPES)),
    AfterValidator(_unique_types),
]


class SubscriptionCreate(Strict):
    name: Name = ""
    url: Url
    secret: Secret
    event_types: EventTypes
    enabled: bool = True


class SubscriptionUpdate(Strict):
    name: Name | None = None
    url: Url = None
    secret: Secret = None
    event_types: EventTypes = None
    enabled: bool = None


SUBSCRIPTION_READ_ONLY = {"id", "created_at", "updated_at", "revision_number"}
