"""Starting and stopping the workers of a process, in one place.

A worker is anything with a `name`, `start()` (creates its task; never blocks) and
`stop()` (returns once its task ended). `Loop` makes one of a coroutine that runs until
its stop event is set, and `every` one of a function to run on a timer. The Supervisor
starts them in order and stops them in reverse: the dispatcher, started first, is stopped
last, so the work of the others (which wake it) is still delivered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

LOG = logging.getLogger(__name__)


class Worker(Protocol):
    name: str

    def start(self) -> None: ...

    async def stop(self) -> None: ...


class Loop:
    """A worker running `run(stop)` until `stop` is set; stopping waits for it to return
    (a round in progress finishes rather than being cancelled mid-query)."""

    def __init__(self, name: str, run: Callable[[asyncio.Event], Awaitable[None]]) -> None:
        self.name = name
        self._run = run
        self._stop = asyncio.Event()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(self._stop), name=f"segmentd-{self.name}")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None


async def run_every(interval: float, work: Callable[[], Awaitable[object]],
                    stop: asyncio.Event) -> None:
    """`work()` every `interval` seconds until `stop` is set; a failing round is logged,
    not fatal."""
    while True:
        try:
            await asyncio.wait_for(stop.wait(), interval)
            return
        except TimeoutError:
            pass
        try:
            await work()
        except Exception:
            LOG.exception("background task failed; it runs again in %.0f s", interval)


def every(name: str, interval: float, work: Callable[[], Awaitable[object]]) -> Loop:
    return Loop(name, lambda stop: run_every(interval, work, stop))


class Supervisor:
    def __init__(self, workers: Sequence[Worker]) -> None:
        self.workers = list(workers)

    def start(self) -> None:
        for worker in self.workers:
            worker.start()
        LOG.debug("workers started: %s", ", ".join(w.name for w in self.workers))

    async def stop(self) -> None:
        """Stop every worker, last started first; one that fails to stop is logged and the
        others are stopped all the same."""
        for worker in reversed(self.workers):
            try:
                await worker.stop()
            except Exception:
                LOG.exception("worker %s did not stop cleanly", worker.name)
