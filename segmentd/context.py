"""Who is asking: built by the API layer, passed explicitly to every service function."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class RequestContext:
    project_id: str
    roles: frozenset[str] = field(default_factory=frozenset)  # with implied roles expanded
    user_id: str | None = None
    user_name: str | None = None
    request_id: str = ""
    token_id: str | None = None
    host: str | None = None  # a token bound to a host acts only as that host's agent
    policy: Any = None  # the application's auth.policy.Policy (None: the built-in rules)
    credentials: dict = field(default_factory=dict)  # what oslo.policy checks against

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @property
    def reads_all_projects(self) -> bool:
        """Roles whose default read rules name no project (admin; service, as in Neutron).

        SQL scoping lets these see every project's rows; policy then decides row by row, so
        a policy file can narrow what they read but other roles cannot be widened past
        their own project and shared networks.
        """
        return "admin" in self.roles or "service" in self.roles

    @classmethod
    def build(cls, project_id: str, roles, **kwargs) -> RequestContext:
        from segmentd.auth.policy import expand_roles

        expanded = expand_roles(roles)
        host = kwargs.pop("host", None) or None
        creds = {
            "roles": sorted(expanded),
            "project_id": project_id,
            "user_id": kwargs.get("user_id"),
            # The host binding is part of who is asking: policy tells a host's agent
            # (rule:host_agent) from a service bound to no host (rule:service_api).
            "host": host,
            "host_bound": host is not None,
        }
        return cls(project_id=project_id, roles=expanded, credentials=creds, host=host, **kwargs)

    @classmethod
    def admin(cls, request_id: str = "", project_id: str = "admin") -> RequestContext:
        """The context of the service's own background work and of the CLI."""
        return cls.build(project_id, {"admin"}, request_id=request_id)
