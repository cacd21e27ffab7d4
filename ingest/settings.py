"""The one typed settings object. Nothing else in borderfuse reads the environment.

Sources, later wins: built-in defaults, a TOML file (`--config FILE`), then environment
variables `BORDERFUSE_<SECTION>__<FIELD>` (e.g. `BORDERFUSE_KAFKA__BOOTSTRAP_SERVERS`).
Every value is validated at load time; errors name the bad key.
"""
from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Mapping

import attrs

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_GEO_DIR = PACKAGE_ROOT / "geo" / "data"
DEFAULT_SCHEMAS_DIR = PACKAGE_ROOT / "sensors" / "schemas"
DEFAULT_RULES_FILE = PACKAGE_ROOT / "fusion" / "rules.toml"
# Outside the work tree, never committed: `[principals.<name>] password = "..."` (see ingest/kafka_security.py).
DEFAULT_CREDENTIALS_FILE = Path.home() / ".config" / "borderfuse" / "dev-credentials.toml"
SECURITY_PROTOCOLS = ("PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256")
ENV_PREFIX = "BORDERFUSE_"


class SettingsError(ValueError):
    """A configuration value is missing, unknown or invalid; the message names the key."""


def _positive(instance, attribute, value):
    if value <= 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


def _one_of(choices):
    def check(instance, attribute, value):
        if value not in choices:
            raise ValueError(f"{attribute.name} must be one of {', '.join(choices)}, got {value!r}")
    return check


def _port(instance, attribute, value):
    if not 0 <= value <= 65535:
        raise ValueError(f"{attribute.name} must be a TCP port 0..65535, got {value!r}")


@attrs.frozen(slots=True)
class KafkaSettings:
    bootstrap_servers: str = "127.0.0.1:9092"
    group_id: str = "borderfuse"
    client_id: str = "borderfuse"
    poll_max_records: int = attrs.field(default=2000, validator=_positive)
    poll_timeout_ms: int = attrs.field(default=200, validator=_positive)
    # How clients authenticate (ingest/kafka_security.client_config): the dev broker's default listener is
    # SASL_PLAINTEXT with SCRAM-SHA-512; deployments use SASL_SSL (compose/); PLAINTEXT only for a broker
    # started with broker.authentication = false.
    security_protocol: str = attrs.field(default="SASL_PLAINTEXT", validator=_one_of(SECURITY_PROTOCOLS))
    sasl_mechanism: str = attrs.field(default="SCRAM-SHA-512", validator=_one_of(SASL_MECHANISMS))
    # The principal this process runs as unless a command says otherwise (`borderfuse run`: the service).
    username: str = attrs.field(default="borderfuse", validator=attrs.validators.min_len(1))
    credentials_file: Path = attrs.field(default=DEFAULT_CREDENTIALS_FILE, converter=Path)
    # SASL_SSL only: the CA that signed the brokers' certificates ("" = the system's trust store).
    ssl_cafile: str = ""


@attrs.frozen(slots=True)
class BrokerSettings:
    """The development broker started by `borderfuse broker` and the tests."""

    kafka_version: str = "4.1.1"
    cache_dir: Path = attrs.field(default=Path.home() / ".cache" / "borderfuse", converter=Path)
    state_dir: Path = attrs.field(default=Path.home() / ".local" / "state" / "borderfuse" / "broker", converter=Path)
    port: int = attrs.field(default=9092, validator=_port)
    heap_mb: int = attrs.field(default=512, validator=_positive)
    # SASL/SCRAM-SHA-512 listener + StandardAuthorizer ACLs (true), or a plain unauthenticated listener
    # (false: only for comparisons such as benchmarks/bench_service.py; clients then need
    # kafka.security_protocol = "PLAINTEXT").
    authentication: bool = True


@attrs.frozen(slots=True)
class IcdSettings:
    """Where the geography and schemas come from: another deployment brings its own."""

    geo_dir: Path = attrs.field(default=DEFAULT_GEO_DIR, converter=Path)
    schemas_dir: Path = attrs.field(default=DEFAULT_SCHEMAS_DIR, converter=Path)


@attrs.frozen(slots=True)
class FusionSettings:
    rules_file: Path = attrs.field(default=DEFAULT_RULES_FILE, converter=Path)
    # Records arriving up to this much after their event time are fused in event order (the watermark is
    # the newest arrival minus this; the ICD's transport adds up to 2.5 s); later ones (the ICD's ~1 % up to 10 s late) still update tracks
    # and incidents where sound (FusionEngine.late). Decisions wait this long, so keep it small.
    allowed_lateness_s: float = attrs.field(default=2.5, validator=_positive)
    duplicate_window_s: float = attrs.field(default=60.0, validator=_positive)


@attrs.frozen(slots=True)
class MetricsSettings:
    port: int = attrs.field(default=9108, validator=_port)
    host: str = "127.0.0.1"


