"""Settings from a TOML file and SEGMENTD_* environment variables, validated at start-up."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from segmentd import constants as c

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./segmentd.db"
AMQP_CONFIRM_TIMEOUT = 10.0  # seconds the bus publisher waits for a broker confirm
# A list that also accepts "a,b,c" (Neutron's form) from the environment.
CsvList = Annotated[list[str], NoDecode]


@dataclass(frozen=True)
class IdRange:
    """An inclusive range of segmentation IDs."""

    minimum: int
    maximum: int

    def __len__(self) -> int:
        return self.maximum - self.minimum + 1


def _existing_file(path: str | None, what: str) -> str | None:
    """A path setting that must name a file (unset is fine)."""
    if path is not None and not Path(path).is_file():
        raise ValueError(f"{what} {path!r} does not exist")
    return path


def _split_csv(value: Any) -> Any:
    """Accept Neutron's comma-separated form as well as a list."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _parse_range(text: str, lo: int, hi: int, what: str) -> IdRange:
    parts = text.split(":")
    if len(parts) != 2:
        raise ValueError(f"{what} range {text!r} must be MIN:MAX")
    try:
        minimum, maximum = int(parts[0]), int(parts[1])
    except ValueError:
        raise ValueError(f"{what} range {text!r} must be two integers") from None
    if not (lo <= minimum <= maximum <= hi):
        raise ValueError(f"{what} range {text!r} must satisfy {lo} <= MIN <= MAX <= {hi}")
    return IdRange(minimum, maximum)


def parse_vlan_ranges(entries: list[str]) -> dict[str, list[IdRange]]:
    """`physnet` (the whole 1-4094 range, as Neutron since bug 1918274) or `physnet:min:max`."""
    result: dict[str, list[IdRange]] = {}
    for entry in entries:
        parts = entry.split(":")
        physnet = parts[0].strip()
        if not physnet or len(physnet) > c.PHYSNET_MAX_LEN:
            raise ValueError(f"vlan_ranges entry {entry!r} has an empty or too long physnet name")
        if len(parts) == 1:
            ranges = [IdRange(c.VLAN_ID_MIN, c.VLAN_ID_MAX)]
        elif len(parts) == 3:
            ranges = [_parse_range(f"{parts[1]}:{parts[2]}", c.VLAN_ID_MIN, c.VLAN_ID_MAX, "VLAN")]
        else:
            raise ValueError(f"vlan_ranges entry {entry!r} must be 'physnet' or 'physnet:min:max'")
        result.setdefault(physnet, []).extend(ranges)
    for physnet, ranges in result.items():
        ordered = sorted(ranges, key=lambda r: r.minimum)
        for first, second in zip(ordered, ordered[1:]):
            if second.minimum <= first.maximum:
                raise ValueError(f"vlan_ranges for {physnet!r} overlap")
        result[physnet] = ordered
    return result


class VniRanges(BaseModel):
    model_config = {"extra": "forbid"}

    vxlan: CsvList = Field(default_factory=lambda: ["1:1000"])
    geneve: CsvList = Field(default_factory=lambda: ["1:65535"])

    _split = field_validator("vxlan", "geneve", mode="before")(_split_csv)

    def parsed(self, network_type: str) -> list[IdRange]:
        ranges = [_parse_range(r, c.VNI_MIN, c.VNI_MAX, network_type) for r in getattr(self, network_type)]
        ordered = sorted(ranges, key=lambda r: r.minimum)
        for first, second in zip(ordered, ordered[1:]):
            if second.minimum <= first.maximum:
                raise ValueError(f"vni_ranges for {network_type} overlap")
        return ordered


OVSDB_REMOTE = re.compile(r"^(tcp|ssl):\[?[0-9A-Za-z.:-]+\]?:\d{1,5}$|^unix:/\S+$")


