"""PL feeds: Avro bodies with Confluent framing (0x00, 4-byte big-endian schema id, Avro binary).

Schemas come from `<schemas_dir>/pl/registry.json` (id → .avsc file), each parsed once. All ids
that carry the same record name (ANPR v1 = 104, v2 = 114) are read into that name's newest
version (by the `.vN.` in the file name), so the decoders see one shape per feed.
"""
from __future__ import annotations

import io
import json
import re
import struct
from pathlib import Path
from typing import Any, Callable

import fastavro
import attrs

from borderfuse.geo.geography import SensorInfo
from borderfuse.sensors import validate as v
from borderfuse.sensors.base import FramingError, ImpossibleValueError, MalformedError, RawRecord, UnknownSchemaError
from borderfuse.sensors.project import LONLAT, MAX_RANGE_FACTOR, POLAR, SITE, Pending

MAGIC = 0
HEADER = struct.Struct(">BI")
_VERSION = re.compile(r"\.v(\d+)\.avsc$")

# topic → Avro full name of the record it carries (ICD topic table)
PL_TOPIC_RECORDS = {
    "pl.radar.plots": "pl.sg.radar.Plot",
    "pl.camera.detections": "pl.sg.camera.Detection",
    "pl.uav.detections": "pl.sg.uav.Detection",
    "pl.anpr.reads": "pl.sg.anpr.Read",
}
_CLASSES = {"PERSON": "person", "VEHICLE": "vehicle", "ANIMAL": "animal", "DRONE": "drone", "UNKNOWN": "unknown"}


class SchemaConfigError(ValueError):
    """The schema directory or registry cannot be used; names the file."""


def _strip_logical_types(node: Any) -> Any:
    """Drop `logicalType` so timestamp-micros stays the wire's int µs (no datetime round trip)."""
    if isinstance(node, dict):
        return {k: _strip_logical_types(val) for k, val in node.items() if k != "logicalType"}
    if isinstance(node, list):
        return [_strip_logical_types(item) for item in node]
    return node


@attrs.frozen(slots=True)
class _Schema:
    schema_id: int
    name: str
    version: int
    writer: Any
    reader: Any  # None when the writer is the reader


