"""OVSDB connections (Northbound, Southbound): opened in the background, retried, never
at import time.

ovsdbapp keeps its connection on the API class, so each connection gets a class of its
own. Once connected, python-ovs reconnects by itself after an outage; until the first
connection succeeds a background thread retries with backoff, and the state (connected,
last error) is what readiness reports.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

LOG = logging.getLogger(__name__)
# Only the columns segmentd reads or writes: an update to any other (ovn-northd setting a
# port's `up`, NB_Global's sequence numbers) is then never sent to segmentd at all.
NB_TABLES = {
    "NB_Global": ["options"],
    "Logical_Switch": ["name", "external_ids", "other_config", "ports"],
    "Logical_Switch_Port": ["name", "type", "addresses", "options", "tag_request",
                            "external_ids", "port_security", "enabled", "dhcpv4_options",
                            "dhcpv6_options"],
    "DHCP_Options": ["cidr", "options", "external_ids"],
}


@dataclass(frozen=True)
class OvnEndpoint:
    remote: str  # "tcp:H:P", "ssl:H:P", "unix:PATH" or a comma-separated list (RAFT)
    timeout: float = 10.0  # seconds: connecting, and each transaction
    probe_interval_ms: int = 5000
    ssl_private_key: str | None = None
    ssl_certificate: str | None = None
    ssl_ca_cert: str | None = None


def endpoint_of(ovn, remote: str | None = None) -> OvnEndpoint:
    """The Northbound endpoint of the [ovn] settings (or another remote, with its SSL files)."""
    return OvnEndpoint(remote or ovn.nb_connection, ovn.timeout_seconds, ovn.probe_interval_ms,
                       ovn.ssl_private_key, ovn.ssl_certificate, ovn.ssl_ca_cert)


def _configure_ssl(endpoint: OvnEndpoint) -> None:
    if not endpoint.ssl_private_key:
        return
    from ovs.stream import Stream  # python-ovs keeps these per process

    Stream.ssl_set_private_key_file(endpoint.ssl_private_key)
    Stream.ssl_set_certificate_file(endpoint.ssl_certificate)
    Stream.ssl_set_ca_cert_file(endpoint.ssl_ca_cert)


class OvsdbConnection:
    """An ovsdbapp API on one OVN database once connected; `api` is None until then.

    Subclasses name the schema, the tables (and columns, None for all) to replicate and
    the ovsdbapp API class.
    """

    schema = ""
    tables: dict[str, list[str] | None] = {}
    what = "OVSDB"

    def __init__(self, endpoint: OvnEndpoint) -> None:
        self.endpoint = endpoint
        self.api = None
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Called from the connection's thread whenever the replica changed (or was
        # loaded): lets a reader wait for changes instead of polling for them.
        self.on_change: Callable[[], None] | None = None

    @property
    def connected(self) -> bool:
        if self.api is None:
            return False
        session = getattr(self.api.idl, "_session", None)  # python-ovs has no public flag
        return session is None or session.is_connected()

    def _api_class(self):
        raise NotImplementedError

    def start(self) -> None:
        _warn_if_slow_json()
        self._thread = threading.Thread(target=self._connect_loop,
                                        name=f"ovn-{self.schema}-connect", daemon=True)
        self._thread.start()

    def wait_connected(self, timeout: float) -> bool:
        """For tools and tests: block until connected (True) or the timeout passes."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.api is not None

    def _connect_loop(self) -> None:
        delay = 0.5
        while not self._stop.is_set():
            try:
                self.api = self._open()
                self.last_error = None
                self._changed()  # the first copy is now readable
                LOG.info("connected to the %s at %s", self.what, self.endpoint.remote)
                return
            except Exception as exc:  # any failure: say so, wait, try again
                self.last_error = f"{type(exc).__name__}: {exc}"
                LOG.warning("%s at %s unreachable (%s); retrying in %.1f s",
                            self.what, self.endpoint.remote, self.last_error, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, 30.0)

    def _open(self):
        from ovsdbapp.backend.ovs_idl import connection, idlutils

        _configure_ssl(self.endpoint)
        helper = idlutils.get_schema_helper(self.endpoint.remote, self.schema)
        for table, columns in self.tables.items():
            if columns is None:
                helper.register_table(table)
            else:
                helper.register_columns(table, columns)
        idl = _notifying_idl_class()(self.endpoint.remote, helper,
                                     probe_interval=self.endpoint.probe_interval_ms)
        idl.on_change = self._changed
        conn = connection.Connection(idl, timeout=self.endpoint.timeout)
        # ovsdbapp keeps the connection on the class: a class of our own per connection.
        api_class = type(f"Segmentd{self.schema}", (self._api_class(),), {})
        return api_class(conn)  # waits for the first full copy of the tables

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def stop(self) -> None:
        self._stop.set()
        if self.api is not None:
            try:
                self.api.ovsdb_connection.stop(timeout=self.endpoint.timeout)
            except Exception:  # stopping is best effort
                LOG.debug("stopping the Northbound connection failed", exc_info=True)
            self.api = None


