"""The items a drift report is made of (shared by the switch and the port comparisons)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MISSING, EXTRA, DIFFERENT, FOREIGN, DUPLICATE = "missing", "extra", "different", "foreign", "duplicate"
REPAIRABLE = (MISSING, EXTRA, DIFFERENT)


@dataclass
class DriftItem:
    kind: str  # "switch" | "localnet_port" | "dhcp_options" | "port"
    problem: str
    name: str
    resource_id: str
    details: dict[str, Any] = field(default_factory=dict)
    # What repair needs: the resource as the database has it (None for an extra row).
    desired: dict[str, Any] | None = None
    switch: str | None = None  # a port's switch (desired, or the one holding an extra port)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "problem": self.problem, "name": self.name,
                "resource_id": self.resource_id, "details": self.details}
