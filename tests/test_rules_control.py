"""Rule changes in the live service: the control record, its validation, the audit, and LiveRules (the rules
a running service has in force). The broker's side is tests/test_service_rules_live.py."""
from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest

from borderfuse.fusion.rules import RulesError, load_rules
from borderfuse.ingest.rules_control import (LiveRules, RulesRecord, RulesRecordError, changed_keys,
                                             parse_rules_text, rules_version)

RULES_FILE = Path(__file__).resolve().parent.parent / "fusion" / "rules.toml"
DEFAULT_TOML = RULES_FILE.read_text(encoding="utf-8")
NO_DRONES = DEFAULT_TOML.replace("[drone_crossing]\nenabled = true", "[drone_crossing]\nenabled = false")
KEY = b"group-1"


def record(toml: str, by: str = "alice") -> RulesRecord:
    return RulesRecord(toml, rules_version(toml), by, 1_800_000_000.0, "console-1")


@attrs.define
class ControlRecord:   # what the service's consumer hands over: key, value, offset
    key: bytes
    value: bytes | None
    offset: int


@attrs.define
class StandInPipeline:
    rules: object
    switched: list = attrs.field(factory=list)

    def set_rules(self, rules):
        self.rules = rules
        self.switched.append(rules)


@attrs.define
class StandInProducer:
    sent: list = attrs.field(factory=list)

    def send(self, topic, key, value):
        self.sent.append((topic, key, json.loads(value)))


@attrs.define
class Versions:
    seen: list = attrs.field(factory=list)

    def set_rules_version(self, version):
        self.seen.append(version)


def live(metrics=None) -> LiveRules:
    return LiveRules(KEY, "borderfuse.rules", "borderfuse.audit", "borderfuse-group-1", metrics)


def test_a_record_round_trips_and_its_version_is_the_hash_of_its_text():
    r = record(NO_DRONES)
    assert RulesRecord.decode(r.encode(), "here") == r
    assert r.version == rules_version(NO_DRONES) != rules_version(DEFAULT_TOML)
    assert len(r.version) == 12


@pytest.mark.parametrize("value, message", [
    (None, "unreadable rules record"),
    (b"not json", "unreadable rules record"),
    (b'{"schema": "other/1"}', "not a borderfuse.rules/1 record"),
    (b'{"schema": "borderfuse.rules/1", "toml": "x"}', "unreadable rules record"),
    (json.dumps({"schema": "borderfuse.rules/1", "toml": "[a]", "version": "0" * 12, "by": "x", "at": 1}).encode(),
     "does not match its rules text"),
])
def test_a_bad_record_is_refused_saying_where(value, message):
    with pytest.raises(RulesRecordError, match=message) as err:
        RulesRecord.decode(value, "borderfuse.rules@7")
    assert "borderfuse.rules@7" in str(err.value)


@pytest.mark.parametrize("text, message", [
    ("[crossing\n", "is not valid TOML"),
    (DEFAULT_TOML.replace("side_probability = 0.9", "side_probability = 7"), "side_probability"),
    (DEFAULT_TOML + "\n[no_such_section]\nx = 1\n", "no_such_section"),
])
def test_bad_rules_text_names_the_source_and_key(text, message):
    with pytest.raises(RulesError, match=message) as err:
        parse_rules_text(text, "rules abc (borderfuse.rules@3)")
    assert "borderfuse.rules@3" in str(err.value)


def test_changed_keys_lists_each_changed_value_from_and_to():
    old = load_rules(RULES_FILE)
    new = parse_rules_text(NO_DRONES, "b")
    assert changed_keys(old, new) == [{"key": "drone_crossing.enabled", "from": True, "to": False}]
    assert changed_keys(old, old) == []
    assert len(changed_keys(None, old)) > 20   # no rules before: every value is new


def test_a_valid_change_switches_the_pipeline_is_audited_and_shown():
    versions = Versions()
    rules, pipeline, producer = live(versions), StandInPipeline(load_rules(RULES_FILE)), StandInProducer()
    rules.apply([ControlRecord(KEY, record(NO_DRONES).encode(), 4)], pipeline, producer)
    assert pipeline.rules.drone_crossing.enabled is False
    assert (rules.toml, rules.version) == (NO_DRONES, rules_version(NO_DRONES))
    [(topic, key, audit)] = producer.sent
    assert (topic, key) == ("borderfuse.audit", KEY)
    assert (audit["what"], audit["who"], audit["from"]) == ("rules.applied", "alice", "console-1")
    assert (audit["from_version"], audit["to_version"]) == ("settings", rules_version(NO_DRONES))
    assert audit["changes"] == [{"key": "drone_crossing.enabled", "from": True, "to": False}]
    assert versions.seen == [rules_version(NO_DRONES)]


@pytest.mark.parametrize("value", [b"garbage", record("[crossing]\nside_probability = 7\n").encode()])
def test_a_bad_change_changes_nothing_and_is_audited_as_rejected(value):
    rules, pipeline, producer = live(), StandInPipeline(load_rules(RULES_FILE)), StandInProducer()
    rules.apply([ControlRecord(KEY, value, 9)], pipeline, producer)
    assert pipeline.switched == [] and (rules.toml, rules.version) == ("", "")
    [(_, _, audit)] = producer.sent
    assert audit["what"] == "rules.rejected" and audit["record"] == "borderfuse.rules@9"


def test_another_groups_record_is_ignored():
    rules, pipeline, producer = live(), StandInPipeline(load_rules(RULES_FILE)), StandInProducer()
    rules.apply([ControlRecord(b"other-group", record(NO_DRONES).encode(), 1)], pipeline, producer)
    assert pipeline.switched == [] and producer.sent == []


@pytest.mark.parametrize("toml, version, shown", [(NO_DRONES, rules_version(NO_DRONES), rules_version(NO_DRONES)),
                                                  ("", "", "settings")])
def test_restore_brings_back_the_rules_in_force_when_the_snapshot_was_taken(toml, version, shown):
    versions = Versions()
    rules, pipeline = live(versions), StandInPipeline(load_rules(RULES_FILE))
    rules.restore(toml, version, pipeline)
    assert pipeline.rules.drone_crossing.enabled is (toml == "")
    assert (rules.toml, rules.version) == (toml, version)
    assert versions.seen == [shown]
