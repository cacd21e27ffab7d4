"""The whole sample capture decodes; exactly its malformed records become dead letters."""
from pathlib import Path

import pytest

from borderfuse.geo.geography import Geography
from borderfuse.capture.files import CaptureReader
from borderfuse.sensors.decode import RecordDecoder
from borderfuse.sensors.topics import HOTLIST_TOPIC
from borderfuse.sensors.hotlist import decode_hotlist
from sensor_records import GEO_DIR, SCHEMAS_DIR

SAMPLE = Path(__file__).resolve().parent.parent.parent / "shared" / "scenarios" / "sample" / "capture.jsonl.gz"

EXPECTED_DEAD_LETTERS = {
    ("de.anpr.reads", 0): "oversized_field",           # 5000-character plate
    ("de.anpr.reads", 11): "bad_timestamp",            # ts "yesterday"
    ("de.camera.detections", 1608): "unknown_schema",  # de.bpol.camera.detection/9
    ("de.camera.detections", 6121): "impossible_value",  # easting/northing swapped
    ("de.radar.tracks", 4093): "malformed",            # not UTF-8
    ("de.radar.tracks", 21262): "malformed",           # not JSON
    ("de.uav.detections", 58): "impossible_value",     # NaN
    ("pl.anpr.reads", 0): "unknown_sensor",            # PL-ANPR-XX
    ("pl.anpr.reads", 5): "empty_value",               # 0-byte value
    ("pl.camera.detections", 70): "unknown_schema",    # schema id 999
    ("pl.radar.plots", 347): "malformed",              # truncated Avro
    ("pl.radar.plots", 1958): "bad_framing",           # magic byte 0x07
    ("pl.radar.plots", 2185): "impossible_value",      # range -50 m
    ("pl.radar.plots", 19557): "impossible_value",     # range NaN
    ("pl.uav.detections", 0): "impossible_value",      # latitude 91.5
    # Not among the scenario's 15 injected faults, but impossible by the ICD's own rule
    # (range <= 0): PL-R1 plots of a vehicle passing the radar mast, whose simulated range
    # noise (sigma 12 m) went below zero.
    ("pl.radar.plots", 3464): "impossible_value",      # range -3.45 m
    ("pl.radar.plots", 4477): "impossible_value",      # range -0.48 m
}


@pytest.mark.slow
@pytest.mark.skipif(not SAMPLE.exists(), reason="sample scenario not present")
def test_sample_capture_dead_letters_exactly_the_bad_records():
    decoder = RecordDecoder(Geography.load(GEO_DIR), SCHEMAS_DIR)
    records = list(CaptureReader(SAMPLE))
    assert len(records) == 90_317
    hotlist = [decode_hotlist(r) for r in records if r.topic == HOTLIST_TOPIC]
    assert len(hotlist) == 10
    observations, dead = decoder.decode_batch(r for r in records if r.topic != HOTLIST_TOPIC)
    assert {(r.topic, r.offset): e.kind for r, e in dead} == EXPECTED_DEAD_LETTERS
    assert len(observations) == 90_317 - 10 - len(EXPECTED_DEAD_LETTERS)
