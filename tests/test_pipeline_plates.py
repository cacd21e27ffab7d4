"""The pipeline and plates: reads are pseudonymised at decoding, the hotlist matched by pseudonym, and a
snapshot restored under a rotated plate key still matches the list (ingest.pipeline + privacy.plates)."""
from __future__ import annotations

import json

import pytest

from borderfuse.fusion.rules import RuleSet
from borderfuse.geo.geography import Geography
from borderfuse.ingest.pipeline import Pipeline
from borderfuse.ingest.settings import DEFAULT_GEO_DIR, DEFAULT_SCHEMAS_DIR
from borderfuse.privacy.plates import PlatePseudonymiser
from borderfuse.sensors.base import RawRecord
from sensor_records import T0_MS, record_of

OLD = PlatePseudonymiser(b"\x01" * 32, "k1")
NEW = PlatePseudonymiser(b"\x02" * 32, "k2")
GEO = Geography.load(DEFAULT_GEO_DIR)
HOTLIST = RawRecord("shared.hotlist", 0, 0, T0_MS - 1000, b"DE:MQQ402", json.dumps(
    {"plate": "M-QQ 402", "country": "DE", "reason": "stolen vehicle", "list": "SIS",
     "added": "2026-11-20T23:00:00.000+01:00"}).encode())


def pipeline(plates: PlatePseudonymiser) -> Pipeline:
    return Pipeline(GEO, RuleSet(), DEFAULT_SCHEMAS_DIR, plates=plates)


def test_reads_leave_decoding_as_pseudonyms_and_still_hit_the_hotlist():
    p = pipeline(OLD)
    batch = p.decode([HOTLIST, record_of("de_anpr", offset=1)])
    [(_, _, update), (_, _, read)] = batch.entries
    assert read.plate == OLD.pseudonym("MQQ402") and update.update.key == f"DE:{OLD.pseudonym('MQQ402')}"
    [hit] = p.process_decoded(batch).incidents
    assert (hit.type, hit.plate, hit.country) == ("hotlist_vehicle", "MQQ402", "DE") and "MQQ402" in hit.summary
    assert "MQQ402" not in hit.incident_id


@pytest.mark.parametrize("restored_with, hits", [(NEW, 1), (OLD, 1)])
def test_a_snapshot_restored_under_a_rotated_key_still_matches_the_list(restored_with, hits):
    before = pipeline(OLD)
    assert before.process_batch([HOTLIST]).incidents == []
    after = pipeline(restored_with)
    after.restore(before.snapshot())
    assert list(after.engine.hotlist.entries) == [f"DE:{restored_with.pseudonym('MQQ402')}"]
    found = after.process_batch([record_of("de_anpr", offset=1)]).incidents
    assert [(i.type, i.plate) for i in found] == [("hotlist_vehicle", "MQQ402")] * hits
