"""The event types segmentd publishes and the JSON Schema of each one.

The schemas are defined here once and shipped as files in `segmentd/events/schema_files/`
(a test keeps the two identical), served at `/v2.0/event-schemas`, and every event is
checked against its schema before its outbox row is written.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import fastjsonschema

from segmentd import constants as c
from segmentd.events.bus import resource_type_of

SCHEMA_DIR = Path(__file__).with_name("schema_files")
DRAFT = "http://json-schema.org/draft-07/schema#"

_STR = {"type": "string"}
_NULLABLE_STR = {"type": ["string", "null"]}
_TIME = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"}
_UUID = {"type": "string", "pattern": "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"}
_COUNT = {"type": "integer", "minimum": 0}
_SEG_ID = {"type": ["integer", "null"], "minimum": 1, "maximum": c.VNI_MAX}
_NETWORK_TYPE = {"enum": list(c.NETWORK_TYPES)}


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        "additionalProperties": False,
    }


SEGMENT = _object({
    "id": _UUID, "network_id": _UUID, "name": _NULLABLE_STR, "description": _STR,
    "physical_network": _NULLABLE_STR, "network_type": _NETWORK_TYPE,
    "segmentation_id": _SEG_ID, "created_at": _TIME, "updated_at": _TIME,
    "revision_number": _COUNT,
})

_PROVIDER = {
    "provider:network_type": {"enum": [*c.NETWORK_TYPES, None]},
    "provider:physical_network": _NULLABLE_STR,
    "provider:segmentation_id": _SEG_ID,
}
NETWORK = _object(
    {
        "id": _UUID, "name": _STR, "description": _STR, "project_id": _STR, "tenant_id": _STR,
        "admin_state_up": {"type": "boolean"}, "shared": {"type": "boolean"}, "status": _STR,
        "mtu": _COUNT, "subnets": {"type": "array", "items": _UUID},
        "l2_adjacency": {"type": "boolean"},
        "created_at": _TIME, "updated_at": _TIME, "revision_number": _COUNT,
        **_PROVIDER,
        "segments": {"type": "array", "minItems": 2, "items": _object(dict(_PROVIDER))},
    },
    required=["id", "name", "project_id", "admin_state_up", "shared", "status", "mtu",
              "created_at", "updated_at", "revision_number"],
)

_NULLABLE_UUID = {"anyOf": [_UUID, {"type": "null"}]}
_IPV6_MODE = {"enum": ["slaac", "dhcpv6-stateful", "dhcpv6-stateless", None]}
SUBNET = _object({
    "id": _UUID, "name": _STR, "description": _STR, "network_id": _UUID,
    "segment_id": _NULLABLE_UUID, "project_id": _STR, "tenant_id": _STR, "cidr": _STR,
    "ip_version": {"enum": [4, 6]}, "gateway_ip": _NULLABLE_STR,
    "enable_dhcp": {"type": "boolean"},
    "allocation_pools": {"type": "array", "items": _object({"start": _STR, "end": _STR})},
    "dns_nameservers": {"type": "array", "items": _STR},
    "host_routes": {"type": "array", "items": _object({"destination": _STR, "nexthop": _STR})},
    "ipv6_ra_mode": _IPV6_MODE, "ipv6_address_mode": _IPV6_MODE,
    "subnetpool_id": {"type": "null"}, "service_types": {"type": "array", "items": _STR},
    "created_at": _TIME, "updated_at": _TIME, "revision_number": _COUNT,
})

_PORT_PROPS = {
    "id": _UUID, "name": _STR, "description": _STR, "network_id": _UUID, "project_id": _STR,
    "tenant_id": _STR, "mac_address": {"type": "string", "pattern": "^([0-9a-f]{2}:){5}[0-9a-f]{2}$"},
    "admin_state_up": {"type": "boolean"}, "status": {"enum": ["ACTIVE", "DOWN"]},
    "device_id": _STR, "device_owner": _STR,
    "fixed_ips": {"type": "array",
                  "items": _object({"subnet_id": _UUID, "ip_address": _STR})},
    "ip_allocation": {"enum": ["immediate", "deferred", "none"]},
    "binding:host_id": _STR, "binding:vnic_type": {"enum": list(c.VNIC_TYPES)},
    "binding:profile": {"type": "object"},
    "binding:vif_type": {"enum": ["ovs", "unbound", "binding_failed"]},
    "binding:vif_details": {"type": "object"},
    "allowed_address_pairs": {"type": "array"}, "extra_dhcp_opts": {"type": "array"},
    "security_groups": {"type": "array"}, "port_security_enabled": {"type": "boolean"},
    "created_at": _TIME, "updated_at": _TIME, "revision_number": _COUNT,
}
PORT = _object(_PORT_PROPS)

_NAMES = {"type": "array", "items": _STR, "uniqueItems": True}
AGENT = _object({
    "id": _UUID, "host": _STR, "agent_type": _STR, "binary": _STR, "alive": {"type": "boolean"},
    "admin_state_up": {"type": "boolean"}, "description": _STR,
    "configurations": {"type": "object"}, "heartbeat_timestamp": _TIME, "started_at": _TIME,
    "created_at": _TIME, "availability_zone": {"type": "null"}, "topic": {"type": "null"},
})

HOST_CHANGE = _object({
    "host": _STR,
    "reason": {"enum": ["report", "agent_deleted", "expired", "chassis", "chassis_deleted"]},
    "physnets": _NAMES,
    "tunnel_types": _NAMES,
    "gained": {"type": "array", "items": _UUID, "uniqueItems": True},
    "lost": {"type": "array", "items": _UUID, "uniqueItems": True},
})

RESOURCE_SCHEMAS = {"network": NETWORK, "segment": SEGMENT, "subnet": SUBNET, "port": PORT,
                    "agent": AGENT, "host": HOST_CHANGE}


def build_schema(event_type: str) -> dict[str, Any]:
    """The whole delivered document: the envelope around the resource."""
    resource_type = resource_type_of(event_type)
    return {
        "$schema": DRAFT,
        "$id": f"https://segmentd.invalid/event-schemas/{event_type}.json",
        "title": event_type,
        **_object({
            "id": _UUID,
            "type": {"const": event_type},
            "time": {"type": "string", "format": "date-time"},
            "resource_type": {"const": resource_type},
            "resource_id": {"type": "string", "minLength": 1},
            "project_id": _NULLABLE_STR,
            "request_id": _STR,
            "resource": RESOURCE_SCHEMAS[resource_type],
        }),
    }


@cache
def schema(event_type: str) -> dict[str, Any]:
    """The shipped schema file of an event type (KeyError for an unknown type)."""
    if event_type not in c.EVENT_TYPES:
        raise KeyError(event_type)
    return json.loads((SCHEMA_DIR / f"{event_type}.json").read_text())


@cache
def _validator(event_type: str):
    return fastjsonschema.compile(schema(event_type))


class InvalidEvent(ValueError):
    """An event that does not match its published schema; it is never written."""


def validate(document: dict[str, Any]) -> None:
    """Check a document against the schema of its type, or raise InvalidEvent."""
    event_type = document.get("type")
    if event_type not in c.EVENT_TYPES:
        raise InvalidEvent(f"unknown event type {event_type!r}")
    try:
        _validator(event_type)(document)
    except fastjsonschema.JsonSchemaException as exc:
        raise InvalidEvent(f"{event_type}: {exc.message}") from None


def write_schema_files(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Regenerate the shipped files from the definitions above."""
    directory.mkdir(exist_ok=True)
    written = []
    for event_type in c.EVENT_TYPES:
        path = directory / f"{event_type}.json"
        path.write_text(json.dumps(build_schema(event_type), indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written
