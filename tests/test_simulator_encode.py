"""The simulator's wire encoders against the ICD schemas: PL Avro round-trips through fastavro with
the registry's schema ids, DE JSON carries every required field with the right types and the local
offset, hotlist keys are normalised."""
from __future__ import annotations

import io
import json
import struct
from datetime import datetime, timezone
from pathlib import Path

import fastavro
import numpy as np
import pytest

from borderfuse.ingest.settings import DEFAULT_SCHEMAS_DIR
from borderfuse.simulator.encode import Encoder, de_times, hotlist_record
from borderfuse.simulator.sensors import Feed

T0_US = 1_795_298_400_000_000  # 2026-11-21T22:00:00Z
REGISTRY = json.loads((DEFAULT_SCHEMAS_DIR / "pl" / "registry.json").read_text())["schemas"]
PL_SCHEMAS = {int(k): fastavro.parse_schema(json.loads((DEFAULT_SCHEMAS_DIR / "pl" / v).read_text()))
              for k, v in REGISTRY.items()}


def _de_schema(name: str) -> dict:
    return json.loads((DEFAULT_SCHEMAS_DIR / "de" / name).read_text())


def _unframe(value: bytes) -> tuple[int, dict]:
    assert value[0] == 0
    (schema_id,) = struct.unpack(">I", value[1:5])
    body = io.BytesIO(value[5:])
    record = fastavro.schemaless_reader(body, PL_SCHEMAS[schema_id], None)
    assert body.tell() == len(value) - 5, "trailing bytes after the Avro body"
    return schema_id, record


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return Encoder(DEFAULT_SCHEMAS_DIR, T0_US)


def _feed(topic, t, sensor, **cols) -> Feed:
    return Feed(topic, np.asarray(t, float), np.array(sensor, dtype=object),
                {k: np.asarray(v) if not isinstance(v, np.ndarray) else v for k, v in cols.items()})


PL_CASES = [
    ("pl.radar.plots", 101, _feed("pl.radar.plots", [1.5], ["PL-R1"], scan_id=np.array([3]), range_m=[1234.5],
                                  azimuth_deg=[359.9], doppler_mps=[-1.25], rcs_dbsm=[-3.5]),
     {"sensor_id": "PL-R1", "scan_id": 3, "range_m": 1234.5, "azimuth_deg": 359.9, "doppler_mps": -1.25,
      "rcs_dbsm": -3.5}),
    ("pl.camera.detections", 102, _feed("pl.camera.detections", [1.5], ["PL-C1"],
                                        object_id=np.array(["PL-C1-00007"], dtype=object),
                                        bearing_deg=[12.25], range_m=[2500.0], cls=np.array([3], np.int8),
                                        confidence=[0.75]),
     {"sensor_id": "PL-C1", "object_id": "PL-C1-00007", "bearing_deg": 12.25, "range_m": 2500.0,
      "object_class": "DRONE", "confidence": 0.75}),
    ("pl.uav.detections", 103, _feed("pl.uav.detections", [1.5], ["PL-U1"], lat=[52.27], lon=[14.575],
                                     alt_m=[np.nan], cls=np.array([0], np.int8), confidence=[0.5]),
     {"platform_id": "PL-U1", "lat": 52.27, "lon": 14.575, "alt_m": None, "object_class": "PERSON",
      "confidence": 0.5}),
]


@pytest.mark.parametrize("topic,schema_id,feed,expected", PL_CASES, ids=[c[0] for c in PL_CASES])
def test_pl_records_round_trip_through_fastavro(encoder, topic, schema_id, feed, expected):
    [value] = encoder.encode(feed)
    got_id, record = _unframe(value)
    assert got_id == schema_id
    assert record.pop("time") == datetime(2026, 11, 21, 22, 0, 1, 500000, tzinfo=timezone.utc)
    assert record == expected


@pytest.mark.parametrize("v2,strip,schema_id", [(False, False, 104), (True, True, 114)])
def test_pl_anpr_v1_and_v2_carry_vienna_signs_and_direction(encoder, v2, strip, schema_id):
    feed = _feed("pl.anpr.reads", [2.0], ["PL-ANPR-A12-E"], plate=np.array(["FF-AB 123"], dtype=object),
                 nat=np.array(["DE"], dtype=object), toward=np.array(["PL"], dtype=object),
                 vehicle_class=np.array(["VAN"], dtype=object), strip=np.array([strip]), v2=np.array([v2]),
                 confidence=[0.9])
    [value] = encoder.encode(feed)
    got_id, record = _unframe(value)
    assert got_id == schema_id
    assert record["country"] == "D" and record["direction"] == "IN" and record["lane"] == 2
    assert record["plate"] == ("FFAB123" if strip else "FF-AB 123")
    if v2:
        assert record["vehicle_class"] == "VAN" and record["image_ref"].startswith("s3://pl-anpr/PL-ANPR-A12-E/")


