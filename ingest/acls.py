"""Least-privilege ACLs for the StandardAuthorizer, derived from the sectors file.

Who may do what (names as in ingest/kafka_security.py; every topic name takes the service's prefix):

| principal | allowed |
| --- | --- |
| `pl-agency`, `de-agency` | WRITE its own raw topics (`pl.*` / `de.*` of the ICD) and `shared.hotlist` (both feed it, ICD); read nothing |
| `borderfuse` | READ the raw topics and the hotlist; WRITE `incidents.<sector>`, `tracks.<sector>`, every `.dlq`, `borderfuse.audit`; READ+WRITE `borderfuse.state`; READ `borderfuse.rules`; READ its consumer group; WRITE its transactional id |
| `centre-<sector>` | READ `incidents.<sector>`, `tracks.<sector>`; READ+WRITE `actions.<sector>`; WRITE (not read) `borderfuse.audit` |
| `ops` | DESCRIBE every topic and group (lag); READ+WRITE `borderfuse.audit` (`rules apply` audits its request); READ+WRITE `borderfuse.rules` (`borderfuse rules apply|show`) |
| `admin` | super user (broker setting `super.users`): creates topics and these ACLs, nothing else by default |

Nobody but `borderfuse` (and admin) reads `borderfuse.state` or a dead-letter topic: they hold raw bytes.
WRITE and READ imply DESCRIBE in Kafka; since Kafka 3.0 WRITE on a topic also allows an idempotent producer
(KIP-679), so no cluster-wide IdempotentWrite is granted.
"""
from __future__ import annotations

import time
from pathlib import Path

import attrs

from borderfuse.ingest.kafka_security import DE_AGENCY, OPS, PL_AGENCY, SERVICE, centre_principal
from borderfuse.ingest.rules_control import AUDIT_TOPIC, RULES_TOPIC
from borderfuse.ingest.topics import TopicsError, admin_client, sector_topics
from borderfuse.ingest.track_feed import actions_topic, track_topic
from borderfuse.sensors.topics import HOTLIST_TOPIC, INPUT_TOPICS, dlq_topic

# attrs-typed rather than kafka-python's ACL objects, so the table can be built and tested without Kafka.
TOPIC, GROUP, TRANSACTIONAL_ID = "TOPIC", "GROUP", "TRANSACTIONAL_ID"
LITERAL, PREFIXED = "LITERAL", "PREFIXED"


@attrs.frozen(slots=True, order=True)
class Grant:
    principal: str
    operation: str          # kafka.admin.ACLOperation name: READ, WRITE, DESCRIBE
    resource_type: str      # TOPIC, GROUP, TRANSACTIONAL_ID
    resource_name: str
    pattern: str = LITERAL  # LITERAL or PREFIXED

    def describe(self) -> str:
        star = "*" if self.pattern == PREFIXED else ""
        return f"User:{self.principal} {self.operation} {self.resource_type}:{self.resource_name}{star}"


def grants(geo_dir: Path, prefix: str = "", group_id: str = "borderfuse", state_topic: str = "borderfuse.state",
           transactional_id: str | None = None) -> list[Grant]:
    """Every ACL of the table above for the sectors in `geo_dir`; `group_id` and `transactional_id` are the
    service's (default: `borderfuse-<prefix><group_id>`, as ingest/service.py names it)."""
    sectors = sector_topics(geo_dir)
    transactional_id = transactional_id or f"borderfuse-{prefix}{group_id}"
    out: list[Grant] = []

    def topic(principal: str, operation: str, name: str) -> None:
        out.append(Grant(principal, operation, TOPIC, prefix + name))

    for agency, side in ((PL_AGENCY, "pl."), (DE_AGENCY, "de.")):
        for name in INPUT_TOPICS:
            if name.startswith(side):
                topic(agency, "WRITE", name)
        topic(agency, "WRITE", HOTLIST_TOPIC)
    for name in (*INPUT_TOPICS, HOTLIST_TOPIC):
        topic(SERVICE, "READ", name)
        topic(SERVICE, "WRITE", dlq_topic(name))
    for sector, incidents in sectors.items():
        topic(SERVICE, "WRITE", incidents)
        topic(SERVICE, "WRITE", track_topic(sector))
        centre = centre_principal(sector)
        topic(centre, "READ", incidents)
        topic(centre, "READ", track_topic(sector))
        topic(centre, "READ", actions_topic(sector))
        topic(centre, "WRITE", actions_topic(sector))
        topic(centre, "WRITE", AUDIT_TOPIC)
    topic(SERVICE, "READ", state_topic)
    topic(SERVICE, "WRITE", state_topic)
    topic(SERVICE, "WRITE", AUDIT_TOPIC)
    topic(SERVICE, "READ", RULES_TOPIC)
    out.append(Grant(SERVICE, "READ", GROUP, group_id))  # the service's group id is not prefixed
    out.append(Grant(SERVICE, "WRITE", TRANSACTIONAL_ID, transactional_id))
    out.append(Grant(SERVICE, "DESCRIBE", TRANSACTIONAL_ID, transactional_id))
    topic(OPS, "READ", AUDIT_TOPIC)
    topic(OPS, "WRITE", AUDIT_TOPIC)
    topic(OPS, "READ", RULES_TOPIC)
    topic(OPS, "WRITE", RULES_TOPIC)
    # Lag: committed offsets of any group against the end offsets of any topic.
    out.append(Grant(OPS, "DESCRIBE", TOPIC, prefix or "*", PREFIXED if prefix else LITERAL))
    out.append(Grant(OPS, "DESCRIBE", GROUP, "*"))
    return sorted(set(out))


