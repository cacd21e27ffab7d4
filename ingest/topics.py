"""The ICD's topics: eight input feeds, a dead-letter topic per feed, the compacted hotlist and
one incident topic per sector (read from the sectors file, so another deployment brings its own)."""
from __future__ import annotations

import json
from pathlib import Path

import attrs

from borderfuse.ingest.kafka_probe import reachable
from borderfuse.sensors.topics import (  # noqa: F401  (re-exported for the Kafka side)
    DLQ_SUFFIX, HOTLIST_TOPIC, INCIDENT_TOPIC_PREFIX, INPUT_TOPICS, dlq_topic,
)
from borderfuse.ingest.track_feed import TRACK_RETENTION_MS, TRACK_SEGMENT_MS, actions_topic, track_topic


class TopicsError(RuntimeError):
    """The topic list could not be built or created; the message says where."""


def _positive(instance, attribute, value):
    if value < 1:
        raise ValueError(f"{attribute.name} must be >= 1, got {value!r}")


@attrs.frozen(slots=True)
class TopicSpec:
    name: str
    partitions: int = attrs.field(default=1, validator=_positive)
    configs: tuple[tuple[str, str], ...] = ()


def sector_topics(geo_dir: Path) -> dict[str, str]:
    """{sector id: incident topic} from `<geo_dir>/sectors.geojson` (`properties.topic`, else incidents.<id>)."""
    path = Path(geo_dir) / "sectors.geojson"
    try:
        features = json.loads(path.read_text())["features"]
    except FileNotFoundError as exc:
        raise TopicsError(f"sectors file {path} does not exist") from exc
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise TopicsError(f"sectors file {path} is not a GeoJSON FeatureCollection: {exc}") from exc
    topics = {}
    for index, feature in enumerate(features):
        props = feature.get("properties") or {}
        sector_id = props.get("id")
        if not isinstance(sector_id, str) or not sector_id:
            raise TopicsError(f"sectors file {path}: feature {index} has no string properties.id")
        topics[sector_id] = props.get("topic") or f"{INCIDENT_TOPIC_PREFIX}{sector_id}"
    return topics


def icd_topics(geo_dir: Path, partitions: int = 1, prefix: str = "") -> list[TopicSpec]:
    """Every topic the ICD names, for the sectors in `geo_dir`; `prefix` is prepended to each
    name (tests sharing one broker, cf. settings service.topic_prefix)."""
    # every input has its dead-letter topic, the hotlist too (a malformed hotlist record is dead-lettered)
    names = [*INPUT_TOPICS, *(dlq_topic(t) for t in (*INPUT_TOPICS, HOTLIST_TOPIC)), *sector_topics(geo_dir).values()]
    specs = [TopicSpec(prefix + name, partitions) for name in names]
    specs.append(TopicSpec(prefix + HOTLIST_TOPIC, partitions, (("cleanup.policy", "compact"),)))
    # The consoles' feeds: confirmed track updates (short retention) and operators' actions on incidents.
    specs += [TopicSpec(prefix + track_topic(sector), partitions, (("retention.ms", str(TRACK_RETENTION_MS)),
                                                                   ("segment.ms", str(TRACK_SEGMENT_MS))))
              for sector in sector_topics(geo_dir)]
    specs += [TopicSpec(prefix + actions_topic(sector), partitions) for sector in sector_topics(geo_dir)]
    return specs


def service_topics(prefix: str = "", state_topic: str = "borderfuse.state") -> list[TopicSpec]:
    """The service's own topics (state, rules control, audit): created with the ICD's by `topics create`,
    because under ACLs the service's principal may not create topics."""
    from borderfuse.ingest.rules_control import AUDIT_TOPIC, AUDIT_TOPIC_CONFIG, RULES_TOPIC, RULES_TOPIC_CONFIG
    from borderfuse.ingest.state_store import STATE_TOPIC_CONFIG

    return [TopicSpec(prefix + state_topic, 1, tuple(STATE_TOPIC_CONFIG.items())),
            TopicSpec(prefix + RULES_TOPIC, 1, tuple(RULES_TOPIC_CONFIG.items())),
            TopicSpec(prefix + AUDIT_TOPIC, 1, tuple(AUDIT_TOPIC_CONFIG.items()))]


def admin_client(bootstrap: str, timeout_s: float = 30.0, security: dict | None = None):
    """A KafkaAdminClient (as the principal of `security`), or TopicsError when the broker is not there."""
    return _admin(bootstrap, timeout_s, security)


def _admin(bootstrap: str, timeout_s: float, security: dict | None = None):
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    error = f"cannot reach Kafka at {bootstrap} (is the broker running? `borderfuse broker start`)"
    if not reachable(bootstrap):
        raise TopicsError(error)
    try:
        return KafkaAdminClient(bootstrap_servers=bootstrap, client_id="borderfuse-topics",
                                request_timeout_ms=int(timeout_s * 1000),
                                bootstrap_timeout_ms=int(timeout_s * 1000), **(security or {}))
    except KafkaError as exc:
        who = f" as {security['sasl_plain_username']!r}" if security else ""
        raise TopicsError(f"{error}{who}: {exc!r} (a refused login looks like this too: check "
                          f"kafka.credentials_file and kafka.security_protocol)") from exc


def ensure_topics(bootstrap: str, specs: list[TopicSpec], timeout_s: float = 30.0,
                  security: dict | None = None) -> list[str]:
    """Create the topics that do not exist yet; returns the names created (existing ones are fine).
    Under ACLs only `admin` may create topics; other principals see (and need) only their own."""
    from kafka.admin import NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    admin = _admin(bootstrap, timeout_s, security)
    try:
        existing = set(admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        if missing:
            new = [NewTopic(s.name, num_partitions=s.partitions, replication_factor=1,
                            topic_configs=dict(s.configs)) for s in missing]
            try:
                admin.create_topics(new, timeout_ms=int(timeout_s * 1000), wait_for_metadata=True)
            except TopicAlreadyExistsError:
                pass  # created concurrently by someone else: fine
            except KafkaError as exc:
                hint = (" (not allowed for this principal: create them as admin with `borderfuse topics create`)"
                        if "Authorization" in type(exc).__name__ else "")
                raise TopicsError(f"creating topics {', '.join(s.name for s in missing)} on {bootstrap} "
                                  f"failed: {exc!r}{hint}") from exc
        return [s.name for s in missing]
    finally:
        admin.close()


def list_topics(bootstrap: str, timeout_s: float = 30.0, security: dict | None = None) -> list[str]:
    admin = _admin(bootstrap, timeout_s, security)
    try:
        return sorted(admin.list_topics())
    finally:
        admin.close()
