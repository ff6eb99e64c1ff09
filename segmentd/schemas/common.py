"""What every request body shares: strict parsing, the control-character rule, and the
bounded types of ids, names and numbers."""

from __future__ import annotations

import re
import uuid
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from segmentd import constants as c
from segmentd.inputs import CONTROL, CONTROL_IN_TEXT


def _uuid(value: str) -> str:
    try:
        uuid.UUID(value)
    except ValueError:
        raise ValueError(f"'{value}' is not a valid UUID") from None
    return value


FREE_TEXT_FIELDS = {"description"}  # free text: tab and newlines allowed


def _control_characters(value, pattern: re.Pattern) -> bool:
    """Whether any string in `value` (a JSON value: keys and nested items too) matches."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if pattern.search(node):
                return True
        elif isinstance(node, dict):
            stack.extend(node)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _digits_to_int(value):
    """python-openstackclient sends `--mtu` and `--provider-segment` as strings of digits.

    Only that canonical form is converted; booleans, floats, signs, spaces and other text
    still fail the strict integer check.
    """
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 9:
        return int(value)
    return value


Uuid = Annotated[str, StringConstraints(max_length=36), AfterValidator(_uuid)]
Name = Annotated[str, StringConstraints(max_length=c.NAME_MAX_LEN)]
Description = Annotated[str, StringConstraints(max_length=c.DESCRIPTION_MAX_LEN)]
Physnet = Annotated[str, StringConstraints(min_length=1, max_length=c.PHYSNET_MAX_LEN)]
NetworkType = Annotated[str, StringConstraints(min_length=1, max_length=c.NETWORK_TYPE_MAX_LEN)]
ProjectId = Annotated[str, StringConstraints(min_length=1, max_length=c.PROJECT_ID_MAX_LEN)]
# A JSON integer only: strict mode refuses true/false, 1.0 and "12" (Neutron converts them).
SegmentationId = Annotated[int, Field(strict=True)]
# Neutron takes any non-negative MTU (0: the largest the segments carry); the minimums an
# IPv4 or IPv6 subnet needs are checked against the network's subnets (409).
Mtu = Annotated[int, Field(strict=True, ge=0, le=c.MTU_MAX)]
# The network attributes python-openstackclient sends as digit strings (see _digits_to_int).
CliSegmentationId = Annotated[SegmentationId, BeforeValidator(_digits_to_int)]
CliMtu = Annotated[Mtu, BeforeValidator(_digits_to_int)]


class Strict(BaseModel):
    """Every request body: unknown attributes refused, no type coerced, no control character."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_control_characters(cls, value, info: ValidationInfo):
        """One rule for every string of every body, nested ones included (binding:profile,
        mappings, lists): no control character, except tab and newlines in free text."""
        if info.field_name in FREE_TEXT_FIELDS:
            if _control_characters(value, CONTROL_IN_TEXT):
                raise ValueError("control characters other than tab and newline are not allowed")
        elif _control_characters(value, CONTROL):
            raise ValueError("control characters are not allowed")
        return value
