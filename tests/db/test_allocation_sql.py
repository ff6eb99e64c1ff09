"""The allocating segment insert, statement by statement, on each database.

PostgreSQL tries the random IDs as one array and the others as one subquery each; both
must take the first free ID in the order given, fall back to the gaps, and insert nothing
once the range is full.
"""

import uuid

from segmentd.db.engine import write_connection
from segmentd.db.networks import insert_network
from segmentd.db.segments import insert_segment
from segmentd.services.clock import utcnow
from tests.conftest import run_on

LO, HI = 10, 19  # a ten-ID range


def network_row() -> dict:
    now = utcnow()
    return {
        "id": str(uuid.uuid4()), "project_id": "p", "name": "n", "description": "",
        "admin_state_up": True, "shared": False, "status": "ACTIVE", "mtu": 1450,
        "created_at": now, "updated_at": now, "revision_number": 0,
    }


def segment_row(network_id: str) -> dict:
    now = utcnow()
    return {
        "id": str(uuid.uuid4()), "network_id": network_id, "name": None, "description": "",
        "created_at": now, "updated_at": now, "revision_number": 0,
        "network_type": "vxlan", "alloc_physnet": "", "physical_network": None,
    }


def allocate_in_turn(db_url, taken: list[int], attempts: list[tuple[int, ...]]):
    """Take `taken` as fixed IDs, then allocate once per probe tuple: the IDs got (None
    where the insert found nothing)."""

    async def work(engine):
        async with write_connection(engine) as conn:
            net = network_row()
            await insert_network(conn, net)
            for alloc_id in taken:
                got = await insert_segment(conn, segment_row(net["id"]), carries_id=True,
                                           alloc_id=alloc_id)
                assert got is not None and got["segmentation_id"] == alloc_id
            out = []
            for probes in attempts:
                got = await insert_segment(conn, segment_row(net["id"]), carries_id=True,
                                           lo=LO, hi=HI, probes=probes)
                out.append(None if got is None else got["segmentation_id"])
            return out

    return run_on(db_url, work)


def test_the_first_free_probe_in_order_is_taken(db_url):
    probes = (12, 17, 15, 11, 18, 13, 16, 14)  # 12 and 17 taken: 15 is the first free
    assert allocate_in_turn(db_url, [12, 17], [probes]) == [15]


def test_later_probes_are_tried_in_order_as_earlier_ones_fill(db_url):
    probes = (12, 17, 15, 11, 18, 13, 16, 14)
    # Each allocation takes the next free probe of the same tuple.
    assert allocate_in_turn(db_url, [], [probes] * 3) == [12, 17, 15]


def test_all_probes_taken_falls_back_to_the_gap_after_the_first_probe(db_url):
    probes = (13, 14, 13, 14, 13, 14, 13, 14)
    assert allocate_in_turn(db_url, [13, 14], [probes]) == [15]


def test_no_gap_above_the_first_probe_wraps_to_the_bottom_of_the_range(db_url):
    probes = (17,) * 8
    assert allocate_in_turn(db_url, [17, 18, 19], [probes]) == [10]


def test_a_full_range_inserts_nothing(db_url):
    probes = (14,) * 8
    everything = list(range(LO, HI + 1))
    assert allocate_in_turn(db_url, everything, [probes]) == [None]
