"""borderfuse.ingest.audit: the record format (who, what, when, from where), the writers, and on the real
broker: the service's start record with its principal, readable by ops."""
from __future__ import annotations

import json
import time

import pytest

from borderfuse.devbroker.processes import free_port
from borderfuse.ingest.audit import (AUDIT_TOPIC, SCHEMA, AuditError, KafkaAuditWriter, LogAuditWriter,
                                     audit_record, audit_service_start, decode_audit)
from borderfuse.ingest.settings import load_settings


def test_a_record_says_who_what_when_and_from_where():
    before = time.time()
    doc = decode_audit(audit_record("console.login", "centre-S1", service="console c1", where_from="10.0.0.7",
                                    details={"sectors": ["S1"]}))
    assert doc["schema"] == SCHEMA == "borderfuse.audit/1"
    assert (doc["what"], doc["who"], doc["service"], doc["from"], doc["sectors"]) == \
        ("console.login", "centre-S1", "console c1", "10.0.0.7", ["S1"])
    assert before <= doc["when"] <= time.time()


@pytest.mark.parametrize("what, who, details, message", [
    ("", "a", {}, "needs what and who"),
    ("x", "", {}, "needs what and who"),
    ("x", "a", {"who": "mallory"}, "would overwrite"),
    ("x", "a", {"when": 0}, "would overwrite"),
])
def test_a_record_cannot_lose_or_fake_its_own_fields(what, who, details, message):
    with pytest.raises(ValueError, match=message):
        audit_record(what, who, service="s", details=details)


@pytest.mark.parametrize("value, message", [
    (b"{not json", "not JSON"),
    (b'{"schema": "borderfuse.rules/1"}', "not a borderfuse.audit/1 record"),
    (b"[1]", "not a borderfuse.audit/1 record"),
])
def test_decode_refuses_what_is_not_an_audit_record(value, message):
    with pytest.raises(ValueError, match=message):
        decode_audit(value, "borderfuse.audit@7")


def test_the_rules_module_still_offers_the_record():
    from borderfuse.ingest import rules_control

    assert rules_control.audit_record is audit_record and rules_control.AUDIT_TOPIC == AUDIT_TOPIC


def test_the_log_writer_keeps_and_logs(caplog):
    writer = LogAuditWriter("console replay")
    with caplog.at_level("INFO", logger="borderfuse.audit"):
        writer.write("console.logout", "anna", where_from="127.0.0.1")
    assert writer.records[0]["what"] == "console.logout" and '"who":"anna"' in caplog.text


def test_an_unreachable_broker_is_an_audit_error_and_a_start_is_still_possible(caplog):
    settings = load_settings(environ={"BORDERFUSE_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}"})
    with pytest.raises(AuditError, match="console.login not written: the broker .* is unreachable"):
        KafkaAuditWriter(settings, "console").write("console.login", "anna")
    with caplog.at_level("ERROR"):
        assert audit_service_start(settings, "borderfuse-test") is False
    assert "the start was not audited" in caplog.text


@pytest.mark.integration
def test_the_service_start_is_audited_with_its_principal_and_only_ops_reads_it(kafka_broker):
    from borderfuse.ingest.acls import provision
    from borderfuse.ingest.incident_feed import read_topics

    prefix = "audit-test."
    base = load_settings(environ={"BORDERFUSE_SERVICE__TOPIC_PREFIX": prefix,
                                  "BORDERFUSE_KAFKA__GROUP_ID": f"{prefix}group"})
    provision(kafka_broker.settings_for("admin", base), kafka_broker.bootstrap)
    assert audit_service_start(kafka_broker.settings_for("borderfuse", base), "borderfuse-audit-test") is True
    writer = KafkaAuditWriter(kafka_broker.settings_for("centre-S1", base), "console c1")
    try:
        writer.write("console.login", "anna", where_from="10.1.2.3", sectors=["S1"])
    finally:
        writer.close()
    records = [json.loads(r.value) for r in read_topics(kafka_broker.bootstrap, [prefix + AUDIT_TOPIC],
                                                        timeout_s=20, security=kafka_broker.client_config("ops"))]
    start, login = records
    assert (start["what"], start["who"], start["service"], start["group"]) == \
        ("service.start", "borderfuse", "borderfuse-audit-test", f"{prefix}group")
    assert (login["what"], login["who"], login["from"], login["service"]) == \
        ("console.login", "anna", "10.1.2.3", "console c1")
    from kafka.errors import KafkaError
    with pytest.raises(KafkaError):   # a centre writes the trail but cannot read it
        read_topics(kafka_broker.bootstrap, [prefix + AUDIT_TOPIC], timeout_s=10,
                    security=kafka_broker.client_config("centre-S1"))


@pytest.mark.integration
def test_a_rules_request_is_audited_with_who_and_the_principal(kafka_broker, monkeypatch, capsys):
    from borderfuse.ingest.acls import provision
    from borderfuse.ingest.cli import main
    from borderfuse.ingest.incident_feed import read_topics
    from borderfuse.ingest.settings import DEFAULT_RULES_FILE

    prefix = "audit-rules."
    env = {**kafka_broker.env("ops"), "BORDERFUSE_SERVICE__TOPIC_PREFIX": prefix,
           "BORDERFUSE_KAFKA__GROUP_ID": f"{prefix}group"}
    provision(kafka_broker.settings_for("admin", load_settings(environ=env)), kafka_broker.bootstrap)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(["rules", "apply", str(DEFAULT_RULES_FILE), "--by", "anna"]) == 0, capsys.readouterr().err
    [record] = [json.loads(r.value) for r in read_topics(kafka_broker.bootstrap, [prefix + AUDIT_TOPIC],
                                                         timeout_s=20, security=kafka_broker.client_config("ops"))]
    assert (record["what"], record["who"], record["principal"], record["service"]) == \
        ("rules.requested", "anna", "ops", "borderfuse rules")
    assert record["from"] and record["version"] and record["group"] == f"{prefix}group"