class NorthboundConnection(OvsdbConnection):
    schema = "OVN_Northbound"
    tables = NB_TABLES
    what = "OVN Northbound DB"
    _max_tunid: int | None = None  # the last value seen, kept through outages

    def _api_class(self):
        from ovsdbapp.schema.ovn_northbound import impl_idl

        return impl_idl.OvnNbApiIdlImpl

    def max_tunnel_id(self) -> int | None:
        """NB_Global options:max_tunid as ovn-northd publishes it (it depends on the
        chassis' encapsulations), read from the local replica; the last value seen while
        disconnected; None before OVN ever said."""
        api = self.api
        # Not while the IDL's thread applies an update, and never waiting for it (this runs
        # on the event loop): then the last value read stands.
        if api is not None and self.connected and api.ovsdb_connection.lock.acquire(False):
            try:
                rows = list(api.tables["NB_Global"].rows.values())
                value = rows[0].options.get("max_tunid") if rows else None
            finally:
                api.ovsdb_connection.lock.release()
            if value is not None and value.isdigit():
                self._max_tunid = int(value)
        return self._max_tunid


class OvnLimits:
    """What OVN can carry, for segment validation at API time (see TypeRules)."""

    name = "OVN"
    # OVN has no GRE: tunnelled networks are logical datapaths with northd's tunnel keys.
    network_types = frozenset({"flat", "vlan", "vxlan", "geneve"})

    def __init__(self, northbound: NorthboundConnection) -> None:
        self._northbound = northbound

    def max_tunnel_id(self) -> int | None:
        return self._northbound.max_tunnel_id()


@functools.cache
def _notifying_idl_class():
    """ovsdbapp's IDL, calling `on_change` after a run that changed the replica.

    It also does not yield the GIL after every row of an update, as ovsdbapp's does (a
    hook for green threads). The IDL has a thread of its own, and Python already switches
    threads every few milliseconds; a yield per row instead queued each of a large
    update's rows behind the event loop's work (5,000 chassis took seconds to load while
    the loop was busy).
    """
    from ovsdbapp.backend.ovs_idl import connection

    class NotifyingIdl(connection.OvsdbIdl):
        on_change: Callable[[], None] | None = None

        def cooperative_yield(self) -> None:
            pass

        def run(self):
            before = self.change_seqno
            try:
                return super().run()
            finally:  # also when a run failed after applying some rows
                if self.change_seqno != before and self.on_change is not None:
                    self.on_change()

    return NotifyingIdl


@functools.cache
def _warn_if_slow_json() -> None:
    import ovs.json

    if ovs.json.PARSER != ovs.json.PARSER_C:
        LOG.warning("python-ovs parses OVSDB JSON in pure Python (its C extension is missing): "
                    "large Southbound and Northbound updates load several times slower; "
                    "see the README's OVN section")
