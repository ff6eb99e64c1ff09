"""Authorization with oslo.policy: Neutron's rule names and secure-RBAC defaults.

Every action is checked by name against a target (the row it touches, or {}). Operators
override any rule in a YAML/JSON policy file, as they do for Neutron; `segmentd policy dump`
prints the rules in effect.

The service role has two kinds of principal, told apart by the credential's host binding
(`host` and `host_bound` in the credentials, from `segmentd token create --host`):
- an unbound service principal (rule:service_api), such as a compute scheduler: it reads
  every project's networks, subnets and ports with their binding, creates, binds, rebinds
  and deletes ports for any project, reports for any host and scrapes /metrics;
- a host agent (rule:host_agent), a service token bound to one host: it reports for that
  host only (rule:own_host) and reads the networks, subnets and ports (binding included)
  that plugging ports needs. It changes no network, segment, subnet or port, so a
  compromised host cannot move or remove another host's ports.
A credential bound to a host is never admin, member or reader (rule:unbound): whatever its
roles, it acts only as that host's agent.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from oslo_config import cfg
from oslo_policy import _checks
from oslo_policy import policy as oslo_policy

from segmentd.errors import PolicyNotAuthorized

ADMIN = "rule:admin_only"
PROJECT_MEMBER = "rule:admin_only or rule:project_member"
PROVIDER_ATTRIBUTES = (
    "provider:network_type", "provider:physical_network", "provider:segmentation_id", "segments",
)

BINDER = "rule:admin_only or rule:service_api"  # Nova binds ports, as in Neutron
SERVICE_READER = "rule:service_api or rule:host_agent"  # what agents read to plug ports
BINDING_ATTRIBUTES = ("binding:host_id", "binding:profile", "binding:vif_type",
                      "binding:vif_details")

BASE_RULES = [
    ("unbound", "host_bound:False",
     "A credential bound to no host (one bound to a host acts only as that host's agent)"),
    ("admin_only", "role:admin and rule:unbound", "Admin of any project"),
    ("service_api", "role:service and rule:unbound",
     "A service account bound to no host, such as a compute scheduler: binds, moves and "
     "deletes any project's ports, reports for any host"),
    ("host_agent", "role:service and host_bound:True",
     "A service account bound to one host (token create --host): the agent on that host; "
     "it reports for its host and reads, and changes no network, segment, subnet or port"),
    ("own_host", "host:%(host)s", "The host named is the one the credential is bound to"),
    ("project_member", "role:member and project_id:%(project_id)s and rule:unbound",
     "Member of the owning project"),
    ("project_reader", "role:reader and project_id:%(project_id)s and rule:unbound",
     "Reader of the owning project"),
    ("shared", "'True':%(shared)s", "The resource is shared with every project"),
    ("network_owner", "role:member and project_id:%(network_project_id)s and rule:unbound",
     "Member of the project owning the port's network"),
    ("project_member_of_network_or_shared",
     "role:member and project_id:%(project_id)s and rule:unbound and "
     "(project_id:%(network_project_id)s or 'True':%(shared)s)",
     "Member of the port's project, on that project's network or a shared one"),
]

ACTION_RULES = [
    ("create_network", PROJECT_MEMBER, "Create a network"),
    ("create_network:shared", ADMIN, "Create a shared network"),
    ("create_network:project_id", ADMIN, "Create a network for another project"),
    *[(f"create_network:{a}", ADMIN, f"Set {a} when creating a network") for a in PROVIDER_ATTRIBUTES],
    ("get_network", f"rule:admin_only or rule:project_reader or rule:shared or {SERVICE_READER}",
     "Show or list networks"),
    *[(f"get_network:{a}", ADMIN, f"Read {a} of a network") for a in PROVIDER_ATTRIBUTES],
    ("update_network", PROJECT_MEMBER, "Update a network"),
    ("update_network:shared", ADMIN, "Share or unshare a network"),
    *[(f"update_network:{a}", ADMIN, f"Change {a} of a network") for a in PROVIDER_ATTRIBUTES],
    ("delete_network", PROJECT_MEMBER, "Delete a network"),
    ("create_segment", ADMIN, "Create a segment"),
    ("get_segment", ADMIN, "Show or list segments"),
    ("update_segment", ADMIN, "Rename a segment"),
    ("delete_segment", ADMIN, "Delete a segment"),
    ("create_subnet", PROJECT_MEMBER, "Create a subnet on a network of the project"),
    ("create_subnet:segment_id", ADMIN, "Put a new subnet on a segment (routed networks)"),
    ("get_subnet", f"rule:admin_only or rule:project_reader or rule:shared or {SERVICE_READER}",
     "Show or list subnets (those of shared networks too)"),
    ("update_subnet", PROJECT_MEMBER, "Update a subnet"),
    ("update_subnet:segment_id", ADMIN, "Move a subnet onto a segment"),
    ("delete_subnet", PROJECT_MEMBER, "Delete a subnet"),
    ("create_port", "rule:admin_only or rule:project_member_of_network_or_shared "
     "or rule:service_api", "Create a port on a network the project owns, or on a shared one"),
    ("create_port:device_owner", "rule:admin_only or rule:network_owner",
     "Create a port owned by one of the network's services (device_owner network:*)"),
    ("create_port:project_id", BINDER, "Create a port for another project"),
    ("create_port:mac_address", "rule:admin_only or rule:network_owner",
     "Choose a port's MAC address"),
    ("create_port:fixed_ips:ip_address", "rule:admin_only or rule:network_owner",
     "Choose a port's IP address"),
    ("create_port:binding:host_id", BINDER, "Bind a new port to a host"),
    ("create_port:binding:profile", BINDER, "Set a new port's binding profile"),
    ("get_port", "rule:admin_only or rule:project_reader or rule:network_owner "
     f"or {SERVICE_READER}", "Show or list ports"),
    *[(f"get_port:{a}", f"rule:admin_only or {SERVICE_READER}", f"Read {a} of a port")
      for a in BINDING_ATTRIBUTES],
    ("update_port", "rule:admin_only or rule:project_member or rule:network_owner "
     "or rule:service_api", "Update a port"),
    ("update_port:binding:host_id", BINDER, "Bind a port to a host, or move or unbind it"),
    ("update_port:binding:profile", BINDER, "Change a port's binding profile"),
    ("update_port:mac_address", BINDER, "Change a port's MAC address (Neutron: admin or service)"),
    ("update_port:fixed_ips", "rule:admin_only or rule:project_member or rule:network_owner",
     "Change a port's addresses"),
    ("update_port:fixed_ips:ip_address", "rule:admin_only or rule:network_owner",
     "Give a port an address of one's choosing"),
    ("update_port:device_owner", "rule:admin_only or rule:network_owner",
     "Make a port one of the network's services' (device_owner network:*)"),
    ("delete_port", "rule:admin_only or rule:project_member or rule:network_owner "
     "or rule:service_api", "Delete a port"),
    ("get_network_ip_availability", ADMIN, "Show or list how many addresses networks use"),
    ("get_audit_event", ADMIN, "Read the audit trail"),
    ("create_host_report", "rule:service_api or (rule:host_agent and rule:own_host)",
     "Report a host's physical networks and tunnel types (a host agent for its own host)"),
    ("get_agent", ADMIN, "Show or list agents"),
    ("update_agent", ADMIN, "Change an agent's admin_state_up or description"),
    ("delete_agent", ADMIN, "Delete an agent (its host stops reaching what only it reported)"),
    ("get_host", ADMIN, "List hosts and which segments each host reaches, and the reverse"),
    ("create_event_subscription", ADMIN, "Subscribe a webhook to events"),
    ("get_event_subscription", ADMIN, "Show or list webhook subscriptions and deliveries"),
    ("update_event_subscription", ADMIN, "Change a webhook subscription"),
    ("delete_event_subscription", ADMIN, "Delete a webhook subscription"),
    ("get_ovn_drift", ADMIN, "Read the last comparison of the database with OVN's Northbound DB"),
    ("get_ovn_status", ADMIN, "Read the OVN backend's connection state and the events it has not applied"),
    ("get_metrics", "rule:admin_only or rule:service_api",
     "Scrape /metrics (a scraper's unbound service token; host agents need not)"),
    ("get_event_schema", "@", "Read the JSON Schema of event types (any valid credential)"),
]

# Keystone's default implied roles: admin implies member, member implies reader.
IMPLIED_ROLES = {"admin": ("member", "reader"), "member": ("reader",)}


def expand_roles(roles) -> frozenset[str]:
    out = set(roles)
    for role in list(out):
        out.update(IMPLIED_ROLES.get(role, ()))
    return frozenset(out)


_TARGET_FIELD = re.compile(r"%\(([^)]+)\)s")
_RULE_REF = re.compile(r"rule:([\w:.\-]+)")
DECISION_CACHE_SIZE = 8192


class Policy:
    """An oslo.policy Enforcer with segmentd's defaults and an optional override file.

    Rules are read once at start (restart to apply a changed policy file). Decisions are
    cached by action, credentials and the target fields the rule actually names: oslo.policy
    costs ~85 us a check here, too much for a per-row check on a 100-row page.
    """

    def __init__(self, policy_file: str | None = None) -> None:
        conf = cfg.ConfigOpts()
        conf([], project="segmentd", default_config_files=[], default_config_dirs=[])
        # Defaults are applied only with use_conf; a missing default file is just skipped.
        self._enforcer = oslo_policy.Enforcer(
            conf, policy_file=policy_file or "/nonexistent/segmentd-policy.yaml", use_conf=True
        )
        self._enforcer.register_defaults(
            [oslo_policy.RuleDefault(n, c, description=d) for n, c, d in BASE_RULES + ACTION_RULES]
        )
        self._enforcer.load_rules()
        self._enforcer.use_conf = False  # no file checks on every enforce() from now on
        self._fields = {name: self._target_fields(name, set()) for name in self._enforcer.rules}
        self._sampled: dict[tuple, bool] = {}
        self._decisions: OrderedDict[tuple, bool] = OrderedDict()

    def _target_fields(self, action: str, seen: set[str]) -> tuple[str, ...]:
        """The target fields a rule reads, through the rules it references."""
        seen.add(action)
        text = str(self._enforcer.rules.get(action, ""))
        fields = set(_TARGET_FIELD.findall(text))
        for ref in _RULE_REF.findall(text):
            if ref not in seen:
                fields.update(self._target_fields(ref, seen))
        return tuple(sorted(fields))

    def decided_by_samples(self, action: str, comparisons: frozenset[tuple[str, str]]) -> bool:
        """Whether `action` reads its target only through `comparisons`, (credential or
        quoted literal, target field) pairs such as ("project_id", "project_id") or
        ("'True'", "shared"), never negated and at most one in each `and` of its disjunctive
        form: then its answers on one sample target per pair hold for every target like it.
        """
        key = (action, comparisons)
        if key not in self._sampled:
            rule = self._enforcer.rules.get(action)
            most = _target_reads(rule, comparisons, self._enforcer.rules, set())
            self._sampled[key] = rule is not None and most is not None and most <= 1
        return self._sampled[key]

    def check(self, creds: Mapping[str, Any], action: str, target: Mapping[str, Any]) -> bool:
        fields = self._fields.get(action)
        if fields is None:
            return False  # an unknown action is denied, never allowed by default
        # Every credential field (host_bound follows from host), so a decision made for
        # one principal is never reused for another.
        key = (action, tuple(creds["roles"]), creds["project_id"], creds.get("user_id"),
               creds.get("host"), tuple(str(target.get(f)) for f in fields))
        decision = self._decisions.get(key)
        if decision is None:
            decision = bool(self._enforcer.enforce(action, dict(target), dict(creds)))
            self._decisions[key] = decision
            if len(self._decisions) > DECISION_CACHE_SIZE:
                self._decisions.popitem(last=False)
        return decision

    def rules(self) -> dict[str, str]:
        """The rules in effect, defaults overridden by the policy file."""
        return {name: str(check) for name, check in sorted(self._enforcer.rules.items())}

    def descriptions(self) -> dict[str, str]:
        """What each default rule is for (rules only a policy file names have none)."""
        return {name: default.description
                for name, default in self._enforcer.registered_rules.items()}


@lru_cache(maxsize=1)
def default_policy() -> Policy:
    """The built-in rules, for contexts made without an application (CLI, tests)."""
    return Policy()


def check(ctx, action: str, target: Mapping[str, Any] | None = None) -> bool:
    """Whether the caller may do `action` on `target`."""
    return (ctx.policy or default_policy()).check(ctx.credentials, action, target or {})


def decided_by_samples(ctx, action: str, comparisons: frozenset[tuple[str, str]]) -> bool:
    """Policy.decided_by_samples for this caller's application."""
    return (ctx.policy or default_policy()).decided_by_samples(action, comparisons)


