"""Pipeline: records in, incidents out - determinism, arrival order, snapshots, hotlist through the decoders."""
import json
import random
from pathlib import Path

import pytest

from borderfuse.capture.files import read_capture
from borderfuse.ingest.pipeline import Pipeline
from borderfuse.ingest.settings import Settings
from borderfuse.sensors.base import RawRecord

SAMPLE = Path(__file__).resolve().parent.parent.parent / "shared" / "scenarios" / "sample" / "capture.jsonl.gz"
T0_MS = 1_795_298_400_000   # 2026-11-21T22:00:00Z
needs_sample = pytest.mark.skipif(not SAMPLE.exists(), reason="sample scenario not present")


def replay(records, chunk=2000, pipeline=None):
    pipeline = pipeline or Pipeline.from_settings(Settings())
    out = []
    for i in range(0, len(records), chunk):
        out += pipeline.process_batch(records[i:i + chunk]).incidents
    return out + pipeline.flush().incidents, pipeline


@pytest.fixture(scope="module")
def sample():
    records = list(read_capture(SAMPLE))
    incidents, pipeline = replay(records)
    return records, incidents, pipeline


@needs_sample
@pytest.mark.slow
def test_sample_counts_and_stats(sample):
    records, incidents, pipeline = sample
    s = pipeline.stats
    assert sum(s.records.values()) == len(records)
    assert sum(s.dead_letters.values()) == 17 and sum(s.duplicates.values()) > 0
    assert sorted({i.type for i in incidents}) == ["border_crossing", "drone_crossing", "hotlist_vehicle", "loitering"]
    assert all(i.sector in ("S1", "S2", "S3", "S4") for i in incidents)


@needs_sample
@pytest.mark.slow
@pytest.mark.parametrize("chunks", ["777", "random"])
def test_same_arrivals_batched_differently_give_identical_output(sample, chunks):
    """Live polls and replay chunks cut the arrivals differently: the output may not change."""
    records, reference, _ = sample
    pipeline = Pipeline.from_settings(Settings())
    rng, out, i = random.Random(5), [], 0
    while i < len(records):
        size = 777 if chunks == "777" else rng.choice([1, 2, 13, 500, 4000])
        out += pipeline.process_batch(records[i:i + size]).incidents
        i += size
    assert out + pipeline.flush().incidents == reference


