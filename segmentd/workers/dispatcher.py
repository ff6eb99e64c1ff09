"""Delivers committed events from the outbox to every target, at least once, in order.

Each cycle, under the dispatch lock: new events are fanned out into one delivery per
target that wants them, and due deliveries are claimed with a lease. The lock is then
released and the deliveries run; events with one ordering key go to a target one after
another, and the first failure stops that key until its backoff ends. A process that dies
mid-delivery leaves leased rows that are due again once the lease ends, so nothing
committed is lost; an event may arrive twice, never out of order for its key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from segmentd.db import outbox as rows
from segmentd.db.engine import read_connection, write_connection
from segmentd.events.delivery import Target, TargetHeld, TargetSource, TargetUnavailable

LOG = logging.getLogger(__name__)
FAN_OUT_BATCH = 500
CLAIM_BATCH = 200
CONCURRENT_KEYS = 16  # ordering keys delivered at the same time
PRUNE_EVERY_SECONDS = 300.0


@dataclass
class DispatchSettings:
    interval: float = 1.0
    retry_base: float = 1.0
    retry_max: float = 300.0
    lease: float = 60.0
    retention: float = 7 * 86_400.0
    coalesce: float = 0.1  # after a wake, seconds to wait for more commits (a burst)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Dispatcher:
    name = "dispatcher"

    def __init__(
        self,
        engine: AsyncEngine,
        targets: Sequence[Target],
        dynamic_targets: TargetSource | None = None,
        settings: DispatchSettings | None = None,
    ) -> None:
        self._engine = engine
        self._static = list(targets)
        self._dynamic = dynamic_targets
        self._settings = settings or DispatchSettings()
        self._wake = asyncio.Event()
        self._stop_requested = asyncio.Event()  # set by stop(); ends a coalescing wait
        self._task: asyncio.Task | None = None
        self._last_prune: float | None = None  # the first cycle prunes
        self._lock_missed = False  # the last cycle found another process dispatching
        self._next_attempt: datetime | None = None  # the earliest retry the last look saw

    def wake(self) -> None:
        """Called after a commit that wrote events, so delivery does not wait for the timer."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="segmentd-dispatcher")

    async def stop(self, grace: float = 5.0) -> None:
        """Let the current cycle finish (it never holds a transaction across waits), then end.

        Cancelling in the middle of a database call could leave a pooled connection in an
        unknown state; the cancel is only the fallback after `grace` seconds.
        """
        if self._task is None:
            return
        self._stop_requested.set()
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), grace)
        except TimeoutError:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._task = None

    async def _run(self) -> None:
        look_first = False  # the first cycle runs in full
        while not self._stop_requested.is_set():
            try:
                if not look_first or await self._work_due():
                    busy = await self.run_once()
                    # Learn when the next retry is due. Work that arrived during the cycle
                    # is treated as a wake: under a steady stream of commits, cycles run
                    # `coalesce` apart and each serves many events, not one cycle per few.
                    if not busy and not self._lock_missed and await self._work_due():
                        self._wake.set()
                else:
                    busy = False
                    await self._maybe_prune()
            except asyncio.CancelledError:
                raise
            except Exception:
                LOG.exception("event dispatch cycle failed; retrying in %g s",
                              self._settings.interval)
                busy = False
                # What the failed look or cycle left says nothing now (the database may be
                # down): wait the whole interval, not a stale retry time or the lock retry.
                self._next_attempt, self._lock_missed = None, False
            if busy or self._stop_requested.is_set():
                look_first = False
                continue
            # Another process held the lock and may have fanned out before this process'
            # commits: look again shortly rather than leave them to the timer. Otherwise
            # sleep until a wake, the next retry that is due, or the interval.
            if self._lock_missed:
                wait = self._settings.coalesce
            else:
                wait = min(self._settings.interval, self._next_due_in())
            try:
                await asyncio.wait_for(self._wake.wait(), wait)
            except TimeoutError:
                look_first = not self._lock_missed
            else:
                # Woken by a commit: let the rest of a burst commit too, so one cycle
                # (a handful of statements) serves many writes instead of one each.
                # (Woken by stop(), or stopped while waiting: end now; what was committed
                # stays in the outbox for the next start.)
                if not self._stop_requested.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop_requested.wait(),
                                               self._settings.coalesce)
                look_first = False
            self._wake.clear()

    async def _work_due(self) -> bool:
        """The timer's look: one statement, and a full cycle only if something is due."""
        async with read_connection(self._engine) as conn:
            unfanned, due, self._next_attempt = await rows.next_work(conn, _now())
        return unfanned or due

    def _next_due_in(self) -> float:
        """Seconds until the earliest delivery the last look saw waiting becomes due."""
        if self._next_attempt is None:
            return self._settings.interval
        return max((self._next_attempt - _now()).total_seconds(), 0.0) + 0.01

    async def run_once(self) -> bool:
        """One cycle; True if a batch was full (so the caller runs another at once)."""
        now = _now()
        async with write_connection(self._engine) as conn:
            self._lock_missed = not await rows.take_dispatch_lock(conn)
            if self._lock_missed:
                return False
            targets = await self._targets(conn)
            fanned = await self._fan_out(conn, targets, now)
            claimed = await rows.claim_due(
                conn, now, now + timedelta(seconds=self._settings.lease), CLAIM_BATCH
            )
        if claimed:
            # Start no attempt past half the lease, so every attempt ends (and is recorded)
            # before another process may claim the same rows.
            stop_at = asyncio.get_running_loop().time() + self._settings.lease / 2
            await self._deliver(claimed, {t.name: t for t in targets}, stop_at)
        await self._maybe_prune()
        # Only a full batch means more is waiting; anything else waits for a wake or the timer.
        return fanned == FAN_OUT_BATCH or len(claimed) == CLAIM_BATCH

    async def _targets(self, conn) -> list[Target]:
        found = list(self._static)
        if self._dynamic is not None:
            found.extend(await self._dynamic(conn))
        return found

    async def _fan_out(self, conn, targets: Sequence[Target], now: datetime) -> int:
        events = await rows.unfanned_events(conn, FAN_OUT_BATCH)
        deliveries = [
            {
                "event_seq": ev["seq"], "target": t.name, "ordering_key": ev["ordering_key"],
                "attempts": 0, "next_attempt_at": now, "last_error": None, "delivered_at": None,
            }
            for ev in events
            for t in targets
            if t.wants(ev["type"])
        ]
        await rows.add_deliveries(conn, deliveries, [ev["seq"] for ev in events])
        return len(events)

    async def _deliver(self, claimed, targets: dict[str, Target], stop_at: float) -> None:
        chains: dict[tuple[str, str], list] = defaultdict(list)  # rows in event order
        delivered: list[int] = []
        failed: list[tuple[int, datetime, str]] = []
        released: list[int] = []
        limit = asyncio.Semaphore(CONCURRENT_KEYS)
        claimed = await self._deliver_batches(claimed, targets, delivered, failed)
        for row in claimed:  # what no batch took, one at a time per key
            chains[(row["target"], row["ordering_key"])].append(row)

        async def run_chain(chain) -> None:
            async with limit:
                for i, row in enumerate(chain):
                    if asyncio.get_running_loop().time() >= stop_at:
                        released.extend(r["id"] for r in chain[i:])  # due again at once
                        return
                    error, delay = await self._attempt(targets.get(row["target"]), row)
                    if error is None:
                        delivered.append(row["id"])
                        continue
                    failed.append((row["id"], _now() + timedelta(seconds=delay), error))
                    released.extend(r["id"] for r in chain[i + 1:])
                    return

        await asyncio.gather(*(run_chain(chain) for chain in chains.values()))
        async with write_connection(self._engine) as conn:
            now = _now()
            await rows.mark_delivered(conn, delivered, now)
            for delivery_id, retry_at, error in failed:
                await rows.mark_failed(conn, delivery_id, retry_at, error)
            await rows.reschedule(conn, released, now)

    async def _deliver_batches(self, claimed, targets: dict[str, Target], delivered: list[int],
                               failed: list[tuple[int, datetime, str]]):
        """Targets that take a whole batch at once (the OVN backend) get their rows in one
        call, in event order. Returns the rows left for one-at-a-time delivery: the others'
        and those of a batch that failed, so a bad event is found and backs off alone."""
        by_target: dict[str, list] = defaultdict(list)
        for row in claimed:
            if hasattr(targets.get(row["target"]), "deliver_batch"):
                by_target[row["target"]].append(row)
        if not by_target:
            return claimed
        retry_singly: set[int] = set()
        for name, rows_ in by_target.items():
            items = [(r["event_id"], r["type"], r["body"].encode()) for r in rows_]
            try:
                await targets[name].deliver_batch(items)
            except TargetUnavailable as exc:  # nothing would get through: all back off
                retry_at = _now() + timedelta(seconds=self._backoff(min(r["attempts"] for r in rows_)))
                failed.extend((r["id"], retry_at, str(exc)[:255]) for r in rows_)
            except Exception as exc:
                LOG.warning("batch of %d events to %s failed (%s); retrying one by one",
                            len(items), name, exc)
                retry_singly.update(r["id"] for r in rows_)
            else:
                delivered.extend(r["id"] for r in rows_)
        batched = {r["id"] for rows_ in by_target.values() for r in rows_}
        # Failed rows are settled; rows after them with the same key wait for the retry.
        return [r for r in claimed if r["id"] not in batched or r["id"] in retry_singly]

    async def _attempt(self, target: Target | None, row) -> tuple[str | None, float]:
        """Deliver one; (None, 0) on success, else (the error to record, seconds to wait)."""
        if target is None:
            return "target is not configured in this process", self._settings.retry_max
        try:
            await target.deliver(row["event_id"], row["type"], row["body"].encode())
        except TargetHeld as exc:
            return str(exc)[:255] or "held", self._settings.retry_max
        except Exception as exc:  # every failure is retried; the message is what admins see
            LOG.warning("delivery of event %s to %s failed: %s", row["event_id"], row["target"], exc)
            return (str(exc) or type(exc).__name__)[:255], self._backoff(row["attempts"])
        return None, 0.0

    def _backoff(self, attempts: int) -> float:
        """Exponential with full jitter in its upper half, capped."""
        ceiling = min(self._settings.retry_max, self._settings.retry_base * 2 ** min(attempts, 30))
        return ceiling / 2 + random.random() * ceiling / 2  # noqa: S311 (not security)

    async def _maybe_prune(self) -> None:
        loop_now = asyncio.get_running_loop().time()
        if self._last_prune is not None and loop_now - self._last_prune < PRUNE_EVERY_SECONDS:
            return
        self._last_prune = loop_now
        before = _now() - timedelta(seconds=self._settings.retention)
        async with write_connection(self._engine) as conn:
            pruned = await rows.prune(conn, before)
        if pruned:
            LOG.info("pruned %d delivered events older than %s", pruned, before.isoformat())