def _target_reads(check, comparisons, rules, seen: set[str]) -> int | None:
    """How many target comparisons one `and` of `check` makes at most, in disjunctive form;
    None if it reads the target in any other way."""
    if isinstance(check, _checks.OrCheck | _checks.AndCheck):
        counts = [_target_reads(c, comparisons, rules, seen) for c in check.rules]
        if None in counts:
            return None
        return max(counts, default=0) if isinstance(check, _checks.OrCheck) else sum(counts)
    if isinstance(check, _checks.NotCheck):
        return 0 if _target_reads(check.rule, comparisons, rules, seen) == 0 else None
    if isinstance(check, _checks.RuleCheck):
        if check.match in seen:
            return None
        return _target_reads(rules.get(check.match), comparisons, rules, seen | {check.match})
    if isinstance(check, _checks.GenericCheck):
        fields = _TARGET_FIELD.findall(check.match)
        if not fields:
            return 0  # the caller's credentials against a literal
        if check.match == f"%({fields[0]})s" and (check.kind, fields[0]) in comparisons:
            return 1
        return None
    return 0  # roles, "@" and "!" read no target


def enforce(ctx, action: str, target: Mapping[str, Any] | None = None) -> None:
    """Raise PolicyNotAuthorized unless the caller may do `action` on `target`."""
    if not check(ctx, action, target):
        raise PolicyNotAuthorized(action=action)