class PlAvroCodec:
    """Unframes and reads PL records into dicts shaped by each record name's newest schema."""

    def __init__(self, schemas_dir: Path | str):
        pl_dir = Path(schemas_dir) / "pl"
        registry_path = pl_dir / "registry.json"
        try:
            registry = json.loads(registry_path.read_text(encoding="utf-8"))["schemas"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SchemaConfigError(f"{registry_path}: cannot read the schema id registry: {exc}") from exc
        parsed: dict[int, tuple[str, int, Any]] = {}
        for key, file_name in registry.items():
            path = pl_dir / file_name
            try:
                raw = _strip_logical_types(json.loads(path.read_text(encoding="utf-8")))
                schema = fastavro.parse_schema(raw)
                schema_id = int(key)
            except Exception as exc:  # OSError, JSON and fastavro schema errors alike
                raise SchemaConfigError(f"{path} (schema id {key}): {exc}") from exc
            match = _VERSION.search(file_name)
            parsed[schema_id] = (schema["name"], int(match.group(1)) if match else 1, schema)
        newest: dict[str, tuple[int, Any]] = {}
        for name, version, schema in parsed.values():
            if name not in newest or version > newest[name][0]:
                newest[name] = (version, schema)
        self.schemas = {
            sid: _Schema(sid, name, version, schema, None if newest[name][1] is schema else newest[name][1])
            for sid, (name, version, schema) in parsed.items()
        }

    def read(self, record: RawRecord, expected_name: str) -> dict[str, Any]:
        value = record.value
        if len(value) < HEADER.size:
            raise FramingError(f"value has {len(value)} bytes, shorter than the 5-byte Confluent header")
        magic, schema_id = HEADER.unpack_from(value)
        if magic != MAGIC:
            raise FramingError(f"first byte is 0x{magic:02x}, not the Confluent magic byte 0x00")
        schema = self.schemas.get(schema_id)
        if schema is None:
            raise UnknownSchemaError(f"schema id {schema_id} is not in the PL schema registry "
                                     f"(known: {', '.join(map(str, sorted(self.schemas)))})", field="schema_id")
        if schema.name != expected_name:
            raise UnknownSchemaError(f"schema id {schema_id} ({schema.name}) is not carried on {record.topic}, "
                                     f"which carries {expected_name}", field="schema_id")
        body = io.BytesIO(value)
        body.seek(HEADER.size)
        try:
            doc = fastavro.schemaless_reader(body, schema.writer, schema.reader)
        except Exception as exc:  # fastavro raises EOFError, IndexError, UnicodeDecodeError... on junk
            raise MalformedError(f"Avro body ({len(value) - HEADER.size} bytes, schema id {schema_id}) does not "
                                 f"decode: {type(exc).__name__}: {v.show(str(exc))}") from exc
        left = len(value) - body.tell()
        if left:
            raise MalformedError(f"{left} trailing bytes after the Avro body (schema id {schema_id})")
        return doc


SensorLookup = Callable[[str, str, str], SensorInfo]  # (sensor id, field name, topic)


def _common(doc: dict, record: RawRecord, lookup: SensorLookup, id_field: str = "sensor_id"):
    sensor = lookup(v.string(doc, id_field), id_field, record.topic)
    time_us = v.near_broker_time(doc["time"], record)
    return sensor, time_us


def _polar(doc: dict, bearing_field: str, sensor: SensorInfo) -> tuple[float, float]:
    bearing = v.number(doc, bearing_field, lo=0.0, hi=360.0)
    rng = v.number(doc, "range_m", positive=True)
    # checked here, before projecting, so absurd ranges never reach the geodesic code
    if sensor.max_range_m is not None and rng > MAX_RANGE_FACTOR * sensor.max_range_m:
        raise ImpossibleValueError(f"field range_m={rng!r} is more than {MAX_RANGE_FACTOR} x max_range_m="
                                   f"{sensor.max_range_m:.0f} of {sensor.id}'s site", field="range_m")
    return bearing, rng


def radar_plot(doc: dict, record: RawRecord, lookup: SensorLookup) -> Pending:
    sensor, time_us = _common(doc, record, lookup)
    bearing, rng = _polar(doc, "azimuth_deg", sensor)
    v.number(doc, "doppler_mps", required=False)  # radial only: no velocity, but must be finite
    v.number(doc, "rcs_dbsm", required=False)
    return Pending(record, sensor, POLAR, bearing, rng, fields={"time_us": time_us, "cls": None})


def camera_detection(doc: dict, record: RawRecord, lookup: SensorLookup) -> Pending:
    sensor, time_us = _common(doc, record, lookup)
    object_id = v.string(doc, "object_id")
    bearing, rng = _polar(doc, "bearing_deg", sensor)
    confidence = v.number(doc, "confidence", lo=0.0, hi=1.0)
    return Pending(record, sensor, POLAR, bearing, rng, fields={
        "time_us": time_us, "cls": _CLASSES[doc["object_class"]], "confidence": confidence, "local_id": object_id})


def uav_detection(doc: dict, record: RawRecord, lookup: SensorLookup) -> Pending:
    sensor, time_us = _common(doc, record, lookup, "platform_id")
    lat, lon = v.number(doc, "lat"), v.number(doc, "lon")
    v.latitude_longitude(lat, lon)
    v.number(doc, "alt_m", required=False)
    confidence = v.number(doc, "confidence", lo=0.0, hi=1.0)
    return Pending(record, sensor, LONLAT, lon, lat, sensor.sigma_m,
                   fields={"time_us": time_us, "cls": _CLASSES[doc["object_class"]], "confidence": confidence})


def anpr_read(doc: dict, record: RawRecord, lookup: SensorLookup) -> Pending:
    sensor, time_us = _common(doc, record, lookup)
    plate = v.plate(doc)
    country = v.country(doc, "country", vienna=True)
    confidence = v.number(doc, "confidence", lo=0.0, hi=1.0)
    v.string(doc, "image_ref", required=False)
    direction = "DE->PL" if doc["direction"] == "IN" else "PL->DE"  # IN = entering Poland
    return Pending(record, sensor, SITE, fields={
        "time_us": time_us, "cls": "vehicle", "confidence": confidence, "plate": plate, "country": country,
        "direction": direction})


PL_PARSERS = {
    "pl.radar.plots": radar_plot,
    "pl.camera.detections": camera_detection,
    "pl.uav.detections": uav_detection,
    "pl.anpr.reads": anpr_read,
}