DE_CASES = [
    ("de.radar.tracks", "radar_track.v1.schema.json",
     _feed("de.radar.tracks", [0.25], ["DE-R1"], track=np.array([7]), x=[465000.04], y=[5797000.0],
           vx=[1.0], vy=[0.0], status=np.array([1], np.int8), quality=[0.6], speed_kmh=[3.6],
           course_deg=[359.97])),
    ("de.camera.detections", "camera_detection.v1.schema.json",
     _feed("de.camera.detections", [0.25], ["DE-C1"], object_id=np.array(["DE-C1-00001"], dtype=object),
           e=[467000.0], n=[5793000.0], sigma_m=[20.0], cls=np.array([4], np.int8), confidence=[0.9])),
    ("de.uav.detections", "uav_detection.v1.schema.json",
     _feed("de.uav.detections", [0.25], ["DE-U1"], lat=[52.44], lon=[14.53], alt_m=[80.0],
           cls=np.array([3], np.int8), confidence=[0.9])),
    ("de.anpr.reads", "anpr_read.v1.schema.json",
     _feed("de.anpr.reads", [0.25], ["DE-ANPR-A12-W"], plate=np.array(["LU 14958"], dtype=object),
           nat=np.array(["PL"], dtype=object), toward=np.array(["PL"], dtype=object),
           vehicle_class=np.array(["CAR"], dtype=object), strip=np.array([True]), v2=np.array([False]),
           confidence=[0.9])),
]


@pytest.mark.parametrize("topic,schema_file,feed", DE_CASES, ids=[c[0] for c in DE_CASES])
def test_de_documents_have_every_required_field_of_their_schema(encoder, topic, schema_file, feed):
    schema = _de_schema(schema_file)
    [value] = encoder.encode(feed)
    doc = json.loads(value.decode("utf-8"))
    assert doc["schema"] == schema["$id"]
    assert set(schema["required"]) <= set(doc)
    assert set(doc) <= set(schema["properties"])
    for name, prop in schema["properties"].items():
        if name in doc and "enum" in prop:
            assert doc[name] in prop["enum"]
        if name in doc and "maximum" in prop:
            assert prop["minimum"] <= doc[name] <= prop["maximum"]
    assert doc["ts"] == "2026-11-21T23:00:00.250+01:00"


def test_de_radar_course_stays_within_0_360_after_rounding(encoder):
    [value] = encoder.encode(DE_CASES[0][2])
    assert json.loads(value)["course_deg"] == 0.0


def test_de_anpr_direction_entry_means_entering_germany(encoder):
    feed = DE_CASES[3][2]
    feed.cols["toward"] = np.array(["DE"], dtype=object)
    doc = json.loads(encoder.encode(feed)[0])
    assert doc["dir"] == "entry" and doc["lane"] == 1 and doc["nat"] == "PL"


@pytest.mark.parametrize("utc,expected", [
    ("2026-11-21T22:00:00.123456+00:00", "2026-11-21T23:00:00.123+01:00"),   # winter: CET
    ("2026-07-01T10:00:00+00:00", "2026-07-01T12:00:00.000+02:00"),          # summer: CEST
])
def test_de_times_use_the_local_offset_of_the_moment(utc, expected):
    us = int(round(datetime.fromisoformat(utc).timestamp() * 1e6))
    [text] = de_times(np.array([us]))
    assert text == expected
    assert datetime.fromisoformat(text).timestamp() == pytest.approx(us / 1e6, abs=1e-3)


def test_de_times_across_a_dst_change_take_each_records_own_offset():
    before = int(datetime(2026, 10, 25, 0, 59, tzinfo=timezone.utc).timestamp() * 1e6)
    after = int(datetime(2026, 10, 25, 1, 1, tzinfo=timezone.utc).timestamp() * 1e6)
    assert [t[-6:] for t in de_times(np.array([before, after]))] == ["+02:00", "+01:00"]


@pytest.mark.parametrize("plate,country,key", [("LU 14958", "PL", b"PL:LU14958"), ("m-qq 402", "DE", b"DE:MQQ402")])
def test_hotlist_record_key_is_country_and_normalised_plate(plate, country, key):
    got_key, value = hotlist_record(plate, country, "stolen vehicle", "SIS", 1_795_212_000_000_000)
    doc = json.loads(value)
    assert got_key == key
    assert doc == {"plate": plate, "country": country, "reason": "stolen vehicle", "list": "SIS",
                   "added": "2026-11-20T23:00:00.000+01:00"}


def test_encoder_reports_a_missing_schema_registry(tmp_path: Path):
    from borderfuse.simulator.scenario import SimulatorError
    with pytest.raises(SimulatorError, match="cannot load the PL schemas"):
        Encoder(tmp_path, T0_US)
