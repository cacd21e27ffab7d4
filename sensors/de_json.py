"""DE feeds: one UTF-8 JSON document per record, dispatched on its `schema` field.

Known document types are the `$id`s of `<schemas_dir>/de/*.schema.json` that this module has a
decoder for; times are ISO-8601 with the local offset and become UTC µs; positions are already
in the shared frame (EPSG:25833), so only UAV positions (WGS84) need projecting.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from borderfuse.sensors import validate as v
from borderfuse.sensors.base import ImpossibleValueError, MalformedError, RawRecord, UnknownSchemaError
from borderfuse.sensors.pl_avro import SchemaConfigError, SensorLookup
from borderfuse.sensors.project import LONLAT, SHARED, SITE, Pending

CLASSES = ("person", "vehicle", "animal", "drone", "unknown")
KMH = 1 / 3.6


def _reject_constant(name: str):
    raise ImpossibleValueError(f"JSON holds the non-finite number {name}")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)  # built once: json.loads(**kw) builds one per call


def load_json(value: bytes) -> dict[str, Any]:
    """UTF-8 bytes → a JSON object, or MalformedError/ImpossibleValueError saying why not."""
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedError(f"value is not UTF-8: invalid byte at position {exc.start}") from exc
    try:
        doc = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise MalformedError(f"value is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    except (ValueError, RecursionError) as exc:  # e.g. a 5000-digit integer, absurd nesting
        raise MalformedError(f"value is not usable JSON: {type(exc).__name__}: {v.show(str(exc))}") from exc
    if not isinstance(doc, dict):
        raise MalformedError(f"value is a JSON {type(doc).__name__}, not an object")
    return doc


def _position(doc: dict) -> tuple[float, float]:
    pos = v.mapping(doc, "pos")
    return v.number(pos, "e", where="pos."), v.number(pos, "n", where="pos.")


def _common(doc: dict, record: RawRecord, lookup: SensorLookup, id_field: str = "sensor"):
    sensor = lookup(v.string(doc, id_field), id_field, record.topic)
    time_us = v.near_broker_time(v.iso_time_us(doc, "ts"), record, "ts")
    return sensor, time_us


def radar_track(doc: dict, record: RawRecord, lookup: SensorLookup) -> Pending:
    sensor, time_us = _common(doc, record, lookup)
    track = v.string(doc, "track")
    e, n = _position(doc)
    speed = v.number(doc, "speed_kmh", lo=0.0)
    course = v.number(doc, "course_deg", lo=0.0, hi=360.0)
    status = v.choice(doc, "status", ("tentative", "confirmed", "lost"))
    quality = v.number(doc, "quality", required=False, lo=0.0, hi=1.0)
    return Pending(record, sensor, SHARED, e, n, sensor.sigma_m, (speed * KMH, course), fields={
        "time_us": time_us, "cls": None, "confidence": quality, "local_id": track, "status": status})


def camera_detection(doc: dict, record: RawRecord, lookup: SensorLookup) -> Pending:
    sensor, time_us = _common(doc, record, lookup)
    obj = v.string(doc, "obj", required=False)
    e, n = _position(doc)
    sigma = v.number(doc, "sigma_m", required=False, positive=True)
    cls = v.choice(doc, "cls", CLASSES)
    score = v.number(doc, "score", lo=0.0, hi=1.0)
    return Pending(record, sensor, SHARED, e, n, sigma if sigma is not None else sensor.sigma_m, fields={
        "time_us": time_us, "cls": cls, "confidence": score, "local_id": obj})


def uav_detection(doc: dict, record: RawRecord, lookup: SensorLookup) -> Pending:
    sensor, time_us = _common(doc, record, lookup, "platform")
    lat, lon = v.number(doc, "lat"), v.number(doc, "lon")
    v.latitude_longitude(lat, lon)
    v.number(doc, "alt_m", required=False)
    cls = v.choice(doc, "cls", CLASSES)
    score = v.number(doc, "score", lo=0.0, hi=1.0)
    return Pending(record, sensor, LONLAT, lon, lat, sensor.sigma_m, fields={
        "time_us": time_us, "cls": cls, "confidence": score})


def anpr_read(doc: dict, record: RawRecord, lookup: SensorLookup) -> Pending:
    sensor, time_us = _common(doc, record, lookup)
    plate = v.plate(doc)
    country = v.country(doc, "nat", vienna=False)
    conf = v.number(doc, "conf", lo=0.0, hi=100.0)
    direction = v.choice(doc, "dir", ("entry", "exit"))
    v.integer(doc, "lane")
    return Pending(record, sensor, SITE, fields={
        "time_us": time_us, "cls": "vehicle", "confidence": conf / 100.0, "plate": plate, "country": country,
        "direction": "PL->DE" if direction == "entry" else "DE->PL"})  # entry = entering Germany


# document type → (topic it travels on, decoder)
DE_DOCUMENTS = {
    "de.bpol.radar.track/1": ("de.radar.tracks", radar_track),
    "de.bpol.camera.detection/1": ("de.camera.detections", camera_detection),
    "de.bpol.uav.detection/1": ("de.uav.detections", uav_detection),
    "de.bpol.anpr.read/1": ("de.anpr.reads", anpr_read),
}


def known_documents(schemas_dir: Path | str) -> dict[str, tuple[str, Any]]:
    """The document types of `<schemas_dir>/de` that have a decoder: `$id` → (topic, decoder)."""
    de_dir = Path(schemas_dir) / "de"
    found = {}
    for path in sorted(de_dir.glob("*.schema.json")):
        try:
            schema_id = json.loads(path.read_text(encoding="utf-8"))["$id"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SchemaConfigError(f"{path}: cannot read the schema's $id: {exc}") from exc
        if schema_id in DE_DOCUMENTS:
            found[schema_id] = DE_DOCUMENTS[schema_id]
    if not found:
        raise SchemaConfigError(f"{de_dir}: no DE schema with a known $id ({', '.join(DE_DOCUMENTS)})")
    return found


def parse(record: RawRecord, documents: dict[str, tuple[str, Any]], lookup: SensorLookup) -> Pending:
    doc = load_json(record.value)
    schema = v.string(doc, "schema", max_chars=v.MAX_STRING_CHARS)
    entry = documents.get(schema)
    if entry is None:
        raise UnknownSchemaError(f"field schema={v.show(schema)} is not a known DE document type "
                                 f"(known: {', '.join(documents)})", field="schema")
    topic, decoder = entry
    if topic != record.topic:
        raise UnknownSchemaError(f"field schema={schema!r} belongs on {topic}, not {record.topic}", field="schema")
    return decoder(doc, record, lookup)