def _to_kafka(grant: Grant):
    from kafka.admin import ACL, ACLOperation, ACLPermissionType, ACLResourcePatternType, ResourcePattern, ResourceType

    return ACL(principal=f"User:{grant.principal}", host="*", operation=ACLOperation[grant.operation],
               permission_type=ACLPermissionType.ALLOW,
               resource_pattern=ResourcePattern(ResourceType[grant.resource_type], grant.resource_name,
                                                ACLResourcePatternType[grant.pattern]))


def _from_kafka(acl) -> Grant | None:
    if acl.permission_type.name != "ALLOW" or not acl.principal.startswith("User:"):
        return None
    pattern = acl.resource_pattern
    return Grant(acl.principal[len("User:"):], acl.operation.name, pattern.resource_type.name,
                 pattern.resource_name, pattern.pattern_type.name)


def _describe_all(admin, bootstrap: str) -> set[Grant]:
    from kafka.admin import ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType
    from kafka.admin import ResourcePatternFilter, ResourceType
    from kafka.errors import KafkaError

    acl_filter = ACLFilter(principal=None, host="*", operation=ACLOperation.ANY, permission_type=ACLPermissionType.ANY,
                           resource_pattern=ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY))
    try:
        acls, error = admin.describe_acls(acl_filter)
    except KafkaError as exc:
        raise TopicsError(f"listing ACLs on {bootstrap} failed: {exc!r} (only admin may; is the broker "
                          f"authenticated, broker.authentication = true?)") from exc
    if error is not None and getattr(error, "errno", 0):
        raise TopicsError(f"listing ACLs on {bootstrap} failed: {error!r}")
    return {g for g in map(_from_kafka, acls) if g is not None}


def existing_grants(bootstrap: str, security: dict | None = None, timeout_s: float = 30.0) -> set[Grant]:
    admin = admin_client(bootstrap, timeout_s, security)
    try:
        return _describe_all(admin, bootstrap)
    finally:
        admin.close()


def ensure_acls(bootstrap: str, wanted: list[Grant], security: dict | None = None,
                timeout_s: float = 30.0) -> list[Grant]:
    """Create the grants in `wanted` that the broker does not have yet (idempotent); returns those created.
    Grants the broker has beyond `wanted` are left alone (and listed by `borderfuse topics acls`)."""
    from kafka.errors import KafkaError

    admin = admin_client(bootstrap, timeout_s, security)  # one client for both requests: start-up time counts
    try:
        have = _describe_all(admin, bootstrap)
        missing = [g for g in wanted if g not in have]
        if not missing:
            return []
        try:
            result = admin.create_acls([_to_kafka(g) for g in missing])
        except KafkaError as exc:
            raise TopicsError(f"creating {len(missing)} ACLs on {bootstrap} failed: {exc!r}") from exc
        failed = result.get("failed") or []
        if failed:
            acl, error = failed[0]
            raise TopicsError(f"creating ACLs on {bootstrap} failed for {len(failed)}, e.g. {_from_kafka(acl)}: "
                              f"{error!r}")
        # New ACLs reach the authoriser through the metadata log, a moment later: return once they are in
        # force, so that whatever starts next (the service, a test) is not refused.
        deadline = time.monotonic() + timeout_s
        while not set(missing) <= _describe_all(admin, bootstrap):
            if time.monotonic() > deadline:
                raise TopicsError(f"{len(missing)} new ACLs on {bootstrap} were not in force after {timeout_s:.0f} s")
            time.sleep(0.1)
    finally:
        admin.close()
    return missing


def provision(settings, bootstrap: str | None = None, principal: str = "admin", partitions: int = 1,
              acls: bool = True) -> tuple[list[str], list[Grant]]:
    """What `borderfuse topics create` does: every ICD and service topic under settings service.topic_prefix,
    then (on an authenticated broker, unless `acls` is false) the missing grants for settings kafka.group_id,
    all as `principal`. Returns (topics created, grants created)."""
    from borderfuse.ingest.kafka_security import client_config
    from borderfuse.ingest.topics import ensure_topics, icd_topics, service_topics

    bootstrap = bootstrap or settings.kafka.bootstrap_servers
    security = client_config(settings.kafka, principal)
    prefix = settings.service.topic_prefix
    specs = (icd_topics(settings.icd.geo_dir, partitions=partitions, prefix=prefix)
             + service_topics(prefix, settings.service.state_topic))
    created = ensure_topics(bootstrap, specs, security=security)
    granted: list[Grant] = []
    if acls and settings.kafka.security_protocol != "PLAINTEXT":
        granted = ensure_acls(bootstrap, settings_grants(settings), security)
    return created, granted


def settings_grants(settings) -> list[Grant]:
    """`grants` for the service these settings describe (sectors, prefix, group, state topic)."""
    return grants(settings.icd.geo_dir, prefix=settings.service.topic_prefix, group_id=settings.kafka.group_id,
                  state_topic=settings.service.state_topic)