class OvnSettings(BaseModel):
    """[ovn]: where the OVN databases are and how segmentd marks its rows."""

    model_config = {"extra": "forbid"}

    nb_connection: str = "unix:/var/run/ovn/ovnnb_db.sock"
    sb_connection: str = "unix:/var/run/ovn/ovnsb_db.sock"
    ssl_private_key: str | None = None
    ssl_certificate: str | None = None
    ssl_ca_cert: str | None = None
    timeout_seconds: float = Field(default=10.0, gt=0, le=300)  # connect and each transaction
    probe_interval_ms: int = Field(default=5000, ge=0, le=600_000)  # 0 = no keepalive probes
    owner: str = Field(default="segmentd", min_length=1, max_length=64, pattern=r"^[\w.:-]+$")
    # The server compares the database with the NB this often (one process per round).
    sync_interval_seconds: float = Field(default=300.0, ge=10, le=86_400)
    sync_mode: Literal["off", "log", "repair"] = "log"
    # Southbound chassis become hosts (one watching process at a time, holding a lease).
    watch_chassis: bool = True
    chassis_lease_seconds: float = Field(default=15.0, ge=1, le=600)

    @field_validator("nb_connection", "sb_connection")
    @classmethod
    def _remote(cls, value: str) -> str:
        for part in value.split(","):
            if not OVSDB_REMOTE.match(part.strip()):
                raise ValueError(
                    f"{part.strip()!r} is not an OVSDB remote (tcp:HOST:PORT, ssl:HOST:PORT, unix:PATH)"
                )
        return value

    @model_validator(mode="after")
    def _ssl_complete(self) -> OvnSettings:
        uses_ssl = "ssl:" in self.nb_connection or "ssl:" in self.sb_connection
        files = (self.ssl_private_key, self.ssl_certificate, self.ssl_ca_cert)
        if uses_ssl and not all(files):
            raise ValueError("an ssl: OVN connection needs ssl_private_key, ssl_certificate and ssl_ca_cert")
        for path in files:
            _existing_file(path, "OVN SSL file")
        return self


