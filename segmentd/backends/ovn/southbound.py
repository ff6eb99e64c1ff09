"""The Southbound side: which chassis exist, and what each reaches.

Only the columns that decide reachability are replicated (Chassis name, hostname,
other_config, external_ids, encaps; Encap type), so ovn-controller's frequent writes to
other columns (nb_cfg and the like, most of them in Chassis_Private) neither wake segmentd
nor cost it anything: the IDL's change counter moves only when those columns change, or
when a reconnect reloads the tables (a Southbound DB restarted empty sends no deletes;
the reload does change the counter).
"""

from __future__ import annotations

from segmentd.backends.base import ChassisState
from segmentd.backends.ovn.connection import OvsdbConnection

SB_TABLES = {
    "Chassis": ["name", "hostname", "other_config", "external_ids", "encaps"],
    "Encap": ["type"],
}
BRIDGE_MAPPINGS = "ovn-bridge-mappings"
TUNNEL_ENCAPS = ("geneve", "vxlan")  # stt reaches nothing segmentd allocates


def parse_bridge_mappings(text: str) -> tuple[tuple[str, str], ...]:
    """`physnet1:br-ex,physnet2:br-eth1` (spaces allowed); ValueError if malformed."""
    found: dict[str, str] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        physnet, sep, bridge = item.partition(":")
        physnet, bridge = physnet.strip(), bridge.strip()
        if not sep or not physnet or not bridge:
            raise ValueError(f"{BRIDGE_MAPPINGS} entry {item!r} is not physnet:bridge")
        if physnet in found and found[physnet] != bridge:
            raise ValueError(f"{BRIDGE_MAPPINGS} maps {physnet!r} twice")
        found[physnet] = bridge
    return tuple(sorted(found.items()))


def chassis_state(row) -> ChassisState:
    """One Chassis row; the mappings from other_config (OVN >= 20.06), else external_ids."""
    config = row.other_config.get(BRIDGE_MAPPINGS)
    if config is None:
        config = row.external_ids.get(BRIDGE_MAPPINGS, "")
    tunnels = tuple(sorted({e.type for e in row.encaps if e.type in TUNNEL_ENCAPS}))
    try:
        mappings = parse_bridge_mappings(config)
    except ValueError as exc:
        return ChassisState(row.name, row.hostname, (), tunnels, str(exc))
    return ChassisState(row.name, row.hostname, mappings, tunnels)


class SouthboundConnection(OvsdbConnection):
    schema = "OVN_Southbound"
    tables = SB_TABLES
    what = "OVN Southbound DB"

    def _api_class(self):
        from ovsdbapp.schema.ovn_southbound import impl_idl

        return impl_idl.OvnSbApiIdlImpl

    def change_seqno(self) -> int | None:
        """Moves whenever a replicated column changes or the tables are reloaded."""
        api = self.api
        return api.idl.change_seqno if api is not None else None

    def snapshot(self) -> dict[str, ChassisState]:
        """Every chassis, read from the local replica (call it off the event loop).

        Read under the connection's lock, which its thread holds while it applies an
        update: a chassis is never seen half-inserted (its encaps not yet linked).
        """
        api = self.api
        if api is None:
            raise RuntimeError("not connected to the Southbound DB")
        with api.ovsdb_connection.lock:
            return {row.name: chassis_state(row) for row in api.tables["Chassis"].rows.values()}
