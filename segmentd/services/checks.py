"""Checks every service's writes share: Neutron's If-Match revision, and who may name a
project other than its own."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from segmentd.auth.policy import check, enforce
from segmentd.context import RequestContext
from segmentd.errors import HTTPBadRequest, RevisionNumberConstraintFailed


def check_revision(row: Mapping[str, Any], if_revision: int | None) -> None:
    """Neutron's If-Match: revision_number=N; a mismatch is 412 and changes nothing."""
    if if_revision is not None and row["revision_number"] != if_revision:
        raise RevisionNumberConstraintFailed(constraint=if_revision, current=row["revision_number"])


def check_owner(ctx: RequestContext, action: str, target: Mapping[str, Any]) -> None:
    """Whether the caller may create for the project it names (`action:project_id`).

    As in Neutron, which checks this while reading the body, before any policy: a caller
    without the admin or service role naming a project not its own is 400, so a member who
    names an unknown project learns nothing from a 403 or 404. The admin and service roles
    may name any project in Neutron; here the policy still decides for them (403).
    """
    if target["project_id"] == ctx.project_id or check(ctx, f"{action}:project_id", target):
        return
    if ctx.reads_all_projects:
        enforce(ctx, f"{action}:project_id", target)
    raise HTTPBadRequest(msg="Only a caller allowed to act for other projects may give a "
                             "project_id (or tenant_id) other than its own")
