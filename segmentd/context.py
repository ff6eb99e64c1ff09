"""Who is asking: built by the API layer, passed explicitly to every service function."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RequestContext:
    project_id: str
    roles: frozenset[str] = field(default_factory=frozenset)
    user_id: str | None = None
    request_id: str = ""

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @classmethod
    def admin(cls, request_id: str = "", project_id: str = "admin") -> RequestContext:
        """The context of the service's own background work and of the CLI."""
        return cls(project_id=project_id, roles=frozenset({"admin"}), request_id=request_id)