class KeystoneSettings(BaseModel):
    """[keystone]: how segmentd validates Keystone tokens (auth_mode = "keystone").

    The names are keystonemiddleware's, so an operator's [keystone_authtoken] carries over.
    segmentd signs in with a password (username, password, project_name and the two domain
    names) or with an application credential (application_credential_id and _secret).
    """

    model_config = {"extra": "forbid"}

    auth_url: str | None = None  # Keystone's identity endpoint, e.g. http://keystone:5000/v3
    username: str | None = None
    password: str | None = Field(default=None, repr=False)
    project_name: str | None = None
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"
    application_credential_id: str | None = None
    application_credential_secret: str | None = Field(default=None, repr=False)
    cafile: str | None = None  # CA bundle for an https:// auth_url (default: the system's)
    insecure: bool = False  # skip certificate checks (never in production)
    http_connect_timeout: float = Field(default=3.0, gt=0, le=60)
    http_request_timeout: float = Field(default=10.0, gt=0, le=120)
    # Validated tokens are kept this long per process (never past the token's expiry), so a
    # token revoked in Keystone is refused within this many seconds; keystonemiddleware's
    # default too.
    token_cache_time: float = Field(default=300.0, ge=0, le=3600)
    # Tokens Keystone called invalid are refused from memory this long.
    invalid_token_cache_time: float = Field(default=10.0, ge=0, le=3600)
    token_cache_size: int = Field(default=10_000, ge=1, le=1_000_000)  # of each kind
    # segmentd's own tokens (`segmentd token create`, prefix sgd_) keep working beside
    # Keystone's: host agents' host-bound tokens, break-glass admin tokens.
    accept_local_tokens: bool = True
    # Users of this Keystone domain are host agents: a token of user "compute-1" in this
    # domain is bound to host "compute-1" (it reports for that host only). Unset: no
    # Keystone user is bound to a host.
    host_user_domain_name: str | None = Field(default=None, min_length=1, max_length=255)

    @field_validator("auth_url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is not None and not re.match(r"^https?://[^\s/]+(/\S*)?$", url):
            raise ValueError(f"auth_url {url!r} is not an http:// or https:// URL")
        return url.rstrip("/") if url else url

    @field_validator("cafile")
    @classmethod
    def _cafile_exists(cls, path: str | None) -> str | None:
        return _existing_file(path, "cafile")

    def check_complete(self) -> None:
        """What auth_mode = "keystone" needs: where Keystone is and how to sign in."""
        if not self.auth_url:
            raise ValueError("auth_mode 'keystone' needs keystone.auth_url")
        app_cred = (self.application_credential_id, self.application_credential_secret)
        password = (self.username, self.password, self.project_name)
        if any(app_cred):
            if not all(app_cred):
                raise ValueError("keystone: application_credential_id needs "
                                 "application_credential_secret, and the reverse")
        elif not all(password):
            raise ValueError("auth_mode 'keystone' needs keystone.username, keystone.password "
                             "and keystone.project_name, or an application credential")


class Settings(BaseSettings):
    """Everything segmentd reads from its environment. Nothing reads it at import time."""

    model_config = SettingsConfigDict(
        env_prefix="SEGMENTD_", env_nested_delimiter="__", extra="forbid"
    )

    database_url: str = DEFAULT_DATABASE_URL
    database_pool_size: int = Field(default=8, ge=1, le=100)
    host: str = "127.0.0.1"
    port: int = Field(default=9696, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    access_log: bool = True

    # "token": segmentd's own tokens. "keystone": Keystone's tokens ([keystone] below), and
    # segmentd's own beside them unless keystone.accept_local_tokens is off.
    # "development" trusts X-Project-Id / X-Roles headers; it is only allowed on loopback.
    auth_mode: Literal["development", "token", "keystone"] = "token"
    keystone: KeystoneSettings = Field(default_factory=lambda: KeystoneSettings())

    vlan_ranges: CsvList = Field(default_factory=list)
    vni_ranges: VniRanges = Field(default_factory=VniRanges)
    flat_networks: CsvList = Field(default_factory=lambda: ["*"])
    tenant_network_types: CsvList = Field(default_factory=lambda: ["geneve"])

    global_physnet_mtu: int = Field(default=1500, ge=0, le=c.MTU_MAX)
    physical_network_mtus: dict[str, int] = Field(default_factory=dict)
    path_mtu: int = Field(default=0, ge=0, le=c.MTU_MAX)
    overlay_ip_version: Literal[4, 6] = 4
    geneve_max_header_size: int = Field(default=c.GENEVE_DEFAULT_MAX_HEADER_SIZE, ge=0, le=512)

    pagination_max_limit: int = Field(default=1000, ge=1, le=10000)

    # Security and limits (see README "Security").
    policy_file: str | None = None  # oslo.policy YAML/JSON overriding the default rules
    bootstrap_token: str | None = None  # admin token to create on an empty database
    token_cache_seconds: float = Field(default=5.0, ge=0, le=300)  # revocation takes effect within
    max_request_body_bytes: int = Field(default=1_048_576, ge=1024, le=64 * 1_048_576)
    max_json_depth: int = Field(default=16, ge=4, le=256)
    # The request line and headers of one request: beyond either the server answers 431.
    max_request_header_bytes: int = Field(default=65_536, ge=4096, le=16 * 1_048_576)
    max_request_header_fields: int = Field(default=100, ge=16, le=10_000)
    bulk_max_items: int = Field(default=100, ge=1, le=10_000)  # resources in one bulk create
    # Per token and process, for operators who want one; 0 (the default) = off, so that a
    # client sending one request at a time never sees a 429 (Neutron has no API rate limit).
    rate_limit_per_second: float = Field(default=0.0, ge=0)
    rate_limit_burst: int = Field(default=100, ge=1)
    rate_limit_exempt_admin: bool = False
    # Callers without a valid token (failed authentication, paths with no route), per client
    # address (an IPv6 /64) and process; 0 = off.
    anonymous_rate_limit_per_second: float = Field(default=2.0, ge=0)
    anonymous_rate_limit_burst: int = Field(default=20, ge=1)
    # Reports that change what a host's agents report (heartbeats never count), per host and
    # process: a burst, then this many a minute; beyond it 429. 0 = off.
    host_report_changes_per_minute: float = Field(default=2.0, ge=0)
    host_report_changes_burst: int = Field(default=20, ge=1)
    # Audit rows a caller's refused requests (4xx other than 429) may add, per caller and
    # process; beyond it they are logged, not stored. 0 = store every refusal.
    audit_refusals_per_second: float = Field(default=1.0, ge=0)
    audit_refusals_burst: int = Field(default=100, ge=1)
    database_statement_timeout_ms: int = Field(default=10_000, ge=0)  # PostgreSQL; 0 = none
    keepalive_timeout_seconds: int = Field(default=5, ge=1, le=300)
    limit_concurrency: int | None = Field(default=None, ge=1)  # beyond it uvicorn answers 503
    cors_allowed_origins: CsvList = Field(default_factory=list)  # no CORS unless configured

    # Hosts (see README "Hosts and segment-host mappings").
    agent_down_time_seconds: int = Field(default=75, ge=5, le=86_400)  # Neutron's agent_down_time
    host_grace_seconds: int = Field(default=300, ge=10, le=30 * 86_400)  # then a host reaches nothing
    host_sweep_interval_seconds: float = Field(default=10.0, gt=0, le=3600)

    # Events (see README "Events").
    event_dispatch_interval_seconds: float = Field(default=5.0, gt=0, le=60)
    event_retry_base_seconds: float = Field(default=1.0, gt=0, le=3600)
    event_retry_max_seconds: float = Field(default=300.0, gt=0, le=86_400)
    event_retention_seconds: int = Field(default=7 * 86_400, ge=60)  # delivered events kept
    # A claimed delivery is retried by any process once this passes without an outcome
    # (the claimer died); longer than any one delivery can take.
    event_lease_seconds: float = Field(default=60.0, gt=0, le=3600)
    # CIDRs webhooks may reach; empty: anything but loopback, link-local and metadata.
    webhook_allowed_networks: CsvList = Field(default_factory=list)
    webhook_allow_loopback: bool = False
    webhook_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    amqp_url: str | None = None  # e.g. amqp://guest:guest@127.0.0.1:5672/ ; unset = no bus
    amqp_exchange: str = Field(default="segmentd.events", min_length=1, max_length=255)
    amqp_secret: str | None = None  # signs bus messages; required with amqp_url

    # "ovn" realizes networks and segments in OVN's Northbound DB ([ovn] below); other
    # names come from installed backends (segmentd/backends/__init__.py).
    backend: str = "none"
    ovn: OvnSettings = Field(default_factory=lambda: OvnSettings())

    _split = field_validator(
        "vlan_ranges", "flat_networks", "tenant_network_types", "cors_allowed_origins",
        "webhook_allowed_networks", mode="before",
    )(_split_csv)

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        from segmentd import backends

        if not backends.known(value):
            raise ValueError(f"unknown backend {value!r}: one of {', '.join(backends.names())}")
        return value

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _cidrs(cls, cidrs: list[str]) -> list[str]:
        for cidr in cidrs:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"webhook_allowed_networks: {cidr!r} is not a CIDR") from None
        return cidrs

    @field_validator("amqp_secret")
    @classmethod
    def _strong_amqp_secret(cls, secret: str | None) -> str | None:
        if secret is not None and len(secret) < 32:
            raise ValueError("amqp_secret must be at least 32 characters")
        return secret

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, url: str) -> str:
        """Plain URLs get the async driver segmentd uses for that database."""
        for plain, driver in (
            ("sqlite://", "sqlite+aiosqlite://"),
            ("postgresql://", "postgresql+asyncpg://"),
            ("postgres://", "postgresql+asyncpg://"),
            ("mysql://", "mysql+asyncmy://"),
            ("mariadb://", "mysql+asyncmy://"),
        ):
            if url.startswith(plain):
                return driver + url[len(plain):]
        if not url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://", "mysql+asyncmy://")):
            raise ValueError("database_url must be an sqlite://, postgresql:// or mysql:// URL")
        return url

    @field_validator("tenant_network_types")
    @classmethod
    def _known_tenant_types(cls, types: list[str]) -> list[str]:
        for t in types:
            if t not in c.NETWORK_TYPES or t == c.TYPE_FLAT:
                raise ValueError(f"tenant_network_types: {t!r} is not one of vlan, vxlan, geneve")
        return types

    @field_validator("physical_network_mtus")
    @classmethod
    def _mtus(cls, mtus: dict[str, int]) -> dict[str, int]:
        for physnet, mtu in mtus.items():
            if not (c.MTU_MIN_IPV4 <= mtu <= c.MTU_MAX):
                raise ValueError(f"physical_network_mtus[{physnet!r}] = {mtu} is out of range")
        return mtus

    @field_validator("bootstrap_token")
    @classmethod
    def _strong_bootstrap_token(cls, token: str | None) -> str | None:
        if token is not None and (len(token) < 32 or not token.isprintable() or " " in token):
            raise ValueError("bootstrap_token must be at least 32 printable characters, no spaces")
        return token

    @field_validator("policy_file")
    @classmethod
    def _policy_file_exists(cls, path: str | None) -> str | None:
        return _existing_file(path, "policy_file")

    @model_validator(mode="after")
    def _ranges_parse(self) -> Settings:
        """Parse every range now so a bad one stops start-up with a clear message."""
        self.parsed_vlan_ranges()
        for t in c.TUNNEL_TYPES:
            self.vni_ranges.parsed(t)
        if "vlan" in self.tenant_network_types and not self.vlan_ranges:
            raise ValueError("tenant_network_types has vlan but vlan_ranges is empty")
        if self.amqp_url and not self.amqp_secret:
            raise ValueError("amqp_url is set but amqp_secret is not: bus messages must be signed")
        slowest = max(self.webhook_timeout_seconds, AMQP_CONFIRM_TIMEOUT if self.amqp_url else 0)
        if self.event_lease_seconds < 2 * slowest:
            raise ValueError(
                f"event_lease_seconds must be at least twice the slowest delivery ({slowest:g} s): "
                "a delivery outliving its lease would be sent twice"
            )
        if self.host_grace_seconds < self.agent_down_time_seconds:
            raise ValueError("host_grace_seconds must be at least agent_down_time_seconds")
        if self.auth_mode == "keystone":
            self.keystone.check_complete()
        return self

    def parsed_vlan_ranges(self) -> dict[str, list[IdRange]]:
        return parse_vlan_ranges(self.vlan_ranges)

    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Explicit arguments (CLI flags) win over the environment, which wins over the file.
        return (init_settings, env_settings)


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Build Settings: explicit overrides win over SEGMENTD_* variables, which win over the file."""
    values = {k: v for k, v in overrides.items() if v is not None}
    if config_file is None:
        return Settings(**values)
    path = Path(config_file)
    if not path.is_file():
        raise ValueError(f"config file {str(path)!r} does not exist")

    class FileSettings(Settings):
        @classmethod
        def settings_customise_sources(cls, settings_cls, init_settings, env_settings, **_):
            return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, path))

    return FileSettings(**values)
