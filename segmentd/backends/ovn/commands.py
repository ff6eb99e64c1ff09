"""OVSDB commands that realize segmentd's rows in the Northbound DB, safely.

Each command decides inside the OVSDB transaction, against the rows as they are, so it is
idempotent and never touches what is not segmentd's:

- a row without `segmentd:owner` = our owner is someone else's: it is left alone and the
  command's result says "foreign";
- a switch whose `neutron:revision_number` is newer than the event's keeps its state
  ("stale"): an old event delivered late never overwrites a newer one.

Commands of one batch share a `Batch`, which remembers the rows inserted earlier in the
same transaction (the IDL's name index only learns them after the commit).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from ovsdbapp.backend.ovs_idl import command, idlutils

LOG = logging.getLogger(__name__)

OWNER_KEY = "segmentd:owner"
REVISION_KEY = "neutron:revision_number"
SWITCH = "Logical_Switch"
PORT = "Logical_Switch_Port"

CREATED, UPDATED, DELETED, ABSENT, FOREIGN, STALE = (
    "created", "updated", "deleted", "absent", "foreign", "stale",
)


@dataclass
class Batch:
    """What one transaction has inserted so far, by table and name."""

    owner: str
    pending: dict[tuple[str, str], Any] = field(default_factory=dict)

    def rows(self, api, table: str, name: str) -> list:
        found = self.pending.get((table, name))
        if found is not None:
            return [found]
        return list(idlutils.rows_by_value(api.idl, table, "name", name))

    def owns(self, row) -> bool:
        return row.external_ids.get(OWNER_KEY) == self.owner


class _Command(command.BaseCommand):
    def __init__(self, api, batch: Batch) -> None:
        super().__init__(api)
        self.batch = batch


class EnsureSwitch(_Command):
    """The switch exists with these external_ids and other_config keys (others kept)."""

    def __init__(self, api, batch, name: str, external_ids: dict[str, str],
                 other_config: dict[str, str], revision: int, force: bool = False) -> None:
        super().__init__(api, batch)
        self.name, self.external_ids, self.other_config = name, external_ids, other_config
        self.revision = revision
        self.force = force  # repair: the database's state wins whatever the NB's revision

    def run_idl(self, txn) -> None:
        rows = self.batch.rows(self.api, SWITCH, self.name)
        wanted_ids = {**self.external_ids, OWNER_KEY: self.batch.owner}
        if not rows:
            row = txn.insert(self.api.tables[SWITCH])
            row.name = self.name
            row.external_ids = wanted_ids
            row.other_config = self.other_config
            self.batch.pending[(SWITCH, self.name)] = row
            self.result = CREATED
            return
        row = rows[0]
        if not self.batch.owns(row):
            LOG.warning("switch %s exists without this segmentd's owner marker: left alone",
                        self.name)
            self.result = FOREIGN
            return
        if _revision(row) > self.revision and not self.force:
            self.result = STALE
            return
        row.verify("external_ids")  # a concurrent writer makes the transaction try again
        row.external_ids = {**row.external_ids, **wanted_ids}
        row.other_config = {**row.other_config, **self.other_config}
        self.result = UPDATED


class DeleteSwitch(_Command):
    """The switch (and so its ports) is gone, if it is ours."""

    def __init__(self, api, batch, name: str) -> None:
        super().__init__(api, batch)
        self.name = name

    def run_idl(self, txn) -> None:
        self.result = ABSENT
        for row in self.batch.rows(self.api, SWITCH, self.name):
            if not self.batch.owns(row):
                self.result = FOREIGN
                continue
            row.delete()
            self.batch.pending.pop((SWITCH, self.name), None)
            self.result = DELETED


class EnsureLocalnetPort(_Command):
    """The localnet port of a segment with a physical network, on its network's switch."""

    def __init__(self, api, batch, switch: str, name: str, physnet: str,
                 tag: int | None, external_ids: dict[str, str], options: dict[str, str]) -> None:
        super().__init__(api, batch)
        self.switch, self.name, self.physnet, self.tag = switch, name, physnet, tag
        self.external_ids, self.options = external_ids, options

    def run_idl(self, txn) -> None:
        switches = self.batch.rows(self.api, SWITCH, self.switch)
        if not switches or not self.batch.owns(switches[0]):
            # Nothing of ours to attach it to: the drift check reports and repairs it.
            LOG.warning("port %s: switch %s is missing or not segmentd's", self.name, self.switch)
            self.result = FOREIGN if switches else ABSENT
            return
        switch = switches[0]
        ports = self.batch.rows(self.api, PORT, self.name)
        if ports and not self.batch.owns(ports[0]):
            self.result = FOREIGN
            return
        if ports:
            port = ports[0]
            port.verify("external_ids")
            self.result = UPDATED
        else:
            port = txn.insert(self.api.tables[PORT])
            port.name = self.name
            self.batch.pending[(PORT, self.name)] = port
            self.result = CREATED
        port.type = "localnet"
        port.addresses = ["unknown"]
        port.options = {**(port.options if ports else {}), **self.options}
        port.tag_request = [] if self.tag is None else [self.tag]
        port.external_ids = {**(port.external_ids if ports else {}), **self.external_ids,
                             OWNER_KEY: self.batch.owner}
        if not ports or port not in switch.ports:
            switch.addvalue("ports", port)


class DeletePort(_Command):
    """The segment's localnet port is gone from its switch, if it is ours."""

    def __init__(self, api, batch, switch: str, name: str) -> None:
        super().__init__(api, batch)
        self.switch, self.name = switch, name

    def run_idl(self, txn) -> None:
        ports = self.batch.rows(self.api, PORT, self.name)
        if not ports:
            self.result = ABSENT
            return
        port = ports[0]
        if not self.batch.owns(port):
            self.result = FOREIGN
            return
        for switch in self.batch.rows(self.api, SWITCH, self.switch):
            if port in switch.ports:
                switch.delvalue("ports", port)
        port.delete()
        self.batch.pending.pop((PORT, self.name), None)
        self.result = DELETED


def _revision(row) -> int:
    try:
        return int(row.external_ids.get(REVISION_KEY, -1))
    except ValueError:
        return -1
