"""The incident wire format: Confluent framing + Avro (ingest/incident.v2.avsc, schema id 202; v1 = 201 still read)."""
from __future__ import annotations

import json
import struct

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from borderfuse.ingest.incident_codec import (INCIDENT_SCHEMA_ID, SCHEMA_FILE, V1_SCHEMA, V1_SCHEMA_FILE,
                                              IncidentCodecError, decode_incident, encode_incident, iso_to_time_us,
                                              time_us_to_iso)

BASE = {
    "incident_id": "bc-S2-000017", "type": "border_crossing", "sector": "S2",
    "time": "2026-01-10T02:03:04.500001Z", "lat": 52.31, "lon": 14.61, "track_id": "T42",
    "sources": ["de-radar-1", "pl-cam-2"], "severity": "high", "summary": "person crossed the border",
}


def test_frame_starts_with_magic_byte_and_the_documented_schema_id():
    frame = encode_incident(BASE)
    assert frame[0] == 0
    assert struct.unpack(">I", frame[1:5])[0] == INCIDENT_SCHEMA_ID == 202


def test_round_trip_keeps_every_field():
    decoded = decode_incident(encode_incident(BASE))
    assert {k: decoded[k] for k in BASE} == BASE
    assert decoded["time_us"] == iso_to_time_us(BASE["time"])


def test_body_is_plain_avro_readable_with_the_schema_file():
    frame = encode_incident(BASE)
    import io
    schema = fastavro.parse_schema(json.loads(SCHEMA_FILE.read_text()))
    record = fastavro.schemaless_reader(io.BytesIO(frame[5:]), schema, None)
    assert record["incident_id"] == BASE["incident_id"] and record["sources"] == BASE["sources"]


@pytest.mark.parametrize("change", [
    {"track_id": None}, {"sources": []}, {"time": 1768010584500001}, {"severity": None, "summary": None},
])
def test_optional_shapes_encode(change):
    decoded = decode_incident(encode_incident({**BASE, **change}))
    assert decoded["incident_id"] == BASE["incident_id"]
    if "track_id" in change:
        assert decoded["track_id"] is None


@pytest.mark.parametrize("frame, message", [
    (b"", "too short"),
    (b"\x00\x00\x00", "too short"),
    (b"\x01" + struct.pack(">I", 201) + b"\x02a", "expected 0x00"),
    (b"\x00" + struct.pack(">I", 101) + b"\x02a", "schema id 101"),
    (b"\x00" + struct.pack(">I", 201) + b"\x0aab", "not valid incident Avro"),
])
def test_bad_frames_are_rejected(frame, message):
    with pytest.raises(IncidentCodecError, match=message):
        decode_incident(frame)


def test_truncated_and_padded_frames_are_rejected():
    frame = encode_incident(BASE)
    with pytest.raises(IncidentCodecError):
        decode_incident(frame[:-4])
    with pytest.raises(IncidentCodecError, match="trailing"):
        decode_incident(frame + b"\x00")


def test_missing_field_is_a_codec_error():
    with pytest.raises(IncidentCodecError, match="sector"):
        encode_incident({k: v for k, v in BASE.items() if k != "sector"})


@pytest.mark.parametrize("text", ["2026-01-10 02:03:04", "yesterday"])
def test_time_without_offset_or_unparseable_is_rejected(text):
    with pytest.raises(IncidentCodecError):
        iso_to_time_us(text)


@settings(max_examples=200, deadline=None)
@given(time_us=st.integers(0, 4_102_444_800_000_000),
       ident=st.text(min_size=1, max_size=40),
       sources=st.lists(st.text(max_size=20), max_size=6),
       lat=st.floats(-90, 90), lon=st.floats(-180, 180))
def test_round_trip_property(time_us, ident, sources, lat, lon):
    incident = {**BASE, "incident_id": ident, "time": time_us_to_iso(time_us), "sources": sources, "lat": lat, "lon": lon}
    decoded = decode_incident(encode_incident(incident))
    assert decoded["time_us"] == time_us
    assert (decoded["incident_id"], decoded["sources"], decoded["lat"], decoded["lon"]) == (ident, sources, lat, lon)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_garbage_never_escapes_as_another_exception(garbage):
    try:
        decode_incident(garbage)
    except IncidentCodecError:
        pass


@pytest.mark.parametrize("extras", [
    dict(cls="person", seq=1),
    dict(plate="WA12345", country="PL", seq=3),
])
def test_pipeline_incident_json_form_survives_the_wire_unchanged(extras):
    from borderfuse.fusion.types import Incident

    incident = Incident("inc-1", "hotlist_vehicle" if "plate" in extras else "border_crossing", "S3",
                        1_795_298_340_000_001, 52.3123456, 14.6123456, "T7", ("pl-anpr-1", "de-anpr-2"),
                        "high", "summary line", **extras)
    doc = incident.to_json_dict()
    decoded = decode_incident(encode_incident(doc))
    assert decoded.pop("time_us") == incident.time_us
    assert decoded == doc


DECIDED = {**BASE, "decided_at": "2026-01-10T02:03:06.250000Z"}


@pytest.mark.parametrize("doc", [BASE, DECIDED, {**DECIDED, "status": "withdrawn", "seq": 3}])
def test_v2_round_trip_carries_decided_at_and_status(doc):
    decoded = decode_incident(encode_incident(doc))
    assert {k: decoded[k] for k in doc} == doc
    assert "decided_at" not in decoded if "decided_at" not in doc else True
    assert "status" not in decoded if "status" not in doc else True


def test_an_old_v1_reader_resolves_v2_records():
    """Old readers are unaffected: the v1 schema as reader schema reads a v2 body (new fields skipped)."""
    import io
    frame = encode_incident({**DECIDED, "status": "withdrawn"})
    writer = fastavro.parse_schema(json.loads(SCHEMA_FILE.read_text()))
    record = fastavro.schemaless_reader(io.BytesIO(frame[5:]), writer, V1_SCHEMA)
    assert record["incident_id"] == BASE["incident_id"] and "decided_at" not in record and "status" not in record


def test_v1_frames_written_before_the_change_are_still_read():
    import io
    body = io.BytesIO()
    v1 = fastavro.parse_schema(json.loads(V1_SCHEMA_FILE.read_text()))
    record = {**BASE, "time": iso_to_time_us(BASE["time"]), "seq": 1, "class": None, "plate": None, "country": None}
    fastavro.schemaless_writer(body, v1, record)
    decoded = decode_incident(b"\x00" + struct.pack(">I", 201) + body.getvalue())
    assert {k: decoded[k] for k in BASE} == BASE and "decided_at" not in decoded


@pytest.mark.parametrize("kind, allowed", [("hotlist_vehicle", True), ("border_crossing", False),
                                           ("drone_crossing", False), ("loitering", False)])
def test_only_a_hotlist_hit_may_carry_a_plate_onto_the_wire(kind, allowed):
    doc = {**BASE, "type": kind, "plate": "LU14958", "country": "PL"}
    if allowed:
        assert decode_incident(encode_incident(doc))["plate"] == "LU14958"
    else:
        with pytest.raises(IncidentCodecError, match="carries a plate: only hotlist_vehicle"):
            encode_incident(doc)
    assert decode_incident(encode_incident({**BASE, "type": kind})).get("plate") is None
