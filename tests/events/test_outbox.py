"""The outbox: every committed change writes exactly its events, in its own transaction.

A rejected request, a rolled-back transaction or an event that does not match its schema
leaves neither the change nor any event behind.
"""

from __future__ import annotations

import copy
import uuid

import orjson
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from segmentd.context import RequestContext
from segmentd.db.models import outbox_events
from segmentd.events import catalog, outbox
from segmentd.events.bus import Event
from segmentd.services import networks as network_service
from segmentd.services.audit import audit_row
from segmentd.services.clock import utcnow
from segmentd.services.network_types import TypeRules
from segmentd.services.uow import unit_of_work
from tests.conftest import make_settings, run_on
from tests.factories import error_of, make_network, make_segment, report_body, send_report

MEMBER_OF_P1 = {"X-Project-Id": "p1", "X-Roles": "member"}
COUNTED = ("networks", "segments", "agents", "hosts", "host_reach", "outbox_events")


# What host h1 reports here: a bridge on physnet1 and the geneve tunnels.
H1 = {"bridge_mappings": {"physnet1": "br-eth1"}, "tunnel_types": ["geneve"]}


def outbox_rows(api) -> list[dict]:
    """Every outbox row, oldest first, as stored."""

    async def read(conn):
        stmt = select(outbox_events).order_by(outbox_events.c.seq)
        return [dict(r) for r in (await conn.execute(stmt)).mappings()]

    return api._run(read)


def table_counts(api) -> dict[str, int]:
    async def count(conn):
        return {t: (await conn.execute(text(f"SELECT count(*) FROM {t}"))).scalar()
                for t in COUNTED}

    return api._run(count)


def types_of(api) -> list[tuple[str, str]]:
    return [(e.type, e.resource_id) for e in api.events]


class TestEachChangeWritesItsEvents:
    def test_create_network_writes_the_network_and_its_segment(self, api):
        resp = api.post("/v2.0/networks", json={"network": {"name": "n1"}})
        assert resp.status_code == 201, resp.text
        net = resp.json()["network"]
        (seg,) = api.get("/v2.0/segments", params={"network_id": net["id"]}).json()["segments"]
        events = api.events
        assert [(e.type, e.resource_id) for e in events] == [
            ("network.created", net["id"]), ("segment.created", seg["id"])]
        assert events[0].resource == net
        assert events[1].resource == seg
        request_id = resp.headers["X-Openstack-Request-Id"]
        assert {e.request_id for e in events} == {request_id}
        assert {e.project_id for e in events} == {"dev"}
        rows = outbox_rows(api)
        assert [r["ordering_key"] for r in rows] == [f"network:{net['id']}"] * 2
        assert [orjson.loads(r["body"]) for r in rows] == [e.document() for e in events]

    def test_update_network_writes_one_event_with_the_new_revision(self, api):
        net = make_network(api, name="before")
        api.clear_events()
        resp = api.put(f"/v2.0/networks/{net['id']}", json={"network": {"name": "after"}})
        assert resp.status_code == 200, resp.text
        (event,) = api.events
        assert (event.type, event.resource_id) == ("network.updated", net["id"])
        assert event.resource["name"] == "after"
        assert event.resource["revision_number"] == net["revision_number"] + 1

    def test_delete_network_writes_its_segments_then_itself(self, api):
        net = make_network(api)
        (seg,) = api.get("/v2.0/segments", params={"network_id": net["id"]}).json()["segments"]
        api.clear_events()
        assert api.delete(f"/v2.0/networks/{net['id']}").status_code == 204
        assert types_of(api) == [("segment.deleted", seg["id"]), ("network.deleted", net["id"])]
        assert api.events[1].resource["id"] == net["id"]

    def test_segment_create_update_delete_each_write_one(self, api):
        net = make_network(api)
        api.clear_events()
        seg = make_segment(api, net["id"], network_type="vlan", physical_network="physnet1")
        assert types_of(api) == [("segment.created", seg["id"])]
        api.clear_events()
        resp = api.put(f"/v2.0/segments/{seg['id']}", json={"segment": {"name": "renamed"}})
        assert resp.status_code == 200, resp.text
        assert types_of(api) == [("segment.updated", seg["id"])]
        assert api.events[0].resource["name"] == "renamed"
        api.clear_events()
        assert api.delete(f"/v2.0/segments/{seg['id']}").status_code == 204
        assert types_of(api) == [("segment.deleted", seg["id"])]
        # A segment orders with its network.
        keys = {r["ordering_key"] for r in outbox_rows(api) if r["resource_id"] == seg["id"]}
        assert keys == {f"network:{net['id']}"}

    def test_host_report_and_agent_changes(self, api):
        net = make_network(api)  # a geneve tenant segment the host will reach
        (seg,) = api.get("/v2.0/segments", params={"network_id": net["id"]}).json()["segments"]
        api.clear_events()
        agent = send_report(api, "h1", **H1)
        assert types_of(api) == [("agent.created", agent["id"]), ("host.segments_changed", "h1")]
        change = api.events[1].resource
        assert (change["reason"], change["gained"], change["lost"]) == ("report", [seg["id"]], [])

        api.clear_events()  # the same report again is a heartbeat: nothing to publish
        send_report(api, "h1", **H1)
        assert api.events == []

        resp = api.put(f"/v2.0/agents/{agent['id']}", json={"agent": {"description": "d"}})
        assert resp.status_code == 200, resp.text
        assert types_of(api) == [("agent.updated", agent["id"])]
        api.clear_events()

        assert api.delete(f"/v2.0/agents/{agent['id']}").status_code == 204
        assert types_of(api) == [("host.segments_changed", "h1"), ("agent.deleted", agent["id"])]
        assert api.events[0].resource["lost"] == [seg["id"]]
        host_rows = [r for r in outbox_rows(api) if r["resource_type"] in ("agent", "host")]
        assert {r["ordering_key"] for r in host_rows} == {"host:h1"}


