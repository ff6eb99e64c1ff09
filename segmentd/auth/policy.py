"""enforce(): the one place every action is authorized, with Neutron's default rules.

The defaults follow Neutron's secure RBAC for the resources served so far: segments and
provider attributes are admin-only; networks belong to admin or their project's members and
are readable by the project's readers and, when shared, by everyone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from segmentd.context import RequestContext
from segmentd.errors import PolicyNotAuthorized

Rule = Callable[[RequestContext, Mapping[str, Any]], bool]


def _admin(ctx: RequestContext, _target: Mapping[str, Any]) -> bool:
    return ctx.is_admin


def _owner_member(ctx: RequestContext, target: Mapping[str, Any]) -> bool:
    return ctx.is_admin or (
        "member" in ctx.roles and target.get("project_id") == ctx.project_id
    )


def _owner_reader_or_shared(ctx: RequestContext, target: Mapping[str, Any]) -> bool:
    if ctx.is_admin or target.get("shared"):
        return True
    return bool({"reader", "member"} & ctx.roles) and target.get("project_id") == ctx.project_id


DEFAULT_RULES: dict[str, Rule] = {
    "create_network": _owner_member,
    "get_network": _owner_reader_or_shared,
    "update_network": _owner_member,
    "delete_network": _owner_member,
    "create_network:provider": _admin,
    "update_network:provider": _admin,
    "get_network:provider": _admin,
    "update_network:shared": _admin,
    "create_network:shared": _admin,
    "create_segment": _admin,
    "get_segment": _admin,
    "update_segment": _admin,
    "delete_segment": _admin,
}


def check(ctx: RequestContext, action: str, target: Mapping[str, Any] | None = None) -> bool:
    """Whether `action` on `target` is allowed; unknown actions are denied."""
    rule = DEFAULT_RULES.get(action)
    return rule is not None and rule(ctx, target or {})


def enforce(ctx: RequestContext, action: str, target: Mapping[str, Any] | None = None) -> None:
    """Raise PolicyNotAuthorized unless `action` on `target` is allowed."""
    if not check(ctx, action, target):
        raise PolicyNotAuthorized(action=action)
