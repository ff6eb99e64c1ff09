"""Request bodies: strict types, Neutron's limits, unknown attributes refused."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Literal

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


class SegmentCreate(Strict):
    network_id: Uuid
    network_type: NetworkType
    physical_network: Physnet | None = None
    segmentation_id: SegmentationId | None = None
    name: Name | None = None
    description: Description | None = None


class SegmentUpdate(Strict):
    name: Name | None = None
    description: Description | None = None


SEGMENT_READ_ONLY = {
    "id", "network_id", "network_type", "physical_network", "segmentation_id",
    "created_at", "updated_at", "revision_number", "project_id", "tenant_id",
}


class ProviderSegment(Strict):
    network_type: NetworkType | None = Field(None, alias="provider:network_type")
    physical_network: Physnet | None = Field(None, alias="provider:physical_network")
    segmentation_id: SegmentationId | None = Field(None, alias="provider:segmentation_id")


MAX_SEGMENTS_PER_REQUEST = 64  # a bound on the work one request can ask for


class NetworkCreate(Strict):
    name: Name = ""
    description: Description = ""
    admin_state_up: bool = True
    shared: bool = False
    mtu: CliMtu | None = None
    project_id: ProjectId | None = None
    tenant_id: ProjectId | None = None
    network_type: NetworkType | None = Field(None, alias="provider:network_type")
    physical_network: Physnet | None = Field(None, alias="provider:physical_network")
    segmentation_id: CliSegmentationId | None = Field(None, alias="provider:segmentation_id")
    segments: Annotated[list[ProviderSegment], Field(min_length=1, max_length=MAX_SEGMENTS_PER_REQUEST)] | None = None


class NetworkUpdate(Strict):
    """Only what may change; an explicit null is refused rather than silently ignored."""

    name: Name = None
    description: Description | None = None  # null resets it to ""
    admin_state_up: bool = None
    shared: bool = None
    mtu: CliMtu = None
    network_type: NetworkType = Field(None, alias="provider:network_type")
    physical_network: Physnet = Field(None, alias="provider:physical_network")
    segmentation_id: CliSegmentationId = Field(None, alias="provider:segmentation_id")


NETWORK_READ_ONLY = {
    "id", "status", "project_id", "tenant_id", "created_at", "updated_at",
    "revision_number", "subnets", "segments",
}


# -- host reports and agents

def _no_separators(value: str) -> str:
    """Physnet names are joined with ':' and ',' in mapping strings; neither may appear."""
    if ":" in value or "," in value or value != value.strip():
        raise ValueError("must not contain ':' or ',' or surrounding spaces")
    return value


HostName = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=c.HOST_MAX_LEN,
        pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,253}[A-Za-z0-9])?$",
    ),
]
ReportedPhysnet = Annotated[Physnet, AfterValidator(_no_separators)]
DeviceName = Annotated[str, StringConstraints(min_length=1, max_length=c.NAME_MAX_LEN)]
RequiredName = Annotated[Name, StringConstraints(min_length=1)]
Mappings = Annotated[dict[ReportedPhysnet, DeviceName], Field(max_length=c.REPORT_MAX_MAPPINGS)]


class Configurations(Strict):
    bridge_mappings: Mappings = Field(default_factory=dict)
    interface_mappings: Mappings = Field(default_factory=dict)
    device_mappings: Annotated[
        dict[ReportedPhysnet, Annotated[list[DeviceName], Field(max_length=c.REPORT_MAX_DEVICES)]],
        Field(max_length=c.REPORT_MAX_MAPPINGS),
    ] = Field(default_factory=dict)
    tunnel_types: Annotated[
        list[Literal[c.KNOWN_TUNNEL_TYPES]], Field(max_length=len(c.KNOWN_TUNNEL_TYPES))
    ] = Field(default_factory=list)

    @field_validator("tunnel_types")
    @classmethod
    def _unique(cls, types: list[str]) -> list[str]:
        if len(set(types)) != len(types):
            raise ValueError("tunnel_types has duplicates")
        return types


class HostReport(Strict):
    host: HostName
    agent_type: RequiredName
    binary: RequiredName
    configurations: Configurations


class AgentUpdate(Strict):
    admin_state_up: bool = None
    description: Description | None = None  # null resets it to ""


AGENT_READ_ONLY = {
    "id", "host", "agent_type", "binary", "alive", "configurations", "heartbeat_timestamp",
    "started_at", "created_at", "availability_zone", "topic",
}


# -- webhook subscriptions

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
