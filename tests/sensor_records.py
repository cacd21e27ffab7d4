"""Builders of valid ICD records, for tests, fuzzing and benchmarks (not used by the pipeline).

`valid_records()` gives one valid record per feed and schema version; `pl_record`/`de_record`
wrap any document in the feed's wire format so a test can break exactly one thing.
"""
from __future__ import annotations

import copy
import functools
import io
import json
from pathlib import Path
from typing import Any

import fastavro

from borderfuse.sensors.base import RawRecord
from borderfuse.sensors.pl_avro import HEADER, MAGIC, PlAvroCodec

REPO_DIR = Path(__file__).resolve().parent.parent
SCHEMAS_DIR = REPO_DIR / "sensors" / "schemas"
GEO_DIR = REPO_DIR / "geo" / "data"
T0_MS = 1_795_298_400_000  # 2026-11-21T22:00:00Z, the sample night's start
EVENT_US = T0_MS * 1000 + 500_000
EVENT_DE_TS = "2026-11-21T23:00:00.500+01:00"  # the same instant as EVENT_US, CET


@functools.lru_cache(maxsize=4)
def codec(schemas_dir: str = str(SCHEMAS_DIR)) -> PlAvroCodec:
    return PlAvroCodec(schemas_dir)


def encode_pl(doc: dict[str, Any], schema_id: int) -> bytes:
    """Confluent-framed Avro bytes of `doc` written with registry schema `schema_id`."""
    out = io.BytesIO()
    out.write(HEADER.pack(MAGIC, schema_id))
    fastavro.schemaless_writer(out, codec().schemas[schema_id].writer, doc)
    return out.getvalue()


def pl_record(topic: str, doc: dict[str, Any], schema_id: int, *, offset: int = 0,
              timestamp_ms: int = T0_MS + 1000, key: bytes | None = None) -> RawRecord:
    key = key if key is not None else str(doc.get("sensor_id") or doc.get("platform_id") or "").encode()
    return RawRecord(topic, 0, offset, timestamp_ms, key, encode_pl(doc, schema_id))


def de_record(topic: str, doc: dict[str, Any] | bytes, *, offset: int = 0,
              timestamp_ms: int = T0_MS + 1000, key: bytes | None = None) -> RawRecord:
    value = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    if key is None and isinstance(doc, dict):
        key = str(doc.get("sensor") or doc.get("platform") or "").encode()
    return RawRecord(topic, 0, offset, timestamp_ms, key, value)


# name → (topic, schema id or None for DE JSON, document)
VALID_DOCS: dict[str, tuple[str, int | None, dict[str, Any]]] = {
    "pl_radar": ("pl.radar.plots", 101, {
        "sensor_id": "PL-R1", "scan_id": 7, "time": EVENT_US, "range_m": 3000.0, "azimuth_deg": 270.0,
        "doppler_mps": -1.5, "rcs_dbsm": 3.0}),
    "pl_camera": ("pl.camera.detections", 102, {
        "sensor_id": "PL-C1", "time": EVENT_US, "object_id": "PL-C1-00042", "bearing_deg": 250.0,
        "range_m": 1500.0, "object_class": "PERSON", "confidence": 0.75}),
    "pl_uav": ("pl.uav.detections", 103, {
        "platform_id": "PL-U1", "time": EVENT_US, "lat": 52.275, "lon": 14.57, "alt_m": None,
        "object_class": "VEHICLE", "confidence": 0.5}),
    "pl_anpr_v1": ("pl.anpr.reads", 104, {
        "sensor_id": "PL-ANPR-STADT-E", "time": EVENT_US, "plate": "lu 14958", "country": "D",
        "confidence": 0.875, "direction": "IN", "lane": 1}),
    "pl_anpr_v2": ("pl.anpr.reads", 114, {
        "sensor_id": "PL-ANPR-A12-E", "time": EVENT_US, "plate": "WX-1234A", "country": "PL",
        "confidence": 0.5, "direction": "OUT", "lane": 2, "vehicle_class": "TRUCK", "image_ref": "img/1.jpg"}),
    "de_radar": ("de.radar.tracks", None, {
        "schema": "de.bpol.radar.track/1", "sensor": "DE-R1", "track": "T0260", "ts": EVENT_DE_TS,
        "pos": {"e": 468715.5, "n": 5792432.4}, "speed_kmh": 36.0, "course_deg": 90.0, "status": "confirmed",
        "quality": 0.8}),
    "de_camera": ("de.camera.detections", None, {
        "schema": "de.bpol.camera.detection/1", "sensor": "DE-C1", "ts": EVENT_DE_TS, "obj": "DE-C1-00001",
        "pos": {"e": 468706.6, "n": 5792423.6}, "sigma_m": 12.0, "cls": "person", "score": 0.875}),
    "de_uav": ("de.uav.detections", None, {
        "schema": "de.bpol.uav.detection/1", "platform": "DE-U1", "ts": EVENT_DE_TS, "lat": 52.445,
        "lon": 14.52, "alt_m": 40.0, "cls": "drone", "score": 0.625}),
    "de_anpr": ("de.anpr.reads", None, {
        "schema": "de.bpol.anpr.read/1", "sensor": "DE-ANPR-STADT-W", "ts": EVENT_DE_TS, "plate": "M-QQ 402",
        "nat": "DE", "conf": 74.5, "dir": "entry", "lane": 2}),
}


def valid_doc(name: str) -> dict[str, Any]:
    """A fresh copy of the named valid document (mutate freely)."""
    return copy.deepcopy(VALID_DOCS[name][2])


def record_of(name: str, doc: dict[str, Any] | None = None, **kwargs) -> RawRecord:
    """The wire record of feed `name` holding `doc` (default: its valid document)."""
    topic, schema_id, default = VALID_DOCS[name]
    doc = copy.deepcopy(default) if doc is None else doc
    if schema_id is None:
        return de_record(topic, doc, **kwargs)
    return pl_record(topic, doc, schema_id, **kwargs)


def valid_records() -> dict[str, RawRecord]:
    return {name: record_of(name) for name in VALID_DOCS}
