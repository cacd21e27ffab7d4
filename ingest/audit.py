"""The audit trail on `borderfuse.audit`: who did what, when and from where.

One JSON record per event, schema "borderfuse.audit/1":

    {"schema": "borderfuse.audit/1", "what": "console.login", "who": "centre-S1", "when": 1764262800.123,
     "service": "console host:8800", "from": "10.0.0.7", ...details}

`what` names the event (`service.start`, `rules.requested`, `rules.applied`, `rules.rejected`,
`console.login`, `console.login_failed`, `console.logout`, `console.action`, `console.denied`);
`who` is the authenticated user or Kafka principal (for a rules change: the name the requester gave,
with the Kafka principal that wrote the request beside it); `service` is the component that wrote the
record; `from` is the client address or host. The service writes its records inside its transactions;
the console and the commands use `KafkaAuditWriter` (acks=all: a record is on the broker before the
caller goes on). Centres' consoles and the service may write the topic; only `ops` reads it.
"""
from __future__ import annotations

import json
import logging
import socket
import time
from typing import Any, Mapping

log = logging.getLogger("borderfuse.audit")

SCHEMA = "borderfuse.audit/1"
AUDIT_TOPIC = "borderfuse.audit"
AUDIT_TOPIC_CONFIG = {"retention.ms": str(400 * 24 * 3600 * 1000)}  # audit trails outlive the data they describe
SEND_TIMEOUT_S = 10.0


class AuditError(RuntimeError):
    """An audit record could not be written; the message says where to and why."""


def audit_record(what: str, who: str, *, service: str, details: Mapping[str, Any] | None = None,
                 where_from: str = "", when: float | None = None) -> bytes:
    """One audit record: who, what, when, from where, and the details of the event."""
    if not what or not who:
        raise ValueError(f"an audit record needs what and who, got what={what!r} who={who!r}")
    doc = {"schema": SCHEMA, "what": what, "who": who, "when": time.time() if when is None else float(when),
           "service": service, "from": where_from}
    for key, value in (details or {}).items():
        if key in doc:
            raise ValueError(f"audit detail {key!r} would overwrite the record's own field")
        doc[key] = value
    return json.dumps(doc, separators=(",", ":"), default=str).encode()


def decode_audit(value: bytes | None, where: str = "audit record") -> dict[str, Any]:
    """The record as a dict; ValueError names `where` when it is not a borderfuse.audit/1 record."""
    try:
        doc = json.loads(value or b"")
    except ValueError as exc:
        raise ValueError(f"{where}: not JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise ValueError(f"{where}: not a {SCHEMA} record")
    return doc


class LogAuditWriter:
    """Audit records to the log only (replay mode and tests: there is no broker); keeps them in `records`."""

    def __init__(self, service: str):
        self.service = service
        self.records: list[dict[str, Any]] = []

    def write(self, what: str, who: str, *, where_from: str = "", **details: Any) -> None:
        value = audit_record(what, who, service=self.service, details=details, where_from=where_from)
        self.records.append(json.loads(value))
        log.info("audit: %s", value.decode())

    def close(self) -> None:
        pass


class KafkaAuditWriter:
    """Writes audit records to `<topic_prefix>borderfuse.audit` as `principal` (None: kafka.username).
    `write` returns once the broker has the record (acks=all) or raises AuditError. A producer per record:
    a console writes a handful a minute, and an idle producer would keep reconnecting (and leaking
    sockets, kafka-python 3.0.12) while the broker is away."""

    def __init__(self, settings, service: str, *, principal: str | None = None, bootstrap: str | None = None):
        self.settings = settings
        self.service = service
        self.principal = principal
        self.bootstrap = bootstrap or settings.kafka.bootstrap_servers
        self.topic = settings.service.topic_prefix + AUDIT_TOPIC

    def write(self, what: str, who: str, *, where_from: str = "", **details: Any) -> None:
        from kafka import KafkaProducer
        from kafka.errors import KafkaError

        from borderfuse.ingest.kafka_probe import reachable
        from borderfuse.ingest.kafka_security import client_config

        value = audit_record(what, who, service=self.service, details=details, where_from=where_from)
        if not reachable(self.bootstrap):
            raise AuditError(f"audit record {what} not written: the broker {self.bootstrap} is unreachable")
        producer = None
        try:
            producer = KafkaProducer(bootstrap_servers=self.bootstrap, client_id="borderfuse-audit", acks="all",
                                     linger_ms=0, max_block_ms=int(SEND_TIMEOUT_S * 1000),
                                     request_timeout_ms=int(SEND_TIMEOUT_S * 1000),
                                     **client_config(self.settings.kafka, principal=self.principal))
            producer.send(self.topic, key=who.encode(), value=value).get(timeout=SEND_TIMEOUT_S)
        except (KafkaError, OSError, ValueError) as exc:  # ValueError: CredentialsError (no password)
            raise AuditError(f"audit record {what} not written to {self.topic} on {self.bootstrap}: "
                             f"{type(exc).__name__}: {exc}") from exc
        finally:
            if producer is not None:
                producer.close(timeout=5)
        log.info("audit: %s", value.decode())

    def close(self) -> None:
        pass   # nothing held between records


def audit_service_start(settings, service: str, *, bootstrap: str | None = None) -> bool:
    """Record that the service starts and which Kafka principal it runs as. A failure is logged, not
    raised: the service's own transactions fail loudly if the broker is really gone. True if written."""
    principal = getattr(settings.kafka, "username", "") or "anonymous"
    writer = KafkaAuditWriter(settings, service, bootstrap=bootstrap)
    try:
        writer.write("service.start", principal, where_from=socket.gethostname(), group=settings.kafka.group_id)
        return True
    except AuditError as exc:
        log.error("service: the start was not audited: %s", exc)
        return False
    finally:
        writer.close()
