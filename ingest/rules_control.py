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
import tomllib
from typing import Any

import attrs

from borderfuse.fusion.rules import RuleSet, RulesError, rules_from_mapping
# the audit record format lives in ingest/audit.py; re-exported for the service and older imports
from borderfuse.ingest.audit import AUDIT_TOPIC, AUDIT_TOPIC_CONFIG, audit_record  # noqa: F401

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
