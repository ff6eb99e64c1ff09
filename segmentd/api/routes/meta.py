"""The version document, the v2.0 resource index and the extension list clients probe."""

from __future__ import annotations

from fastapi import APIRouter, Request

from segmentd.api.deps import ContextDep, json_response
from segmentd.errors import HTTPNotFound

router = APIRouter(tags=["meta"])

# Exactly what this service implements; clients decide what to send from this list.
EXTENSIONS = [
    ("provider", "Provider Network", "Expose mapping of virtual networks to physical networks"),
    ("multi-provider", "Multi Provider Network", "Expose mapping of virtual networks to multiple physical networks"),
    ("segment", "Segment", "Segments extension."),
    ("subnet-segmentid-writable", "Subnet SegmentID (writable)", "Provides a writable segment_id attribute for a subnet resource."),
    ("l2_adjacency", "L2 Adjacency", "Display L2 Adjacency for Neutron Networks."),
    ("binding", "Port Binding", "Expose port bindings of a virtual port to external application"),
    ("ip_allocation", "IP Allocation", "IP allocation extension."),
    ("segments-peer-subnet-host-routes", "Segments peer-subnet host routes", "Add host routes to subnets on a routed network (segments)"),
    ("network-ip-availability", "Network IP Availability", "Provides IP availability data for each network and subnet."),
    ("net-mtu", "Network MTU", "Provides MTU attribute for a network resource."),
    ("net-mtu-writable", "Network MTU (writable)", "Provides a writable MTU attribute for a network resource."),
    ("standard-attr-description", "standard-attr-description", "Extension to add descriptions to standard attributes"),
    ("standard-attr-revisions", "Resource revision numbers", "This extension will display the revision number of neutron resources."),
    ("standard-attr-timestamp", "Resource timestamps", "Adds created_at and updated_at fields to all Neutron resources that have Neutron standard attributes."),
    ("standard-attr-segment", "Standard Attribute Segment Extension", "Add standard attributes to Segment resource"),
    ("revision-if-match", "If-Match constraints based on revision_number", "Extension indicating that If-Match based on revision_number is supported."),
    ("project-id", "project_id field enabled", "Extension that indicates that project_id field is enabled."),
    ("pagination", "Pagination support", "Extension that indicates that pagination is enabled."),
    ("sorting", "Sorting support", "Extension that indicates that sorting is enabled."),
    ("filter-validation", "Filter parameters validation", "Provides validation on filter parameters."),
]
UPDATED = "2026-11-22T00:00:00-00:00"


def _extension(alias: str, name: str, description: str) -> dict:
    return {"alias": alias, "name": name, "description": description, "updated": UPDATED, "links": []}


@router.get("/")
async def versions(request: Request):
    """The one public document (version discovery needs no token, as with Neutron)."""
    base = str(request.base_url).rstrip("/")
    return json_response({"versions": [{
        "id": "v2.0", "status": "CURRENT",
        "links": [{"href": f"{base}/v2.0/", "rel": "self"}],
    }]})


@router.get("/v2.0")
@router.get("/v2.0/")
async def resources(request: Request, _ctx: ContextDep):
    base = str(request.base_url).rstrip("/")
    return json_response({"resources": [
        {"name": name, "collection": coll,
         "links": [{"href": f"{base}/v2.0/{coll}", "rel": "self"}]}
        for name, coll in (("network", "networks"), ("segment", "segments"), ("subnet", "subnets"),
                           ("port", "ports"))
    ]})


@router.get("/v2.0/extensions")
async def list_extensions(_ctx: ContextDep):
    return json_response({"extensions": [_extension(*e) for e in EXTENSIONS]})


@router.get("/v2.0/extensions/{alias}")
async def show_extension(alias: str, _ctx: ContextDep):
    for entry in EXTENSIONS:
        if entry[0] == alias:
            return json_response({"extension": _extension(*entry)})
    raise HTTPNotFound()
