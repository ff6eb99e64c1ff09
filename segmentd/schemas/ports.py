"""Port request bodies: shapes and types here; address and binding rules in services."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from pydantic import AfterValidator, Field, StringConstraints

from segmentd import constants as c
from segmentd.schemas.common import Description, Name, ProjectId, Strict, Uuid
from segmentd.schemas.subnets import AddressText

DeviceText = Annotated[str, StringConstraints(max_length=c.DEVICE_FIELD_MAX_LEN)]
HostText = Annotated[str, StringConstraints(max_length=c.HOST_MAX_LEN)]
MacText = Annotated[str, StringConstraints(min_length=1, max_length=64)]
VnicType = Literal[c.VNIC_TYPES]  # type: ignore[valid-type]
FIXED_IPS_CAP = 64  # only caps the body: more than MAX_FIXED_IPS_PER_PORT is refused by rule


def _bounded_profile(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is not None and len(orjson.dumps(value)) > c.BINDING_PROFILE_MAX_LEN:
        raise ValueError(f"binding:profile is larger than {c.BINDING_PROFILE_MAX_LEN} bytes")
    return value


Profile = Annotated[dict[str, Any] | None, AfterValidator(_bounded_profile)]


class FixedIpBody(Strict):
    subnet_id: Uuid | None = None
    ip_address: AddressText | None = None


FixedIps = Annotated[list[FixedIpBody], Field(max_length=FIXED_IPS_CAP)]


class _OnNetwork(Strict):
    network_id: Uuid


class _PortAttributes(Strict):
    """The attributes a port create and a port update both take, in the order they are
    checked. The update overrides the create's defaults (None: not given) and refuses a
    null MAC."""

    name: Name = ""
    description: Description | None = None
    admin_state_up: bool = True
    mac_address: MacText | None = None
    fixed_ips: FixedIps | None = None
    device_id: DeviceText | None = None
    device_owner: DeviceText | None = None
    host_id: HostText | None = Field(None, alias="binding:host_id")
    vnic_type: VnicType | None = Field(None, alias="binding:vnic_type")
    profile: Profile = Field(None, alias="binding:profile")


# Pydantic orders fields from the base listed last to the class itself, so network_id
# comes first: a body's first problem is the one reported (api/deps.validate_attributes).
class PortCreate(_PortAttributes, _OnNetwork):
    project_id: ProjectId | None = None
    tenant_id: ProjectId | None = None


class PortUpdate(_PortAttributes):
    name: Name = None
    admin_state_up: bool = None
    mac_address: MacText = None  # null (regenerate) is refused: no port-mac-address-regenerate


PORT_READ_ONLY = {
    "id", "network_id", "status", "project_id", "tenant_id", "ip_allocation",
    "binding:vif_type", "binding:vif_details", "created_at", "updated_at", "revision_number",
}