class TestRejectedRequestsWriteNothing:
    def _check_unchanged(self, api, resp, status, before):
        assert resp.status_code == status, resp.text
        assert table_counts(api) == before
        assert api.events == []

    def test_invalid_body_400(self, api):
        api.clear_events()
        before = table_counts(api)
        resp = api.post("/v2.0/networks", json={"network": {"name": "n", "mtu": "big"}})
        self._check_unchanged(api, resp, 400, before)

    def test_missing_network_404(self, api):
        before = table_counts(api)
        resp = api.put(f"/v2.0/networks/{uuid.uuid4()}", json={"network": {"name": "x"}})
        self._check_unchanged(api, resp, 404, before)

    def test_policy_refusal_403(self, api):
        net = make_network(api, headers=MEMBER_OF_P1)
        api.clear_events()
        before = table_counts(api)
        resp = api.post("/v2.0/segments", headers=MEMBER_OF_P1,
                        json={"segment": {"network_id": net["id"], "network_type": "geneve"}})
        self._check_unchanged(api, resp, 403, before)
        resp = api.post("/v2.0/host-reports", json=report_body("h1", **H1))  # admin, not service
        self._check_unchanged(api, resp, 403, before)

    def test_failure_after_the_network_row_was_written_rolls_back_its_events_too(self, api):
        """The network row is inserted before its segment's VLAN turns out to be taken."""
        make_network(api, **{"provider:network_type": "vlan",
                             "provider:physical_network": "physnet2",
                             "provider:segmentation_id": 300})
        api.clear_events()
        before = table_counts(api)
        resp = api.post("/v2.0/networks", json={"network": {
            "name": "second", "provider:network_type": "vlan",
            "provider:physical_network": "physnet2", "provider:segmentation_id": 300}})
        self._check_unchanged(api, resp, 409, before)
        assert error_of(resp)["type"] == "VlanIdInUse"
        names = [n["name"] for n in api.get("/v2.0/networks").json()["networks"]]
        assert "second" not in names


