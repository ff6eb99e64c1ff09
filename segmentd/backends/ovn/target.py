"""The OVN backend as a dispatcher target: outbox events become Northbound transactions.

It runs after commit, off the request path. The dispatcher hands it every claimed event
at once (`deliver_batch`): their commands go into one OVSDB transaction, in event order,
so a burst of a thousand creates costs one round trip, not a thousand. If that
transaction fails, the dispatcher retries the events one at a time, which isolates a
bad one. Commands are idempotent, so an event delivered twice changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import orjson

from segmentd import constants as c
from segmentd.backends.base import BackendUnavailable
from segmentd.backends.ovn import commands as cmd
from segmentd.backends.ovn import naming
from segmentd.backends.ovn import port_commands as pcmd
from segmentd.backends.ovn.connection import NorthboundConnection

LOG = logging.getLogger(__name__)
# A network shows status BUILD while one of these (its own or a segment's) is on its way.
NETWORK_SHAPE = frozenset({
    c.EVENT_NETWORK_CREATED, c.EVENT_NETWORK_UPDATED, c.EVENT_NETWORK_DELETED,
    c.EVENT_SEGMENT_CREATED, c.EVENT_SEGMENT_DELETED,
})
HANDLED = NETWORK_SHAPE | frozenset({
    c.EVENT_SUBNET_CREATED, c.EVENT_SUBNET_UPDATED, c.EVENT_SUBNET_DELETED,
    c.EVENT_PORT_CREATED, c.EVENT_PORT_UPDATED, c.EVENT_PORT_DELETED,
})


class OvnUnavailable(BackendUnavailable):
    """The Northbound DB is not connected: the event waits and is retried."""


def commands_for(api, batch: cmd.Batch, event_type: str, resource: dict[str, Any]) -> list:
    """The Northbound commands that realize one event (none for what OVN does not hold)."""
    if event_type in (c.EVENT_NETWORK_CREATED, c.EVENT_NETWORK_UPDATED):
        external_ids, other_config = naming.switch_columns(resource)
        out = [cmd.EnsureSwitch(api, batch, naming.switch_name(resource["id"]), external_ids,
                                other_config, int(resource["revision_number"]))]
        if event_type == c.EVENT_NETWORK_UPDATED and resource.get("mtu"):
            out.append(pcmd.FollowSwitchMtu(api, batch, resource["id"], int(resource["mtu"]),
                                            int(resource["revision_number"])))
        return out
    if event_type.startswith("subnet."):
        if event_type != c.EVENT_SUBNET_DELETED and naming.has_dhcp_options(resource):
            return [pcmd.EnsureDhcpOptions(api, batch, resource)]
        return [pcmd.DeleteDhcpOptions(api, batch, resource["id"])]
    if event_type.startswith("port."):
        switch = naming.switch_name(resource["network_id"])
        if event_type != c.EVENT_PORT_DELETED and naming.realizes_port(resource):
            return [pcmd.EnsureVifPort(api, batch, resource)]
        return [cmd.DeletePort(api, batch, switch, resource["id"])]
    if event_type == c.EVENT_NETWORK_DELETED:
        return [cmd.DeleteSwitch(api, batch, naming.switch_name(resource["id"]))]
    if not naming.has_localnet_port(resource):
        return []  # a tunnel segment has no row of its own in the Northbound DB
    switch = naming.switch_name(resource["network_id"])
    port = naming.localnet_port_name(resource["id"])
    if event_type == c.EVENT_SEGMENT_CREATED:
        tag, external_ids, options = naming.localnet_columns(resource)
        return [cmd.EnsureLocalnetPort(api, batch, switch, port, resource["physical_network"],
                                       tag, external_ids, options)]
    if event_type == c.EVENT_SEGMENT_DELETED:
        return [cmd.DeletePort(api, batch, switch, port)]
    return []


class OvnTarget:
    name = "ovn"

    def __init__(self, nb: NorthboundConnection, owner: str) -> None:
        self._nb = nb
        self._owner = owner

    def wants(self, event_type: str) -> bool:
        return event_type in HANDLED

    async def deliver(self, event_id: str, event_type: str, body: bytes) -> None:
        await self.deliver_batch([(event_id, event_type, body)])

    async def deliver_batch(self, events: Sequence[tuple[str, str, bytes]]) -> None:
        """Apply the events in order in one Northbound transaction; raise if it failed."""
        api = self._nb.api
        if api is None or not self._nb.connected:
            raise OvnUnavailable(self._nb.last_error or "not connected to the Northbound DB")
        parsed = [(t, orjson.loads(body)["resource"]) for _, t, body in events]
        from ovsdbapp.exceptions import TimeoutException

        try:
            await asyncio.to_thread(self._commit, api, parsed)
        except TimeoutException as exc:  # the outcome is unknown; the commands are idempotent
            raise OvnUnavailable(f"Northbound transaction timed out: {exc}") from exc

    def _commit(self, api, parsed: list[tuple[str, dict[str, Any]]]) -> None:
        batch = cmd.Batch(self._owner)
        with api.transaction(check_error=True, log_errors=False) as txn:
            for event_type, resource in parsed:
                for command in commands_for(api, batch, event_type, resource):
                    txn.add(command)
