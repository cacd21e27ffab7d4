"""The development broker's configuration: KRaft single node, listeners, SASL/SCRAM and the authoriser."""
from __future__ import annotations

import base64
import uuid
from pathlib import Path

from borderfuse.ingest.kafka_probe import LOOPBACK
from borderfuse.ingest.kafka_security import ADMIN


def new_cluster_id() -> str:
    """A random KRaft cluster id (base64url of a UUID). Like Kafka's own Uuid.randomUuid, never one that
    starts with '-': StorageTool's argument parser would take it for an option (1 start in 64)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


_LOG4J2 = """\
# Quiet: the broker logs to {log_file}, warnings only (plus the start line).
status = error
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {log_file}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.file.ref = FILE
logger.server.name = kafka.server.KafkaRaftServer
logger.server.level = INFO
"""


def _jaas_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def security_properties(port: int, controller_port: int, admin_password: str | None) -> dict:
    """Listeners and authorisation. With `admin_password`: clients on SASL_PLAINTEXT with SCRAM-SHA-512 (users
    in the KRaft metadata, bootstrapped at format), the broker itself as `admin` over SCRAM, the controller
    listener on SASL PLAIN with `admin` only (SCRAM users live in the metadata the controller serves, so the
    controller listener cannot use them), StandardAuthorizer and deny-by-default. Without: all PLAINTEXT, no
    authoriser (the plain comparison broker)."""
    if admin_password is None:
        return {
            "listeners": f"PLAINTEXT://{LOOPBACK}:{port},CONTROLLER://{LOOPBACK}:{controller_port}",
            "advertised.listeners": f"PLAINTEXT://{LOOPBACK}:{port}",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        }
    pw = _jaas_quote(admin_password)
    return {
        "listeners": f"SASL_PLAINTEXT://{LOOPBACK}:{port},CONTROLLER://{LOOPBACK}:{controller_port}",
        "advertised.listeners": f"SASL_PLAINTEXT://{LOOPBACK}:{port}",
        "inter.broker.listener.name": "SASL_PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
        "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config":
            f"org.apache.kafka.common.security.scram.ScramLoginModule required username={_jaas_quote(ADMIN)} "
            f"password={pw};",
        "sasl.mechanism.controller.protocol": "PLAIN",
        "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
        "listener.name.controller.plain.sasl.jaas.config":
            f"org.apache.kafka.common.security.plain.PlainLoginModule required username={_jaas_quote(ADMIN)} "
            f"password={pw} user_{ADMIN}={pw};",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": f"User:{ADMIN}",
        "allow.everyone.if.no.acl.found": "false",
    }


def server_properties(port: int, controller_port: int, log_dirs: Path, admin_password: str | None = None) -> str:
    props = {
        "process.roles": "broker,controller",
        "node.id": 1,
        "controller.quorum.voters": f"1@{LOOPBACK}:{controller_port}",
        **security_properties(port, controller_port, admin_password),
        "log.dirs": str(log_dirs),
        # Test-friendly: explicit topics only, single replica everywhere, no rebalance delay.
        "auto.create.topics.enable": "false",
        "num.partitions": 1,
        "default.replication.factor": 1,
        "offsets.topic.replication.factor": 1,
        "offsets.topic.num.partitions": 1,
        "transaction.state.log.replication.factor": 1,
        "transaction.state.log.min.isr": 1,
        "share.coordinator.state.topic.replication.factor": 1,
        "share.coordinator.state.topic.min.isr": 1,
        "group.initial.rebalance.delay.ms": 0,
        "num.network.threads": 2,
        "num.io.threads": 4,
    }
    return "".join(f"{k}={v}\n" for k, v in props.items())