# -- the unit of work on a real database, without the HTTP layer -----------------------------

ADMIN = RequestContext.admin(request_id="req-test")


async def counts(engine) -> dict[str, int]:
    async with engine.connect() as conn:
        return {t: (await conn.execute(text(f"SELECT count(*) FROM {t}"))).scalar()
                for t in ("networks", "segments", "outbox_events")}


def bad_network_event() -> Event:
    """A network.created whose resource lacks required fields: a producer bug."""
    return Event(type="network.created", resource_id=str(uuid.uuid4()),
                 resource={"id": str(uuid.uuid4()), "name": "half"})


@pytest.fixture
def rules(db_url):
    return TypeRules(make_settings(db_url))


class TestUnitOfWork:
    def test_committed_work_has_its_events(self, db_url, rules):
        woken = []

        async def work(engine):
            async with unit_of_work(engine, after_commit=lambda: woken.append(1)) as uow:
                net = await network_service.create_network(ADMIN, uow, rules, {"name": "n"})
            return net, await counts(engine)

        net, found = run_on(db_url, work)
        assert found == {"networks": 1, "segments": 1, "outbox_events": 2}
        assert woken == [1]
        assert net["name"] == "n"

    def test_an_event_that_breaks_its_schema_rolls_back_the_whole_change(self, db_url, rules):
        woken = []

        async def work(engine):
            with pytest.raises(catalog.InvalidEvent, match="network.created"):
                async with unit_of_work(engine, after_commit=lambda: woken.append(1)) as uow:
                    await network_service.create_network(ADMIN, uow, rules, {"name": "n"})
                    uow.events.append(bad_network_event())
            return await counts(engine)

        assert run_on(db_url, work) == {"networks": 0, "segments": 0, "outbox_events": 0}
        assert woken == []  # the dispatcher is not woken for a change that did not commit

    def test_a_journal_row_the_database_refuses_rolls_back_the_change_and_its_events(
        self, db_url, rules
    ):
        """The audit row goes in with the events (one statement on PostgreSQL, right after
        them elsewhere); when the database refuses it, nothing of the change remains."""

        def broken_audit(uow):
            row = audit_row(ADMIN, request_id="req-test", action="create_network",
                            resource_type="network", resource_id=None, status=201)
            return {**row, "action": None}  # NOT NULL

        async def work(engine):
            with pytest.raises(IntegrityError):
                async with unit_of_work(engine, audit=broken_audit) as uow:
                    await network_service.create_network(ADMIN, uow, rules, {"name": "n"})
            return await counts(engine)

        assert run_on(db_url, work) == {"networks": 0, "segments": 0, "outbox_events": 0}

    def test_write_validates_every_event_before_inserting_any(self, db_url, rules):
        """Even if the caller swallows the error and commits, nothing of the batch is in."""

        async def work(engine):
            async with unit_of_work(engine) as uow:
                await network_service.create_network(ADMIN, uow, rules, {"name": "n"})
            good = await counts(engine)
            events = [Event.from_document(orjson.loads(r.body))
                      for r in await _bodies(engine)]
            fresh = [Event(type=e.type, resource_id=e.resource_id, resource=e.resource,
                           project_id=e.project_id) for e in events]
            async with engine.begin() as conn:
                with pytest.raises(catalog.InvalidEvent):
                    await outbox.write(conn, [*fresh, bad_network_event()], utcnow())
            return good, await counts(engine)

        good, after = run_on(db_url, work)
        assert good == after == {"networks": 1, "segments": 1, "outbox_events": 2}


async def _bodies(engine):
    async with engine.connect() as conn:
        stmt = select(outbox_events.c.body).order_by(outbox_events.c.seq)
        return (await conn.execute(stmt)).all()


# -- the catalog's check ------------------------------------------------------------------------

