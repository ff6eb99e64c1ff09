"""OVN chassis become hosts: the Southbound watcher.

Each Chassis row is a host report of that hostname's OVN agent (bridge mappings and
encapsulation types as configurations) through the same host service as REST reports,
so one set of rules decides what every host reaches. The watcher keeps, in memory, what
it last applied per chassis (loaded from the database when it starts leading) and, each
time the Southbound replica changes, writes only the chassis whose state differs: an
identical update writes nothing. A chassis gone from the replica (deleted, or missing
from a Southbound DB restarted empty) loses its agent and so its reach.

One process of all sharing the database watches at a time: it holds a lease row, renewed
every third of `ovn.chassis_lease_seconds`; if it dies another takes over once the lease
runs out. Writes are idempotent under the host lock, so even two briefly overlapping
holders cannot duplicate or lose reach.

A hostname is held by the first chassis that claimed it. A second chassis with the same
hostname is refused, as is a chassis whose data a host report could not carry (a bad
hostname or physnet, malformed mappings); both are listed in `chassis_conflicts`
(GET /v2.0/ovn/status and /v2.0/ovn/drift) and logged.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict
from datetime import timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from segmentd import constants as c
from segmentd.backends.base import ChassisSource, ChassisState
from segmentd.db.engine import read_connection, write_connection
from segmentd.errors import HostClaimedByChassis, InvalidInput, TooManyAgents
from segmentd.schemas.hosts import HostReport
from segmentd.services import audit, reach
from segmentd.services import chassis as chassis_hosts
from segmentd.services.clock import HostClock, utcnow
from segmentd.services.uow import transact

LOG = logging.getLogger(__name__)
CONCURRENCY = 8  # chassis applied at once: overlaps database round trips
FLEET_BATCH = 250  # new chassis recorded per transaction
FLEET_CONCURRENCY = 2  # such transactions at once (their hosts are disjoint)


def report_of(state: ChassisState) -> dict[str, Any]:
    """The host report a chassis amounts to; ValueError if a report could not carry it."""
    if state.error:
        raise ValueError(state.error)
    report = {"host": state.hostname, "agent_type": c.OVN_AGENT_TYPE,
              "binary": c.OVN_AGENT_BINARY, "configurations": state.configurations()}
    try:
        return HostReport.model_validate(report).model_dump(by_alias=True, exclude_unset=True)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ValueError(problems) from None


class ChassisWatcher:
    def __init__(self, engine: AsyncEngine, southbound: ChassisSource,
                 clock: HostClock, wake, lease_seconds: float) -> None:
        self._engine = engine
        self._sb = southbound
        self._clock = clock
        self._wake = wake  # the dispatcher's: events were committed
        self._lease = timedelta(seconds=lease_seconds)
        self._me = f"{uuid.uuid4()}"
        self._applied: dict[str, tuple[str, str]] | None = None  # chassis: (host, canonical)
        self._conflicts: list[dict[str, Any]] | None = None
        self._seen: int | None = None
        self._changed = asyncio.Event()  # set from the Southbound thread: the replica moved

    @property
    def caught_up(self) -> bool:
        """Whether the last look saw the replica as it is now (for tests and tools)."""
        return self._seen is not None and self._seen == self._sb.change_seqno()

    async def run(self, stop: asyncio.Event) -> None:
        started = False
        renew_every = self._lease.total_seconds() / 3
        while not stop.is_set():
            try:
                leading = await self._hold_lease()
            except Exception:
                LOG.exception("chassis watcher: could not take or renew its lease")
                leading = False
            if not leading:
                self._applied = None  # whoever leads next reloads from the database
                await _sleep(stop, renew_every)
                continue
            if not started:
                loop = asyncio.get_running_loop()
                self._sb.on_change = lambda: loop.call_soon_threadsafe(self._changed.set)
                self._sb.start()
                started = True
            deadline = asyncio.get_running_loop().time() + renew_every
            while not stop.is_set() and asyncio.get_running_loop().time() < deadline:
                self._changed.clear()  # a change from here on wakes the wait below
                try:
                    await self.step()
                except Exception:
                    LOG.exception("chassis watcher: a round failed; it is tried again")
                    self._seen = None
                    await _sleep(stop, 1.0)
                    continue
                # Nothing to do until the replica changes (or the lease wants renewing).
                await _wait_any((stop, self._changed),
                                deadline - asyncio.get_running_loop().time())
        if started:
            await asyncio.to_thread(self._sb.stop)

    async def _hold_lease(self) -> bool:
        now = utcnow()
        async with write_connection(self._engine) as conn:
            return await chassis_hosts.take_lease(conn, self._me, now, now + self._lease)

    async def step(self) -> bool:
        """Reconcile if the replica changed since the last look; whether it did."""
        if not self._sb.connected:
            return False
        seqno = self._sb.change_seqno()
        if seqno == self._seen and self._applied is not None:
            return False
        if self._applied is None:
            async with read_connection(self._engine) as conn:
                self._applied = await chassis_hosts.applied_chassis(conn)
        snapshot = await asyncio.to_thread(self._sb.snapshot)
        await self.reconcile(snapshot)
        self._seen = seqno
        return True

    async def reconcile(self, snapshot: dict[str, ChassisState]) -> None:
        started = asyncio.get_running_loop().time()
        applied = self._applied
        conflicts: list[dict[str, Any]] = []
        wanted: dict[str, dict[str, Any]] = {}  # chassis: report
        by_host: dict[str, list[str]] = defaultdict(list)
        for name, state in snapshot.items():
            try:
                wanted[name] = report_of(state)
            except ValueError as exc:
                conflicts.append({"chassis": name, "hostname": state.hostname,
                                  "reason": f"invalid: {exc}"})
                continue
            by_host[wanted[name]["host"]].append(name)
        holders = {host: ch for ch, (host, _) in applied.items()}
        for host, names in by_host.items():
            if len(names) < 2:
                continue
            keep = holders.get(host) if holders.get(host) in names else min(names)
            for name in names:
                if name != keep:
                    del wanted[name]
                    conflicts.append({"chassis": name, "hostname": host,
                                      "reason": f"hostname held by chassis {keep}"})

        # First let go of what is gone or moved, so a hostname can pass to another chassis.
        gone = [(ch, host) for ch, (host, _) in applied.items()
                if ch not in wanted or wanted[ch]["host"] != host]
        await _bounded([self._remove(ch, host) for ch, host in gone])
        changed = [ch for ch, report in wanted.items()
                   if applied.get(ch) != (report["host"],
                                          reach.canonical(report["configurations"]))]
        # Chassis new to this watcher go in batches; what a batch leaves (a host that
        # exists already) and changed chassis go one at a time, under their host's lock.
        fresh = sorted(ch for ch in changed if ch not in applied)
        singly = [ch for ch in changed if ch in applied]
        chunks = [fresh[i:i + FLEET_BATCH] for i in range(0, len(fresh), FLEET_BATCH)]
        for left in await _bounded([self._apply_fleet(chunk, wanted) for chunk in chunks],
                                   FLEET_CONCURRENCY):
            singly += left
        refused = await _bounded([self._apply(ch, wanted[ch]) for ch in singly])
        conflicts += [r for r in refused if r]
        conflicts.sort(key=lambda item: item["chassis"])
        if conflicts != self._conflicts:
            for item in conflicts:
                LOG.warning("chassis %s (hostname %r) refused: %s", item["chassis"],
                            item["hostname"], item["reason"])
            async with write_connection(self._engine) as conn:
                await chassis_hosts.save_conflicts(conn, conflicts, utcnow())
            self._conflicts = conflicts
        if gone or changed:
            LOG.info("chassis watcher: %d chassis applied, %d removed, %d refused in %.2f s",
                     len(changed) - len(refused) + refused.count(None), len(gone),
                     len(conflicts), asyncio.get_running_loop().time() - started)

    async def _apply_fleet(self, names: list[str], wanted: dict[str, dict[str, Any]]) -> list[str]:
        """Record new chassis in one transaction; those it could not take (their host
        exists, or was created meanwhile) are returned, for one-by-one application."""
        try:
            left = await transact(
                self._engine, lambda uow: chassis_hosts.apply_new_chassis(
                    uow, self._clock, [(ch, wanted[ch]) for ch in names]),
                audit=_fleet_audit, after_commit=self._wake)
        except IntegrityError as exc:
            LOG.info("chassis watcher: a host appeared during a batch of %d chassis (%s); "
                     "applying them one by one", len(names), type(exc.orig).__name__)
            return names
        for ch in set(names) - set(left):
            report = wanted[ch]
            self._applied[ch] = (report["host"], reach.canonical(report["configurations"]))
        return left

    async def _apply(self, chassis: str, report: dict[str, Any]) -> dict[str, Any] | None:
        host = report["host"]
        try:
            await transact(
                self._engine,
                lambda uow: chassis_hosts.apply_chassis(uow, self._clock, chassis, report),
                audit=_audit("chassis_update", host), after_commit=self._wake)
        except HostClaimedByChassis as exc:
            return {"chassis": chassis, "hostname": host,
                    "reason": f"hostname held by chassis {exc.kwargs.get('chassis')}"}
        except (TooManyAgents, InvalidInput) as exc:
            return {"chassis": chassis, "hostname": host, "reason": f"invalid: {exc}"}
        self._applied[chassis] = (host, reach.canonical(report["configurations"]))
        return None

    async def _remove(self, chassis: str, host: str) -> None:
        await transact(
            self._engine,
            lambda uow: chassis_hosts.remove_chassis(uow, self._clock, chassis, host),
            audit=_audit("chassis_delete", host), after_commit=self._wake)
        del self._applied[chassis]


def _audit(action: str, host: str):
    def row(uow):
        if not uow.events:
            return None
        return audit.audit_row(None, request_id=f"req-{uuid.uuid4()}", action=action,
                               resource_type="host", resource_id=host, status=200)
    return row


def _fleet_audit(uow) -> list[dict[str, Any]]:
    """An audit row per host a batch created, as one chassis' transaction writes."""
    return [audit.audit_row(None, request_id=f"req-{uuid.uuid4()}", action="chassis_update",
                            resource_type="host", resource_id=e.resource["host"], status=200)
            for e in uow.events if e.type == c.EVENT_AGENT_CREATED]


async def _bounded(work: list, limit: int = CONCURRENCY) -> list:
    """Run the coroutines at most `limit` at a time; their results in order."""
    gate = asyncio.Semaphore(limit)

    async def one(coro):
        async with gate:
            return await coro

    return await asyncio.gather(*(one(w) for w in work))


async def _wait_any(events: tuple[asyncio.Event, ...], seconds: float) -> None:
    """Until one of the events is set or the seconds pass."""
    if seconds <= 0 or any(e.is_set() for e in events):
        return
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass
