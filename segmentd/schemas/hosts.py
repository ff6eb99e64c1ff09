"""Host report and agent request bodies."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints, field_validator

from segmentd import constants as c
from segmentd.schemas.common import Description, Name, Physnet, Strict


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