SEGMENT_ID = "2db48303-cc81-4a65-95f3-090677778b46"
NETWORK_ID = "e1edf05e-61b7-4e5d-8b39-c2bc06253744"
VALID = Event(
    type="segment.created", resource_id=SEGMENT_ID, project_id="p1", request_id="req-1",
    resource={
        "id": SEGMENT_ID, "network_id": NETWORK_ID, "name": None, "description": "",
        "physical_network": "physnet1", "network_type": "vlan", "segmentation_id": 100,
        "created_at": "2026-01-02T03:04:05Z", "updated_at": "2026-01-02T03:04:05Z",
        "revision_number": 0,
    },
).document()


def _set(path: str, value):
    def change(doc):
        *parents, last = path.split(".")
        for p in parents:
            doc = doc[p]
        doc[last] = value
    return change


def _drop(path: str):
    def change(doc):
        *parents, last = path.split(".")
        for p in parents:
            doc = doc[p]
        del doc[last]
    return change


BAD_DOCUMENTS = {
    "unknown type": _set("type", "segment.exploded"),
    "no type": _drop("type"),
    "envelope field missing": _drop("request_id"),
    "extra envelope field": _set("extra", 1),
    "resource missing": _drop("resource"),
    "resource of another type": _set("resource_type", "network"),
    "id not a uuid": _set("id", "not-a-uuid"),
    "resource_id empty": _set("resource_id", ""),
    "time not a date-time": _set("time", "yesterday"),
    "project_id a number": _set("project_id", 7),
    "resource field missing": _drop("resource.network_id"),
    "extra resource field": _set("resource.tags", []),
    "segmentation_id as text": _set("resource.segmentation_id", "100"),
    "segmentation_id zero": _set("resource.segmentation_id", 0),
    "segmentation_id past the VNI range": _set("resource.segmentation_id", 2**24),
    "unknown network_type": _set("resource.network_type", "token-ring"),
    "timestamp with fractions": _set("resource.created_at", "2026-01-02T03:04:05.123Z"),
    "negative revision": _set("resource.revision_number", -1),
}


class TestCatalogValidate:
    def test_the_valid_document_passes(self):
        catalog.validate(copy.deepcopy(VALID))

    @pytest.mark.parametrize("case", sorted(BAD_DOCUMENTS))
    def test_bad_document_is_refused(self, case):
        doc = copy.deepcopy(VALID)
        BAD_DOCUMENTS[case](doc)
        with pytest.raises(catalog.InvalidEvent):
            catalog.validate(doc)

    def test_a_host_change_with_an_unknown_reason_is_refused(self):
        doc = Event(type="host.segments_changed", resource_id="h1", resource={
            "host": "h1", "reason": "report", "physnets": [], "tunnel_types": ["geneve"],
            "gained": [SEGMENT_ID], "lost": []}).document()
        catalog.validate(doc)
        doc["resource"]["reason"] = "whim"
        with pytest.raises(catalog.InvalidEvent, match="host.segments_changed"):
            catalog.validate(doc)

    def test_outbox_row_refuses_what_validate_refuses(self):
        event = Event.from_document({**copy.deepcopy(VALID), "resource": {"id": SEGMENT_ID}})
        with pytest.raises(catalog.InvalidEvent):
            outbox.outbox_row(event, utcnow())

    def test_ordering_keys(self):
        seg = Event.from_document(copy.deepcopy(VALID))
        assert outbox.ordering_key(seg) == f"network:{NETWORK_ID}"
        agent = Event(type="agent.deleted", resource_id="a1", resource={"host": "h9"})
        assert outbox.ordering_key(agent) == "host:h9"
        host = Event(type="host.segments_changed", resource_id="h9", resource={"host": "h9"})
        assert outbox.ordering_key(host) == "host:h9"
        net = Event(type="network.updated", resource_id=NETWORK_ID, resource={})
        assert outbox.ordering_key(net) == f"network:{NETWORK_ID}"
