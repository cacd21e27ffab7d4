"""Rule changes in the live service: the control record, its validation, and the audit record.

`borderfuse rules apply FILE` validates a rules file and writes one *rules record* to the compacted
control topic `borderfuse.rules`, keyed by the service's consumer group: the TOML text, its version
(a hash of the text), who asked and when. The running service reads that topic beside its inputs;
at a transaction boundary it switches its pipeline to the new rules (tracks and rule state kept),
and in the same transaction writes an *audit record* to `borderfuse.audit` (who, when, which keys
from what to what) and a snapshot that carries the rules text, so a restart resumes with the rules
that were in force. A record that does not validate changes nothing: it is audited as rejected.
"""
from __future__ import annotations

import hashlib
import json
import logging
import tomllib
from typing import Any

import attrs

from borderfuse.fusion.rules import RuleSet, RulesError, rules_from_mapping
# the audit record format lives in ingest/audit.py; re-exported for the service and older imports
from borderfuse.ingest.audit import AUDIT_TOPIC, AUDIT_TOPIC_CONFIG, audit_record  # noqa: F401

log = logging.getLogger("borderfuse.service")

RULES_TOPIC = "borderfuse.rules"
RULES_TOPIC_CONFIG = {"cleanup.policy": "compact"}


class RulesRecordError(ValueError):
    """A rules record (or the rules in it) is not valid; the message says what and where."""


def rules_version(toml_text: str) -> str:
    return hashlib.sha256(toml_text.encode()).hexdigest()[:12]


def parse_rules_text(toml_text: str, source: str) -> RuleSet:
    """TOML text -> RuleSet; RulesError names the source, section and key."""
    try:
        data = tomllib.loads(toml_text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{source} is not valid TOML: {exc}") from exc
    return rules_from_mapping(data, source)


@attrs.frozen(slots=True)
class RulesRecord:
    toml: str
    version: str
    by: str
    at_unix_s: float
    host: str = ""

    def encode(self) -> bytes:
        return json.dumps({"schema": "borderfuse.rules/1", "toml": self.toml, "version": self.version, "by": self.by,
                           "at": self.at_unix_s, "host": self.host}, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, value: bytes | None, where: str) -> "RulesRecord":
        try:
            doc = json.loads(value or b"")
            if doc.get("schema") != "borderfuse.rules/1":
                raise RulesRecordError(f"{where}: not a borderfuse.rules/1 record (schema {doc.get('schema')!r})")
            record = cls(str(doc["toml"]), str(doc["version"]), str(doc["by"]), float(doc["at"]), str(doc.get("host", "")))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise RulesRecordError(f"{where}: unreadable rules record: {exc}") from exc
        if rules_version(record.toml) != record.version:
            raise RulesRecordError(f"{where}: version {record.version} does not match its rules text")
        return record


def changed_keys(old: RuleSet | None, new: RuleSet) -> list[dict[str, Any]]:
    """[{key: "section.key", from, to}] for every value that differs (old None: everything is new)."""
    changes = []
    new_doc = attrs.asdict(new, recurse=True)
    old_doc = attrs.asdict(old, recurse=True) if old is not None else {}
    for section, values in new_doc.items():
        for key, value in values.items():
            before = old_doc.get(section, {}).get(key)
            if before != value:
                changes.append({"key": f"{section}.{key}", "from": _plain(before), "to": _plain(value)})
    return changes


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


class LiveRules:
    """The rules a running service has in force ("" = its settings' rules file) and how a record of the
    control topic changes them: the newest valid record for the service's group takes effect at once
    (tracks and rule state kept); every record is audited, applied or rejected, in the open transaction."""

    def __init__(self, key: bytes, rules_topic: str, audit_topic: str, service_id: str, metrics=None):
        self.key, self.rules_topic, self.audit_topic, self.service_id = key, rules_topic, audit_topic, service_id
        self.metrics = metrics
        self.toml, self.version = "", ""

    def restore(self, toml: str, version: str, pipeline) -> None:
        """The rules of a restored snapshot (none: the settings' file, which the pipeline was built with)."""
        if toml:
            pipeline.set_rules(parse_rules_text(toml, f"rules {version} of the snapshot"))
        self.toml, self.version = toml, version
        self._publish_version()

    def apply(self, records, pipeline, producer) -> None:
        for record in records:
            if record.key != self.key:
                continue  # another service group's rules
            where = f"{self.rules_topic}@{record.offset}"
            try:
                change = RulesRecord.decode(record.value, where)
                rules = parse_rules_text(change.toml, f"rules {change.version} ({where})")
            except (RulesRecordError, RulesError) as exc:
                log.error("service: rules change refused, the rules in force stay: %s", exc)
                producer.send(self.audit_topic, self.key, audit_record(
                    "rules.rejected", "?", service=self.service_id, details={"reason": str(exc), "record": where}))
                continue
            details = {"from_version": self.version or "settings", "to_version": change.version,
                       "requested_at": change.at_unix_s, "changes": changed_keys(pipeline.rules, rules),
                       "record": where}
            pipeline.set_rules(rules)
            self.toml, self.version = change.toml, change.version
            producer.send(self.audit_topic, self.key, audit_record(
                "rules.applied", change.by, service=self.service_id, details=details, where_from=change.host))
            log.info("service: rules %s in force (from %s), %d key(s) changed, asked by %s", change.version,
                     details["from_version"], len(details["changes"]), change.by)
            self._publish_version()

    def _publish_version(self) -> None:
        if self.metrics is not None:
            self.metrics.set_rules_version(self.version or "settings")
