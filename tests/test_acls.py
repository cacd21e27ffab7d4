"""Authenticated principals and least-privilege ACLs on the real (SASL/SCRAM, StandardAuthorizer) broker.

One broker for the module (the session's), topics under a prefix of their own, ACLs from `borderfuse
topics create` logic. Every deny of issue 12 is checked against the broker's own answer
(TOPIC_AUTHORIZATION_FAILED), and each deny has an allow beside it so that a refused login or a missing
topic cannot make a deny test pass.
"""
from __future__ import annotations

import uuid

import pytest

from borderfuse.ingest.acls import Grant, ensure_acls, grants
from borderfuse.ingest.kafka_security import DE_AGENCY, OPS, PL_AGENCY, SERVICE, centre_principal, dev_principals
from borderfuse.ingest.settings import DEFAULT_GEO_DIR
from borderfuse.ingest.topics import ensure_topics, icd_topics, service_topics
from borderfuse.sensors.topics import HOTLIST_TOPIC, INPUT_TOPICS, dlq_topic

PL_TOPICS = [t for t in INPUT_TOPICS if t.startswith("pl.")]
DE_TOPICS = [t for t in INPUT_TOPICS if t.startswith("de.")]
STATE, AUDIT, RULES = "borderfuse.state", "borderfuse.audit", "borderfuse.rules"


# ---------------------------------------------------------------------------- the table, without a broker


def _readers(table: list[Grant], name: str) -> set[str]:
    return {g.principal for g in table if g.operation == "READ" and g.resource_type == "TOPIC"
            and g.resource_name == name}


def _writers(table: list[Grant], name: str) -> set[str]:
    return {g.principal for g in table if g.operation == "WRITE" and g.resource_type == "TOPIC"
            and g.resource_name == name}


@pytest.mark.parametrize("topic, readers, writers", [
    *[(t, {SERVICE}, {PL_AGENCY}) for t in PL_TOPICS],
    *[(t, {SERVICE}, {DE_AGENCY}) for t in DE_TOPICS],
    (HOTLIST_TOPIC, {SERVICE}, {PL_AGENCY, DE_AGENCY}),
    *[(dlq_topic(t), set(), {SERVICE}) for t in (*INPUT_TOPICS, HOTLIST_TOPIC)],
    (STATE, {SERVICE}, {SERVICE}),
    (AUDIT, {OPS}, {SERVICE, OPS, *(centre_principal(f"S{i}") for i in range(1, 5))}),
    (RULES, {SERVICE, OPS}, {OPS}),
    *[(f"incidents.S{i}", {centre_principal(f"S{i}")}, {SERVICE}) for i in range(1, 5)],
    *[(f"tracks.S{i}", {centre_principal(f"S{i}")}, {SERVICE}) for i in range(1, 5)],
    *[(f"actions.S{i}", {centre_principal(f"S{i}")}, {centre_principal(f"S{i}")}) for i in range(1, 5)],
])
def test_who_reads_and_writes_each_topic(topic, readers, writers):
    table = grants(DEFAULT_GEO_DIR)
    assert _readers(table, topic) == readers
    assert _writers(table, topic) == writers


def test_every_topic_has_grants_and_every_principal_is_known():
    table = grants(DEFAULT_GEO_DIR)
    granted = {g.resource_name for g in table if g.resource_type == "TOPIC"}
    created = {s.name for s in icd_topics(DEFAULT_GEO_DIR) + service_topics()}
    assert created <= granted
    assert {g.principal for g in table} <= set(dev_principals())


@pytest.mark.parametrize("sector", ["S1", "S2", "S3", "S4"])
def test_the_service_holds_no_right_on_operators_actions(sector):
    # least privilege: the service neither reads nor writes them, not even their metadata
    assert [g for g in grants(DEFAULT_GEO_DIR) if g.principal == SERVICE and g.resource_name == f"actions.{sector}"] == []


def test_prefix_and_service_identity_follow_the_settings():
    table = grants(DEFAULT_GEO_DIR, prefix="t-", group_id="g1")
    assert all(g.resource_name.startswith("t-") for g in table if g.resource_type == "TOPIC")
    assert Grant(SERVICE, "READ", "GROUP", "g1") in table
    assert Grant(SERVICE, "WRITE", "TRANSACTIONAL_ID", "borderfuse-t-g1") in table
    assert Grant(OPS, "DESCRIBE", "TOPIC", "t-", "PREFIXED") in table


# ---------------------------------------------------------------------------- on the real broker


