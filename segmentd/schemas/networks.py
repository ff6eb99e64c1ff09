"""Network and segment request bodies."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from segmentd.schemas.common import (
    CliMtu,
    CliSegmentationId,
    Description,
    Name,
    NetworkType,
    Physnet,
    ProjectId,
    SegmentationId,
    Strict,
    Uuid,
)


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
