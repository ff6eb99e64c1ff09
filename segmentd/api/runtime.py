"""What create_app puts on app.state for the routes: engine, event bus, type rules, limits."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncEngine

from segmentd.config import Settings
from segmentd.db.engine import read_connection
from segmentd.events.bus import EventBus
from segmentd.services.types import TypeRules
from segmentd.services.uow import unit_of_work


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    bus: EventBus
    rules: TypeRules

    def write(self):
        """One transaction; events are published after it commits."""
        return unit_of_work(self.engine, self.bus)

    def read(self):
        return read_connection(self.engine)


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime
