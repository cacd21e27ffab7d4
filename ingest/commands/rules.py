"""`borderfuse rules apply FILE | show`: change the running service's rules without a restart."""
from __future__ import annotations

import getpass
import socket
import sys
import time
from pathlib import Path


def register(sub):
    p = sub.add_parser(
        "rules", help="apply a rules file to the running service (no restart), or show the rules in force",
        description="`apply FILE` validates FILE (an error names the file, section and key and changes nothing), "
        "then writes it to the control topic borderfuse.rules for the service's consumer group (settings "
        "kafka.group_id). The running service switches to it at its next transaction boundary, keeps its tracks, "
        "records who/when/which keys changed from what to what on borderfuse.audit (the request itself is audited too"
        " as rules.requested: who, Kafka principal, host), shows the version on /metrics "
        "(borderfuse_rules_info) and keeps the rules across restarts (they are part of its committed state). "
        "`show` prints the latest rules record on the control topic.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    apply = actions.add_parser("apply", help="validate FILE and send it to the running service")
    apply.add_argument("file", metavar="FILE", help="rules TOML (same format as fusion/rules.toml)")
    apply.add_argument("--by", metavar="NAME", help="who asks for the change (default: the OS user)")
    actions.add_parser("show", help="print the version, author and time of the rules last applied")
    for parser in (apply, actions.choices["show"]):
        parser.add_argument("--bootstrap", metavar="HOST:PORT",
                            help="Kafka bootstrap servers (default: settings kafka.bootstrap_servers)")
        parser.add_argument("--principal", default="ops", metavar="NAME",
                            help="Kafka principal to act as (default ops, which may read and write "
                            "borderfuse.rules and write borderfuse.audit; password from kafka.credentials_file)")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from borderfuse.fusion.rules import RulesError
    from borderfuse.ingest.kafka_probe import reachable
    from borderfuse.ingest.rules_control import RULES_TOPIC, RulesRecord, parse_rules_text, rules_version

    import attrs

    from borderfuse.ingest.kafka_security import client_config

    # Everything below (the control record, the audit of the request, `show`) runs as --principal.
    settings = attrs.evolve(args.settings, kafka=attrs.evolve(args.settings.kafka, username=args.principal))
    bootstrap = args.bootstrap or settings.kafka.bootstrap_servers
    topic = settings.service.topic_prefix + RULES_TOPIC
    key = settings.kafka.group_id.encode()
    if args.action == "apply":
        path = Path(args.file)
        try:
            text = path.read_text(encoding="utf-8")
            parse_rules_text(text, f"rules file {path}")
        except RulesError as exc:
            print(f"borderfuse rules: refused, nothing changed: {exc}", file=sys.stderr)
            return 2
        except (OSError, UnicodeDecodeError) as exc:
            print(f"borderfuse rules: refused, nothing changed: cannot read {path}: {exc}", file=sys.stderr)
            return 2
    if not reachable(bootstrap):
        print(f"borderfuse rules: cannot reach Kafka at {bootstrap} (kafka.bootstrap_servers)", file=sys.stderr)
        return 1
    security = client_config(settings.kafka)
    if args.action == "show":
        return _show(bootstrap, topic, key, security)
    record = RulesRecord(text, rules_version(text), args.by or getpass.getuser(), time.time(), socket.gethostname())
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, **security)
    try:
        producer.send(topic, key=key, value=record.encode()).get(timeout=30)
    except KafkaError as exc:
        print(f"borderfuse rules: writing to {topic} failed: {exc!r}", file=sys.stderr)
        return 1
    finally:
        producer.close(timeout=5)
    _audit_request(settings, bootstrap, record)
    print(f"rules {record.version} sent to {topic} for group {settings.kafka.group_id!r}; the service applies them at "
          f"its next transaction boundary (see borderfuse_rules_info on /metrics and {settings.service.topic_prefix}"
          f"borderfuse.audit)")
    return 0


def _audit_request(settings, bootstrap: str, record) -> None:
    """The request itself is audited (who asked, as which Kafka principal, from where); the service
    audits the switch (rules.applied / rules.rejected) when it happens."""
    from borderfuse.ingest.audit import AuditError, KafkaAuditWriter

    writer = KafkaAuditWriter(settings, "borderfuse rules", bootstrap=bootstrap)
    try:
        writer.write("rules.requested", record.by, where_from=record.host, version=record.version,
                     group=settings.kafka.group_id, principal=getattr(settings.kafka, "username", "") or "anonymous")
    except AuditError as exc:
        print(f"borderfuse rules: warning: {exc}", file=sys.stderr)
    finally:
        writer.close()


def _show(bootstrap: str, topic: str, key: bytes, security: dict | None = None) -> int:
    from borderfuse.ingest.incident_feed import read_topics
    from borderfuse.ingest.rules_control import RulesRecord, RulesRecordError

    latest = [r for r in read_topics(bootstrap, [topic], security=security) if r.key == key]
    if not latest:
        print("no rules applied live: the service uses its settings' rules file (fusion.rules_file)")
        return 0
    try:
        record = RulesRecord.decode(latest[-1].value, f"{topic}@{latest[-1].offset}")
    except RulesRecordError as exc:
        print(f"borderfuse rules: {exc}", file=sys.stderr)
        return 1
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.at_unix_s))
    print(f"rules {record.version}, applied by {record.by} on {record.host or '?'} at {when}")
    return 0