@attrs.frozen(slots=True)
class ConsoleSettings:
    """`borderfuse console`: where it serves (loopback unless said otherwise) and an optional basemap."""

    host: str = "127.0.0.1"
    port: int = attrs.field(default=8800, validator=_port)
    # Raster tile URL template ({z}/{x}/{y}) for deployments that have a tile server; "" = vector layers only.
    basemap_url: str = ""
    # Who may log in: "users-file" (development: users_file, argon2-hashed passwords, each user with the
    # sectors of its centre) or "oidc" (deployment: an OpenID Connect provider whose ID token carries the
    # user's sectors in oidc_sectors_claim; the flow is not implemented in this build: the console refuses it).
    auth: str = attrs.field(default="users-file", validator=_one_of(("users-file", "oidc")))
    users_file: Path = attrs.field(default=Path.home() / ".config" / "borderfuse" / "console-users.toml",
                                   converter=Path)
    # Key that signs the session cookies (made, mode 600, when missing); a new key logs everybody out.
    session_secret_file: Path = attrs.field(default=Path.home() / ".config" / "borderfuse" / "console-session.key",
                                            converter=Path)
    session_max_age_s: int = attrs.field(default=12 * 3600, validator=_positive)   # one shift
    # Send the session cookie over HTTPS only: set true wherever the console is served behind TLS.
    secure_cookie: bool = False
    # Sectors this console serves, comma-separated ("" = every sector of the sectors file); it reads each
    # one's topics as Kafka principal centre-<sector>.
    sectors: str = ""
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret_file: str = ""
    oidc_sectors_claim: str = "sectors"

    def __attrs_post_init__(self):
        if self.auth == "oidc":
            if not self.oidc_issuer.startswith("https://"):
                raise ValueError(f"oidc_issuer must be an https:// URL when auth = \"oidc\", got {self.oidc_issuer!r}")
            for name in ("oidc_client_id", "oidc_client_secret_file", "oidc_sectors_claim"):
                if not getattr(self, name):
                    raise ValueError(f"{name} is required when auth = \"oidc\"")


@attrs.frozen(slots=True)
class ServiceSettings:
    """`borderfuse run`: transactions, the state topic, retries (see docs/delivery.md)."""

    # Prepended to every topic the service reads or writes (tests share one broker); "" in production.
    topic_prefix: str = ""
    state_topic: str = "borderfuse.state"
    # One transaction (incidents + dead letters + snapshot + offsets) at least this often...
    transaction_interval_ms: int = attrs.field(default=1000, validator=_positive)
    # ...or after this many input records, whichever comes first.
    transaction_max_records: int = attrs.field(default=20000, validator=_positive)
    # A lagging partition that delivers nothing for this long is logged (the merge waits for it: never skips).
    merge_max_wait_s: float = attrs.field(default=10.0, validator=_positive)
    # Broker unreachable at start: give up (one clear line) after this long.
    startup_timeout_s: float = attrs.field(default=30.0, validator=_positive)
    # Broker lost while running: retry with exponential backoff up to this many seconds between tries.
    retry_backoff_max_s: float = attrs.field(default=10.0, validator=_positive)


@attrs.frozen(slots=True)
class PrivacySettings:
    """Plates leave the service only as keyed pseudonyms (borderfuse.privacy.plates, docs/operations.md)."""

    # Hex key (>= 32 bytes), mode 600, outside the work tree; made on first use only at this default path.
    plate_key_file: Path = attrs.field(default=Path.home() / ".config" / "borderfuse" / "plate-key", converter=Path)
    # Written into every pseudonym ("<id>:<hex>"): a new key gets a new id, so old and new never look alike.
    plate_key_id: str = "dev1"


@attrs.frozen(slots=True)
class Settings:
    kafka: KafkaSettings = KafkaSettings()
    broker: BrokerSettings = BrokerSettings()
    icd: IcdSettings = IcdSettings()
    fusion: FusionSettings = FusionSettings()
    metrics: MetricsSettings = MetricsSettings()
    service: ServiceSettings = ServiceSettings()
    console: ConsoleSettings = ConsoleSettings()
    privacy: PrivacySettings = PrivacySettings()


# Derived from Settings itself, so a new section cannot be forgotten here.
_SECTION_TYPES = {f.name: type(f.default) for f in attrs.fields(Settings)}


def _coerce(section: str, name: str, raw: Any, target_type: Any) -> Any:
    type_name = target_type if isinstance(target_type, str) else getattr(target_type, "__name__", str(target_type))
    try:
        if type_name == "int":
            return int(raw)
        if type_name == "float":
            return float(raw)
        if type_name == "bool":
            if isinstance(raw, bool):
                return raw
            if str(raw).lower() in ("true", "1", "yes"):
                return True
            if str(raw).lower() in ("false", "0", "no"):
                return False
            raise ValueError(raw)
        if type_name == "Path":
            return Path(raw).expanduser()
        return str(raw)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"{section}.{name}: expected {type_name}, got {raw!r}") from exc


def _build(values: Mapping[str, Mapping[str, Any]]) -> Settings:
    sections = {}
    for section, cls in _SECTION_TYPES.items():
        fields = {f.name: f for f in attrs.fields(cls)}
        given = values.get(section, {})
        unknown = set(given) - set(fields)
        if unknown:
            raise SettingsError(f"{section}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(fields)}")
        kwargs = {k: _coerce(section, k, v, fields[k].type) for k, v in given.items()}
        try:
            sections[section] = cls(**kwargs)
        except (TypeError, ValueError) as exc:
            raise SettingsError(f"{section}: {exc}") from exc
    return Settings(**sections)


def load_settings(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Defaults, then the TOML file at `path` (if any), then BORDERFUSE_* variables."""
    values: dict[str, dict[str, Any]] = {}
    if path is not None:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError as exc:
            raise SettingsError(f"config file {path} does not exist") from exc
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"config file {path} is not valid TOML: {exc}") from exc
        for section, body in data.items():
            if section not in _SECTION_TYPES:
                raise SettingsError(f"{path}: unknown section [{section}]; known: {', '.join(_SECTION_TYPES)}")
            if not isinstance(body, dict):
                raise SettingsError(f"{path}: [{section}] must be a table")
            values.setdefault(section, {}).update(body)
    env = os.environ if environ is None else environ
    for key, raw in env.items():
        if not key.startswith(ENV_PREFIX) or "__" not in key:
            continue
        section, _, name = key[len(ENV_PREFIX):].lower().partition("__")
        if section not in _SECTION_TYPES:
            raise SettingsError(f"environment {key}: unknown section {section!r}")
        values.setdefault(section, {})[name] = raw
    return _build(values)
