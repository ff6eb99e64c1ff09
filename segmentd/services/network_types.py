"""Network-type rules: what a segment of each type may carry, where IDs come from, its MTU."""

from __future__ import annotations

from dataclasses import dataclass, replace

from segmentd import constants as c
from segmentd.backends.base import BackendLimits
from segmentd.config import IdRange, Settings
from segmentd.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class SegmentSpec:
    """A requested segment: None means "not given"."""

    network_type: str
    physical_network: str | None = None
    segmentation_id: int | None = None


@dataclass(frozen=True, slots=True)
class AllocationPlan:
    """Where a segment's ID comes from: one fixed key, or ranges to search per physnet."""

    network_type: str
    fixed_id: int | None  # explicit ID, or FLAT_ALLOC_ID for flat
    pools: tuple[tuple[str, tuple[IdRange, ...]], ...] = ()  # (alloc_physnet, ranges)
    carries_id: bool = True  # whether the segment shows its ID (flat does not)


class TypeRules:
    """Built once from Settings (and the backend's limits); arithmetic and checks, no I/O."""

    def __init__(self, settings: Settings, limits: BackendLimits | None = None) -> None:
        self.limits = limits
        self.vlan_ranges = settings.parsed_vlan_ranges()
        self.vni_ranges = {t: tuple(settings.vni_ranges.parsed(t)) for t in c.TUNNEL_TYPES}
        self.flat_networks = tuple(settings.flat_networks)
        self.tenant_types = tuple(settings.tenant_network_types)
        self.global_mtu = settings.global_physnet_mtu
        self.physnet_mtus = dict(settings.physical_network_mtus)
        self.path_mtu = settings.path_mtu
        self.ip_header = c.IP_HEADER_LENGTH[settings.overlay_ip_version]
        self.encap = {
            c.TYPE_VXLAN: c.VXLAN_ENCAP_OVERHEAD,
            c.TYPE_GENEVE: settings.geneve_max_header_size,
        }

    # -- validation -------------------------------------------------------------------
    def plan(self, spec: SegmentSpec) -> AllocationPlan:
        """Check a requested segment against its type's rules; InvalidInput if it breaks one."""
        t, physnet, seg_id = spec.network_type, spec.physical_network, spec.segmentation_id
        if self.limits is not None and t not in self.limits.network_types:
            raise InvalidInput(
                error_message=f"Network type {t} is not supported by the {self.limits.name} backend"
            )
        if t == c.TYPE_FLAT:
            return self._plan_flat(physnet, seg_id)
        if t == c.TYPE_VLAN:
            return self._plan_vlan(physnet, seg_id)
        if t in c.TUNNEL_TYPES:
            return self._plan_tunnel(t, physnet, seg_id)
        raise InvalidInput(error_message=f"network_type value '{t}' not supported")

    def _plan_flat(self, physnet, seg_id) -> AllocationPlan:
        if physnet is None:
            raise InvalidInput(error_message="physical_network required for flat provider network")
        if not self.flat_networks:
            raise InvalidInput(error_message="Flat provider networks are disabled")
        if "*" not in self.flat_networks and physnet not in self.flat_networks:
            raise InvalidInput(
                error_message=f"physical_network '{physnet}' unknown for flat provider network"
            )
        if seg_id is not None:
            raise InvalidInput(error_message="segmentation_id prohibited for flat provider network")
        return AllocationPlan(c.TYPE_FLAT, c.FLAT_ALLOC_ID, ((physnet, ()),), carries_id=False)

    def _plan_vlan(self, physnet, seg_id) -> AllocationPlan:
        if physnet is not None and physnet not in self.vlan_ranges:
            raise InvalidInput(
                error_message=f"physical_network '{physnet}' unknown for VLAN provider network"
            )
        if seg_id is not None:
            if physnet is None:
                raise InvalidInput(
                    error_message="segmentation_id requires physical_network for VLAN "
                    "provider network"
                )
            if not (c.VLAN_ID_MIN <= seg_id <= c.VLAN_ID_MAX):
                raise InvalidInput(
                    error_message=f"segmentation_id out of range ({c.VLAN_ID_MIN} through "
                    f"{c.VLAN_ID_MAX})"
                )
            return AllocationPlan(c.TYPE_VLAN, seg_id, ((physnet, ()),))
        physnets = [physnet] if physnet is not None else list(self.vlan_ranges)
        pools = tuple((p, tuple(self.vlan_ranges[p])) for p in physnets)
        return AllocationPlan(c.TYPE_VLAN, None, pools)

    def _plan_tunnel(self, t, physnet, seg_id) -> AllocationPlan:
        if physnet is not None:
            raise InvalidInput(error_message=f"provider:physical_network specified for {t} network")
        if seg_id is not None:
            # Stricter than Neutron, which accepts any tunnel ID here.
            if not (c.VNI_MIN <= seg_id <= c.VNI_MAX):
                raise InvalidInput(
                    error_message=f"segmentation_id out of range ({c.VNI_MIN} through {c.VNI_MAX})"
                )
            top = self._max_tunnel_id()
            if top is not None and seg_id > top:
                raise InvalidInput(error_message=f"Segmentation ID should be lower or equal to {top}")
            return AllocationPlan(t, seg_id, ((c.NO_PHYSNET_KEY, ()),))
        return AllocationPlan(t, None, ((c.NO_PHYSNET_KEY, self._tunnel_ranges(t)),))

    def _max_tunnel_id(self) -> int | None:
        return self.limits.max_tunnel_id() if self.limits is not None else None

    def _tunnel_ranges(self, t: str) -> tuple[IdRange, ...]:
        """The configured ranges, cut at the backend's highest tunnel ID when it has one: an
        allocated ID is one the backend can carry."""
        top = self._max_tunnel_id()
        if top is None:
            return self.vni_ranges[t]
        return tuple(replace(r, maximum=min(r.maximum, top))
                     for r in self.vni_ranges[t] if r.minimum <= top)

    # -- MTU --------------------------------------------------------------------------
    def segment_mtu(self, network_type: str, physical_network: str | None) -> int:
        """The largest MTU a segment carries; 0 when nothing bounds it."""
        if network_type in c.PHYSICAL_TYPES:
            candidates = [self.global_mtu]
            if physical_network in self.physnet_mtus:
                candidates.append(self.physnet_mtus[physical_network])
            bounded = [m for m in candidates if m > 0]
            return min(bounded) if bounded else 0
        bounded = [m for m in (self.global_mtu, self.path_mtu) if m > 0]
        if not bounded:
            return 0
        return min(bounded) - self.ip_header - self.encap.get(network_type, 0)

    def max_network_mtu(self, segments) -> int:
        """The smallest segment MTU, or the physical MTU for a network without segments."""
        mtus = [self.segment_mtu(s.network_type, s.physical_network) for s in segments]
        mtus = [m for m in mtus if m > 0]
        return min(mtus) if mtus else self.global_mtu

    @staticmethod
    def check_mtu(requested: int, maximum: int) -> None:
        if maximum and requested > maximum:
            raise InvalidInput(error_message=f"Requested MTU is too big, maximum is {maximum}")