def test_same_incidents_when_events_arrive_in_another_order(sample):
    records, reference, _ = sample
    rng = random.Random(11)
    shuffled = []
    for i in range(0, len(records), 40):       # ~1 s of events reordered: well inside the 12 s lateness
        block = records[i:i + 40]
        stamps = sorted(r.timestamp_ms for r in block)   # arrival (broker) time only grows
        rng.shuffle(block)
        shuffled += [RawRecord(r.topic, r.partition, r.offset, ts, r.key, r.value) for r, ts in zip(block, stamps)]
    incidents, pipeline = replay(shuffled, chunk=777)
    # the same alarms at the same event times (track numbers, and so ids, may differ: another
    # arrival order is other arrivals; the same arrivals give the same ids, test above)
    assert [(i.type, i.sector, i.time_us // 1_000_000) for i in incidents if i.seq == 1] == \
        [(i.type, i.sector, i.time_us // 1_000_000) for i in reference if i.seq == 1]


@needs_sample
@pytest.mark.slow
def test_snapshot_restore_continues_exactly(sample):
    records, reference, _ = sample
    half = len(records) // 2
    first = Pipeline.from_settings(Settings())
    before = []
    for i in range(0, half, 2000):
        before += first.process_batch(records[i:min(i + 2000, half)]).incidents
    blob = first.snapshot()
    second = Pipeline.from_settings(Settings())
    second.restore(blob)
    after, _ = replay(records[half:], pipeline=second)
    assert before + after == reference


@needs_sample
@pytest.mark.slow
def test_snapshot_restore_at_arbitrary_split_points_continues_exactly(sample):
    """Snapshot, restore into a new pipeline and carry on from the restored one, at several random points
    of one replay: the whole state survives (re-encoding gives the same bytes) and the output is replay's."""
    records, reference, _ = sample
    splits = sorted(random.Random(23).sample(range(1, len(records)), 4))
    pipeline, out, start = Pipeline.from_settings(Settings(), collect_tracks=True), [], 0
    for split in [*splits, len(records)]:
        for i in range(start, split, 1500):
            out += pipeline.process_batch(records[i:min(i + 1500, split)]).incidents
        start = split
        if split < len(records):
            blob = pipeline.snapshot()
            restored = Pipeline.from_settings(Settings(), collect_tracks=True)
            restored.restore(blob)
            assert restored.snapshot() == blob
            pipeline = restored
    assert out + pipeline.flush().incidents == reference


@needs_sample
def test_pipeline_state_schema_names_every_attribute(sample):
    from borderfuse.ingest.pipeline import PIPELINE_STATE

    _, _, pipeline = sample
    configuration = {"geography", "rules", "plates", "decoder", "engine", "arrival_settle_ms"}
    assert set(vars(pipeline)) == {n for n, _ in PIPELINE_STATE.fields} | configuration


def test_old_pickle_state_and_crafted_state_are_refused_and_change_nothing(tmp_path):
    from borderfuse.ingest.state_envelope import StateFormatError
    from old_snapshots import old_pipeline_state

    pipeline = Pipeline.from_settings(Settings())
    pipeline.process_batch(_de_reads_for_state())
    before = pipeline.snapshot()
    marker = tmp_path / "marker"
    with pytest.raises(StateFormatError, match="previous, pickle-based format .* never unpickled"):
        pipeline.restore(old_pipeline_state(marker))
    assert not marker.exists()
    crafted = bytearray(before)
    crafted[6:8] = (2).to_bytes(2, "big")         # the old snapshot version in a new envelope
    with pytest.raises(StateFormatError, match="pipeline state schema version 2 is unknown"):
        pipeline.restore(bytes(crafted))
    assert pipeline.snapshot() == before


def _de_reads_for_state() -> list[RawRecord]:
    return [_de_read("B AB 123", "D", T0_MS + i * 700, i) for i in range(5)]


def _hotlist(key: bytes, value: dict | None, ts_ms: int, offset: int) -> RawRecord:
    return RawRecord("shared.hotlist", 0, offset, ts_ms, key, None if value is None else json.dumps(value).encode())


def _de_read(plate: str, nat: str, t_ms: int, offset: int, sensor="DE-ANPR-STADT-W") -> RawRecord:
    secs = (t_ms - T0_MS) / 1000
    doc = {"schema": "de.bpol.anpr.read/1", "sensor": sensor, "ts": f"2026-11-21T23:{int(secs // 60):02d}:"
           f"{secs % 60:06.3f}+01:00", "plate": plate, "nat": nat, "conf": 88.0, "dir": "exit", "lane": 1}
    return RawRecord("de.anpr.reads", 0, offset, t_ms + 500, sensor.encode(), json.dumps(doc).encode())


ENTRY = {"plate": "LU-14958", "country": "PL", "reason": "stolen vehicle", "list": "SIS",
         "added": "2026-11-20T23:00:00.000+01:00"}


@pytest.mark.parametrize("read_plate, read_nat, deleted, expected", [
    ("LU 14958", "PL", False, 1),
    ("lu-14958", "PL", False, 1),
    ("LU14958", "CZ", False, 0),
    ("LU 14958", "PL", True, 0),
])
def test_hotlist_through_the_decoders(read_plate, read_nat, deleted, expected):
    records = [_hotlist(b"PL:LU14958", ENTRY, T0_MS, 0)]
    if deleted:
        records.append(_hotlist(b"PL:LU14958", None, T0_MS + 1000, 1))
    records += [_de_read(read_plate, read_nat, T0_MS + 60_000, 0),
                _de_read(read_plate, read_nat, T0_MS + 61_000, 1, sensor="DE-ANPR-A12-W")]
    pipeline = Pipeline.from_settings(Settings())
    result = pipeline.process_batch(records)
    assert result.dead_letters == []
    incidents = result.incidents + pipeline.flush().incidents
    assert len({i.incident_id for i in incidents if i.type == "hotlist_vehicle"}) == expected


def test_dead_letters_and_duplicates_never_reach_fusion():
    good = _de_read("AB123", "DE", T0_MS, 0)
    bad = RawRecord("de.anpr.reads", 0, 1, T0_MS, b"DE-ANPR-STADT-W", b"{not json")
    pipeline = Pipeline.from_settings(Settings())
    result = pipeline.process_batch([good, good, bad])
    assert result.duplicates == 1 and [r for r, _ in result.dead_letters] == [bad]
    assert pipeline.stats.observations == 1
    assert pipeline.stats.dead_letters[("de.anpr.reads", "malformed")] == 1
