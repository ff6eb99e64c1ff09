"""kill -9 a live `segmentd serve` in the middle of a burst of changes whose webhook
deliveries lag behind; after a restart every committed change reaches the receiver, in
order per key, and nothing reaches it that was not committed."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import asyncpg
import httpx
import pytest

from segmentd import verify_delivery
from tests.conftest import wait_until
from tests.e2e.server import E2E_CONFIG, database, start_server, stop_servers
from tests.events.test_subscriptions_api import ALL_TYPES, SECRET, HookReceiver

pytestmark = [pytest.mark.postgresql, pytest.mark.slow]

NETWORKS = 6
LEASE_SECONDS = 2
CONFIG = {
    **E2E_CONFIG,
    "webhook_allowed_networks": ["127.0.0.1/32"],
    "event_lease_seconds": LEASE_SECONDS,
    "event_retry_base_seconds": 0.2,
    "event_retry_max_seconds": 1.0,
    "event_dispatch_interval_seconds": 0.1,
    "webhook_timeout_seconds": 1.0,  # at most half the lease (config validation)
}


LEASED = """SELECT count(*) AS n FROM event_deliveries WHERE delivered_at IS NULL
              AND next_attempt_at > now() AT TIME ZONE 'UTC'"""


def query(db_url: str, sql: str) -> list[asyncpg.Record]:
    async def run():
        conn = await asyncpg.connect(db_url)
        try:
            return await conn.fetch(sql)
        finally:
            await conn.close()

    return asyncio.run(run())


def pending(db_url: str) -> int:
    (row,) = query(db_url, """
        SELECT (SELECT count(*) FROM outbox_events WHERE NOT fanned_out)
             + (SELECT count(*) FROM event_deliveries WHERE delivered_at IS NULL) AS n""")
    return row["n"]


def rename_until_stopped(base_url: str, net_id: str, stop: threading.Event,
                         acknowledged: list[int]) -> None:
    """Rename one network again and again; record each revision the server answered with."""
    with httpx.Client(timeout=10) as client:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                resp = client.put(f"{base_url}/v2.0/networks/{net_id}",
                                  json={"network": {"name": f"rename-{n}"}})
            except httpx.HTTPError:
                return  # the server is gone: this request may or may not have committed
            assert resp.status_code == 200, resp.text
            acknowledged.append(resp.json()["network"]["revision_number"])


def test_every_committed_change_is_delivered_after_a_kill_9(request, tmp_path):
    receiver = HookReceiver()
    # Slow at first: deliveries fall behind the burst, and one in flight lasts far longer
    # than the moment between seeing its lease and the kill (at 0.1 s, one finished in
    # between in a whole-suite run).
    receiver.delay = 0.3
    servers = []
    with database("postgresql", tmp_path) as db_url:
        try:
            first = start_server(tmp_path, db_url, name="before-kill", config=CONFIG)
            servers.append(first)
            resp = httpx.post(f"{first.base_url}/v2.0/event-subscriptions", json={
                "event_subscription": {"url": receiver.url(), "secret": SECRET,
                                       "event_types": ALL_TYPES}})
            assert resp.status_code == 201, resp.text
            nets = []
            for n in range(NETWORKS):
                made = httpx.post(f"{first.base_url}/v2.0/networks",
                                  json={"network": {"name": f"crash-{n}"}})
                assert made.status_code == 201, made.text
                nets.append(made.json()["network"])

            stop = threading.Event()
            acknowledged: dict[str, list[int]] = {net["id"]: [] for net in nets}
            threads = [threading.Thread(target=rename_until_stopped,
                                        args=(first.base_url, net["id"], stop,
                                              acknowledged[net["id"]]))
                       for net in nets]
            for t in threads:
                t.start()
            time.sleep(1.0)
            # SIGKILL in the middle of the burst and of its deliveries: the moment a lease is
            # seen (between dispatch cycles none is held, and a kill there proves less).
            deadline = time.monotonic() + 30  # a loaded machine may take long to lag behind
            while time.monotonic() < deadline and not query(db_url, LEASED)[0]["n"]:
                time.sleep(0.01)
            first.proc.kill()
            first.proc.wait(10)
            (leased,) = query(db_url, LEASED)
            stop.set()
            for t in threads:
                t.join(15)
            received_before_restart = len(receiver.got())
            assert pending(db_url) > 0, "the kill left nothing undelivered: it proves nothing"
            assert leased["n"] > 0, "no delivery was in flight at the kill"

            receiver.delay = 0
            second = start_server(tmp_path, db_url, name="after-restart", config=CONFIG)
            servers.append(second)
            wait_until(lambda: pending(db_url) == 0, "deliveries done after the restart", timeout=30)
            outbox = query(db_url, "SELECT seq, id, ordering_key, body FROM outbox_events "
                                   "ORDER BY seq")
            final = {r["id"]: r["revision_number"]
                     for r in query(db_url, "SELECT id, revision_number FROM networks")}
        finally:
            stop_servers(request, servers)
            receiver.stop()

    got = receiver.got()
    assert len(got) > received_before_restart
    seq_of = {r["id"]: r["seq"] for r in outbox}
    key_of = {r["id"]: r["ordering_key"] for r in outbox}
    body_of = {r["id"]: r["body"].encode() for r in outbox}
    received_ids = {d.event_id for d in got}
    assert received_ids <= set(seq_of), "delivered an event that was never committed"
    assert set(seq_of) <= received_ids, "a committed event was never delivered"
    for d in got:
        verify_delivery(SECRET, d.headers, d.body)
        assert d.body == body_of[d.event_id]

    # Per key, events first arrive in commit order; a repeat (at least once) only ever
    # repeats what was already sent, never skips ahead.
    first_seen: dict[str, list[int]] = {}
    for d in got:
        seqs = first_seen.setdefault(key_of[d.event_id], [])
        if seq_of[d.event_id] not in seqs:
            seqs.append(seq_of[d.event_id])
    for key, seqs in first_seen.items():
        assert seqs == sorted(seqs), key

    # Every acknowledged rename is in the outbox, and the last event of each network
    # carries the revision the database ended with.
    for net in nets:
        revisions = [json.loads(r["body"])["resource"]["revision_number"] for r in outbox
                     if json.loads(r["body"])["resource_id"] == net["id"]]
        assert set(acknowledged[net["id"]]) <= set(revisions)
        assert revisions[-1] == final[net["id"]]
        assert acknowledged[net["id"]], "the burst made no change before the kill"
