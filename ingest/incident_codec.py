"""Incidents on the wire: Avro (ingest/incident.v2.avsc) with Confluent framing.

Frame: byte 0x00, the schema id as a 4-byte big-endian unsigned int (INCIDENT_SCHEMA_ID = 202
for incident v2; 201 = v1, still read), then the Avro binary body. v2 adds `decided_at` and
`status` with defaults, so readers of either version resolve records of the other. The codec works on the incident's JSON form (the
same dict `Incident.to_json_dict()` gives and `borderfuse replay` writes one per line), so the
file and the topic carry the same fields: `time` is ISO-8601 UTC with a `Z` in JSON and
timestamp-micros on the wire.
"""
from __future__ import annotations

import io
import json
import struct
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import fastavro

SCHEMA_FILE = Path(__file__).resolve().parent / "incident.v2.avsc"
V1_SCHEMA_FILE = Path(__file__).resolve().parent / "incident.v1.avsc"
INCIDENT_SCHEMA_ID = 202
V1_SCHEMA_ID = 201
MAGIC_BYTE = 0
_HEADER = struct.Struct(">bI")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
OPTIONAL_EXTRAS = ("class", "plate", "country")
PLATE_INCIDENT_TYPE = "hotlist_vehicle"   # the one incident type that may carry a plate in clear

INCIDENT_SCHEMA = fastavro.parse_schema(json.loads(SCHEMA_FILE.read_text()))
V1_SCHEMA = fastavro.parse_schema(json.loads(V1_SCHEMA_FILE.read_text()))
WRITER_SCHEMAS = {V1_SCHEMA_ID: V1_SCHEMA, INCIDENT_SCHEMA_ID: INCIDENT_SCHEMA}  # parsed once


class IncidentCodecError(ValueError):
    """An incident could not be encoded, or a frame is not a valid incident v1 record."""


def time_us_to_iso(time_us: int) -> str:
    """UTC microseconds since the epoch -> ISO-8601 with microseconds and `Z`."""
    seconds, micros = divmod(int(time_us), 1_000_000)
    stamp = datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{micros:06d}Z"


def iso_to_time_us(text: str) -> int:
    """ISO-8601 with `Z` or an offset -> UTC microseconds since the epoch."""
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (TypeError, ValueError) as exc:
        raise IncidentCodecError(f"incident time {text!r} is not ISO-8601") from exc
    if parsed.tzinfo is None:
        raise IncidentCodecError(f"incident time {text!r} has no UTC offset")
    delta = parsed - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _time_us_of(incident: Mapping[str, Any]) -> int:
    if "time_us" in incident and incident["time_us"] is not None:
        return int(incident["time_us"])
    if "time" not in incident:
        raise IncidentCodecError(f"incident {incident.get('incident_id')!r} has neither `time` nor `time_us`")
    value = incident["time"]
    return int(value) if isinstance(value, int) else iso_to_time_us(value)


def to_avro_record(incident: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON-form incident as the Avro record (time as timestamp-micros int).

    Only a hotlist hit may carry a plate (the hit is the lawful reason to show it): any other type
    with a `plate` is refused here, at the last point before the wire (docs/operations.md)."""
    if incident.get("plate") is not None and incident.get("type") != PLATE_INCIDENT_TYPE:
        raise IncidentCodecError(f"incident {incident.get('incident_id')!r} of type {incident.get('type')!r} "
                                 f"carries a plate: only {PLATE_INCIDENT_TYPE} incidents may")
    try:
        return {
            "incident_id": str(incident["incident_id"]),
            "type": str(incident["type"]),
            "sector": str(incident["sector"]),
            "time": _time_us_of(incident),
            "lat": float(incident["lat"]),
            "lon": float(incident["lon"]),
            "track_id": None if incident.get("track_id") is None else str(incident["track_id"]),
            "sources": [str(s) for s in incident.get("sources", ())],
            "severity": "" if incident.get("severity") is None else str(incident["severity"]),
            "summary": "" if incident.get("summary") is None else str(incident["summary"]),
            "seq": int(incident.get("seq", 1)),
            **{k: None if incident.get(k) is None else str(incident[k]) for k in OPTIONAL_EXTRAS},
            "decided_at": _decided_us_of(incident),
            "status": str(incident.get("status") or "active"),
        }
    except KeyError as exc:
        raise IncidentCodecError(f"incident {incident.get('incident_id')!r} lacks field {exc.args[0]!r}") from exc


def _decided_us_of(incident: Mapping[str, Any]) -> int | None:
    value = incident.get("decided_at_us", incident.get("decided_at"))
    if value is None:
        return None
    return int(value) if isinstance(value, int) else iso_to_time_us(value)


def encode_incident(incident: Mapping[str, Any]) -> bytes:
    """JSON-form incident -> Confluent-framed Avro bytes."""
    record = to_avro_record(incident)
    buffer = io.BytesIO()
    buffer.write(_HEADER.pack(MAGIC_BYTE, INCIDENT_SCHEMA_ID))
    try:
        fastavro.schemaless_writer(buffer, INCIDENT_SCHEMA, record)
    except (ValueError, TypeError, OverflowError) as exc:
        raise IncidentCodecError(f"incident {record['incident_id']!r} does not fit incident.v2.avsc: {exc}") from exc
    return buffer.getvalue()


def decode_incident(frame: bytes) -> dict[str, Any]:
    """Confluent-framed Avro bytes -> JSON-form incident (`time` ISO `Z`, plus `time_us`)."""
    if frame is None or len(frame) < _HEADER.size:
        raise IncidentCodecError(f"incident frame too short ({0 if frame is None else len(frame)} bytes, "
                                 f"need >= {_HEADER.size})")
    magic, schema_id = _HEADER.unpack_from(frame)
    if magic != MAGIC_BYTE:
        raise IncidentCodecError(f"incident frame starts with byte {magic & 0xFF:#04x}, expected 0x00 (Confluent framing)")
    writer = WRITER_SCHEMAS.get(schema_id)
    if writer is None:
        raise IncidentCodecError(f"incident frame has schema id {schema_id}, this reader knows "
                                 f"{sorted(WRITER_SCHEMAS)} (v1, v2)")
    body = io.BytesIO(frame[_HEADER.size:])
    try:
        record = fastavro.schemaless_reader(body, writer, INCIDENT_SCHEMA, return_record_name=False)
    except (EOFError, ValueError, TypeError, UnicodeDecodeError, IndexError, OverflowError) as exc:
        raise IncidentCodecError(f"incident frame body is not valid incident Avro (schema id {schema_id}): "
                                 f"{type(exc).__name__}: {exc}") from exc
    if body.tell() != len(frame) - _HEADER.size:
        raise IncidentCodecError(f"incident frame has {len(frame) - _HEADER.size - body.tell()} trailing bytes")
    for key in OPTIONAL_EXTRAS:  # absent, not null, in the JSON form (as Incident.to_json_dict)
        if record.get(key) is None:
            record.pop(key, None)
    time_value = record["time"]
    time_us = time_value if isinstance(time_value, int) else _datetime_to_us(time_value)
    record["time"] = time_us_to_iso(time_us)
    record["time_us"] = time_us
    decided = record.pop("decided_at", None)
    if decided is not None:  # absent when unknown, as in Incident.to_json_dict
        record["decided_at"] = time_us_to_iso(decided if isinstance(decided, int) else _datetime_to_us(decided))
    if record.get("status") == "active":
        record.pop("status")
    return record


def _datetime_to_us(value: datetime) -> int:
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