@pytest.fixture(scope="module")
def acl_topics(kafka_broker):
    """Topics + ACLs under a fresh prefix on the session broker, one keyed record on each topic (as admin)."""
    from kafka import KafkaProducer

    prefix = f"acl-{uuid.uuid4().hex[:6]}-"
    specs = icd_topics(DEFAULT_GEO_DIR, prefix=prefix) + service_topics(prefix)
    admin = kafka_broker.client_config()
    ensure_topics(kafka_broker.bootstrap, specs, security=admin)
    wanted = grants(DEFAULT_GEO_DIR, prefix=prefix)
    assert len(ensure_acls(kafka_broker.bootstrap, wanted, admin)) == len(wanted)
    assert ensure_acls(kafka_broker.bootstrap, wanted, admin) == []  # idempotent
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, **admin)
    try:
        for spec in specs:
            producer.send(spec.name, b"v", key=b"k").get(timeout=30)
    finally:
        producer.close()
    return prefix


def _read(broker, principal: str, topic: str) -> int:
    """How many records `principal` reads from `topic`; the broker's refusal raises its own error
    (TopicAuthorizationFailedError from the metadata answer, as any client would get)."""
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
    from kafka.errors import for_code

    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, **broker.client_config(principal))
    try:
        [meta] = admin.describe_topics([topic])
    finally:
        admin.close()
    if meta["error_code"]:
        raise for_code(meta["error_code"])(topic)
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False,
                             **broker.client_config(principal))
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        got = 0
        for _ in range(20):
            got += sum(len(r) for r in consumer.poll(timeout_ms=250).values())
            if got:
                break
        return got
    finally:
        consumer.close()


def _write(broker, principal: str, topic: str) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, max_block_ms=10000, **broker.client_config(principal))
    try:
        producer.send(topic, b"w", key=b"k").get(timeout=30)
    finally:
        producer.close()


@pytest.mark.integration
def test_a_client_without_credentials_or_with_a_wrong_password_is_refused(kafka_broker, acl_topics):
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    for extra in ({}, {**kafka_broker.client_config(), "sasl_plain_password": "wrong"}):
        with pytest.raises(KafkaError):
            admin = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap, request_timeout_ms=3000,
                                     bootstrap_timeout_ms=3000, **extra)
            try:
                admin.list_topics()
            finally:
                admin.close()
    assert _read(kafka_broker, "admin", acl_topics + STATE) == 1  # the same call with credentials works


READ_DENIED = [
    *[(PL_AGENCY, t) for t in DE_TOPICS], *[(DE_AGENCY, t) for t in PL_TOPICS],
    (PL_AGENCY, PL_TOPICS[0]), (DE_AGENCY, HOTLIST_TOPIC),           # agencies read nothing, not even their own
    (centre_principal("S1"), "incidents.S2"), (centre_principal("S1"), "tracks.S2"),
    (centre_principal("S1"), "actions.S2"), (centre_principal("S1"), AUDIT), (SERVICE, "actions.S1"),
    *[(who, STATE) for who in (PL_AGENCY, DE_AGENCY, OPS, centre_principal("S1"))],
    *[(who, dlq_topic(DE_TOPICS[0])) for who in (PL_AGENCY, DE_AGENCY, OPS, centre_principal("S3"))],
]


@pytest.mark.integration
@pytest.mark.parametrize("principal, topic", READ_DENIED)
def test_reads_outside_a_principals_grants_are_refused(kafka_broker, acl_topics, principal, topic):
    from kafka.errors import TopicAuthorizationFailedError

    with pytest.raises(TopicAuthorizationFailedError):
        _read(kafka_broker, principal, acl_topics + topic)


@pytest.mark.integration
@pytest.mark.parametrize("principal, topic", [
    (SERVICE, DE_TOPICS[0]), (SERVICE, PL_TOPICS[0]), (SERVICE, HOTLIST_TOPIC), (SERVICE, STATE),
    (SERVICE, RULES),
    (centre_principal("S1"), "incidents.S1"), (centre_principal("S1"), "tracks.S1"),
    (centre_principal("S2"), "actions.S2"), (OPS, AUDIT),
])
def test_granted_reads_work(kafka_broker, acl_topics, principal, topic):
    assert _read(kafka_broker, principal, acl_topics + topic) >= 1


@pytest.mark.integration
@pytest.mark.parametrize("principal, topic, allowed", [
    (PL_AGENCY, PL_TOPICS[0], True), (PL_AGENCY, DE_TOPICS[0], False),
    (DE_AGENCY, DE_TOPICS[0], True), (DE_AGENCY, PL_TOPICS[0], False),
    (DE_AGENCY, HOTLIST_TOPIC, True), (PL_AGENCY, "incidents.S1", False),
    (centre_principal("S1"), "actions.S1", True), (centre_principal("S1"), "actions.S2", False),
    (centre_principal("S1"), AUDIT, True), (centre_principal("S1"), "incidents.S1", False),
    (SERVICE, "incidents.S3", True), (SERVICE, PL_TOPICS[0], False), (OPS, STATE, False),
])
def test_writes_only_where_granted(kafka_broker, acl_topics, principal, topic, allowed):
    from kafka.errors import TopicAuthorizationFailedError

    if allowed:
        _write(kafka_broker, principal, acl_topics + topic)
    else:
        with pytest.raises(TopicAuthorizationFailedError):
            _write(kafka_broker, principal, acl_topics + topic)
