"""The Northbound connection: opened in the background, retried, never at import time.

ovsdbapp keeps its connection on the API class, so each connection gets a class of its
own. Once connected, python-ovs reconnects by itself after an outage; until the first
connection succeeds a background thread retries with backoff, and the state (connected,
last error) is what readiness reports.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

LOG = logging.getLogger(__name__)
NB_TABLES = ("NB_Global", "Logical_Switch", "Logical_Switch_Port")


@dataclass(frozen=True)
class OvnEndpoint:
    remote: str  # "tcp:H:P", "ssl:H:P", "unix:PATH" or a comma-separated list (RAFT)
    timeout: float = 10.0  # seconds: connecting, and each transaction
    probe_interval_ms: int = 5000
    ssl_private_key: str | None = None
    ssl_certificate: str | None = None
    ssl_ca_cert: str | None = None


def endpoint_of(ovn) -> OvnEndpoint:
    """The Northbound endpoint of the [ovn] settings."""
    return OvnEndpoint(ovn.nb_connection, ovn.timeout_seconds, ovn.probe_interval_ms,
                       ovn.ssl_private_key, ovn.ssl_certificate, ovn.ssl_ca_cert)


def _configure_ssl(endpoint: OvnEndpoint) -> None:
    if not endpoint.ssl_private_key:
        return
    from ovs.stream import Stream  # python-ovs keeps these per process

    Stream.ssl_set_private_key_file(endpoint.ssl_private_key)
    Stream.ssl_set_certificate_file(endpoint.ssl_certificate)
    Stream.ssl_set_ca_cert_file(endpoint.ssl_ca_cert)


class NorthboundConnection:
    """An ovsdbapp OVN_Northbound API once connected; `api` is None until then."""

    def __init__(self, endpoint: OvnEndpoint) -> None:
        self.endpoint = endpoint
        self.api = None
        self.last_error: str | None = None
        self._max_tunid: int | None = None  # the last value seen, kept through outages
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def connected(self) -> bool:
        if self.api is None:
            return False
        session = getattr(self.api.idl, "_session", None)  # python-ovs has no public flag
        return session is None or session.is_connected()

    def max_tunnel_id(self) -> int | None:
        """NB_Global options:max_tunid as ovn-northd publishes it (it depends on the
        chassis' encapsulations), read from the local replica; the last value seen while
        disconnected; None before OVN ever said."""
        api = self.api
        if api is not None and self.connected:
            for row in api.tables["NB_Global"].rows.values():
                value = row.options.get("max_tunid")
                if value is not None and value.isdigit():
                    self._max_tunid = int(value)
                break
        return self._max_tunid

    def start(self) -> None:
        self._thread = threading.Thread(target=self._connect_loop, name="ovn-nb-connect",
                                        daemon=True)
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
                LOG.info("connected to the OVN Northbound DB at %s", self.endpoint.remote)
                return
            except Exception as exc:  # any failure: say so, wait, try again
                self.last_error = f"{type(exc).__name__}: {exc}"
                LOG.warning("OVN Northbound DB at %s unreachable (%s); retrying in %.1f s",
                            self.endpoint.remote, self.last_error, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, 30.0)

    def _open(self):
        from ovsdbapp.backend.ovs_idl import connection, idlutils
        from ovsdbapp.schema.ovn_northbound import impl_idl

        _configure_ssl(self.endpoint)
        helper = idlutils.get_schema_helper(self.endpoint.remote, "OVN_Northbound")
        for table in NB_TABLES:
            helper.register_table(table)
        idl = connection.OvsdbIdl(self.endpoint.remote, helper,
                                  probe_interval=self.endpoint.probe_interval_ms)
        conn = connection.Connection(idl, timeout=self.endpoint.timeout)
        api_class = type("SegmentdNorthbound", (impl_idl.OvnNbApiIdlImpl,), {})
        return api_class(conn)  # waits for the first full copy of the tables

    def stop(self) -> None:
        self._stop.set()
        if self.api is not None:
            try:
                self.api.ovsdb_connection.stop(timeout=self.endpoint.timeout)
            except Exception:  # stopping is best effort
                LOG.debug("stopping the Northbound connection failed", exc_info=True)
            self.api = None


class OvnLimits:
    """What OVN can carry, for segment validation at API time (see TypeRules)."""

    name = "OVN"
    # OVN has no GRE: tunnelled networks are logical datapaths with northd's tunnel keys.
    network_types = frozenset({"flat", "vlan", "vxlan", "geneve"})

    def __init__(self, northbound: NorthboundConnection) -> None:
        self._northbound = northbound

    def max_tunnel_id(self) -> int | None:
        return self._northbound.max_tunnel_id()
