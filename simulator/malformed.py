"""Malformed and impossible records of the kinds the ICD says occur, each one a dead letter.

`make(kind, ...)` builds a plausible record of a topic the kind applies to, then breaks it in
exactly that way. The key is always a real sensor id of the topic (the value is what is wrong).
"""
from __future__ import annotations

import json

import numpy as np

from borderfuse.geo.geography import Geography
from borderfuse.simulator.encode import Encoder, de_times, frame

PL_TOPICS = ("pl.radar.plots", "pl.camera.detections", "pl.uav.detections", "pl.anpr.reads")
DE_TOPICS = ("de.radar.tracks", "de.camera.detections", "de.uav.detections", "de.anpr.reads")
# the topics each kind can occur on
KIND_TOPICS = {
    "truncated_avro": PL_TOPICS,
    "bad_framing": PL_TOPICS,
    "unknown_schema_id": PL_TOPICS,
    "unknown_schema_version": DE_TOPICS,
    "not_utf8": DE_TOPICS,
    "invalid_json": DE_TOPICS,
    "missing_field": DE_TOPICS,
    "nan": ("pl.radar.plots", "pl.uav.detections", "de.uav.detections", "de.radar.tracks"),
    "negative_range": ("pl.radar.plots", "pl.camera.detections"),
    "latitude_91": ("pl.uav.detections", "de.uav.detections"),
    "swapped_axes": ("de.radar.tracks", "de.camera.detections"),
    "unknown_sensor": PL_TOPICS + DE_TOPICS,
    "bad_timestamp": PL_TOPICS + DE_TOPICS,
    "oversized_field": ("pl.anpr.reads", "de.anpr.reads", "de.camera.detections", "pl.camera.detections"),
    "empty_value": PL_TOPICS + DE_TOPICS,
}
_AVRO_KIND = {"pl.radar.plots": "radar", "pl.camera.detections": "camera", "pl.uav.detections": "uav",
              "pl.anpr.reads": "anpr_v1"}


def _pl_template(topic: str, sensor, us: int) -> dict:
    lon, lat = sensor.lon + 0.01, sensor.lat + 0.005
    return {
        "pl.radar.plots": {"sensor_id": sensor.id, "scan_id": 1, "time": us, "range_m": 1500.0, "azimuth_deg": 45.0,
                           "doppler_mps": 0.5, "rcs_dbsm": -2.0},
        "pl.camera.detections": {"sensor_id": sensor.id, "time": us, "object_id": f"{sensor.id}-99999",
                                 "bearing_deg": 45.0, "range_m": 1500.0, "object_class": "PERSON",
                                 "confidence": 0.8},
        "pl.uav.detections": {"platform_id": sensor.id, "time": us, "lat": lat, "lon": lon, "alt_m": None,
                              "object_class": "PERSON", "confidence": 0.9},
        "pl.anpr.reads": {"sensor_id": sensor.id, "time": us, "plate": "LU 12345", "country": "PL",
                          "confidence": 0.9, "direction": "IN", "lane": 2},
    }[topic]


def _de_template(topic: str, sensor, us: int) -> dict:
    ts = de_times(np.array([us]))[0]
    e, n = sensor.x + 700.0, sensor.y + 500.0
    return {
        "de.radar.tracks": {"schema": "de.bpol.radar.track/1", "sensor": sensor.id, "track": "T0999", "ts": ts,
                            "pos": {"e": e, "n": n}, "speed_kmh": 4.0, "course_deg": 90.0, "status": "confirmed",
                            "quality": 1.0},
        "de.camera.detections": {"schema": "de.bpol.camera.detection/1", "sensor": sensor.id, "ts": ts,
                                 "obj": f"{sensor.id}-99999", "pos": {"e": e, "n": n}, "sigma_m": 20.0,
                                 "cls": "person", "score": 0.9},
        "de.uav.detections": {"schema": "de.bpol.uav.detection/1", "platform": sensor.id, "ts": ts,
                              "lat": sensor.lat + 0.005, "lon": sensor.lon + 0.01, "alt_m": None, "cls": "person",
                              "score": 0.9},
        "de.anpr.reads": {"schema": "de.bpol.anpr.read/1", "sensor": sensor.id, "ts": ts, "plate": "B-AB 123",
                          "nat": "DE", "conf": 90.0, "dir": "entry", "lane": 1},
    }[topic]


def _json(doc: dict) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def make(kind: str, rng: np.random.Generator, geo: Geography, encoder: Encoder, us: int) -> tuple[str, bytes, bytes]:
    """(topic, key, value) of one malformed record of `kind` with event time `us` (µs UTC)."""
    topics = KIND_TOPICS[kind]
    topic = topics[rng.integers(len(topics))]
    sensors = sorted(geo.sensors_on_topic(topic).values(), key=lambda s: s.id)
    sensor = sensors[rng.integers(len(sensors))]
    key = sensor.id.encode()
    if topic.startswith("pl."):
        avro_kind = _AVRO_KIND[topic]
        doc = _pl_template(topic, sensor, us)
        id_field = "platform_id" if topic == "pl.uav.detections" else "sensor_id"
        value = None
        if kind == "truncated_avro":
            good = encoder.avro(avro_kind, doc)
            value = good[: int(rng.integers(6, len(good)))]
        elif kind == "bad_framing":
            value = b"\x07" + encoder.avro(avro_kind, doc)[1:]
        elif kind == "unknown_schema_id":
            value = frame(999, encoder.avro(avro_kind, doc)[5:])
        elif kind == "empty_value":
            value = b""
        else:
            doc.update({
                "nan": {"range_m": float("nan")} if "range_m" in doc else {"lat": float("nan")},
                "negative_range": {"range_m": -50.0},
                "latitude_91": {"lat": 91.5},
                "unknown_sensor": {id_field: sensor.id[:-1] + "X9"},
                "bad_timestamp": {"time": 0},
                "oversized_field": {"plate": "X" * 300} if "plate" in doc else {"object_id": "O" * 5000},
            }[kind])
            value = encoder.avro(avro_kind, doc)
        return topic, key, value
    doc = _de_template(topic, sensor, us)
    id_field = "platform" if topic == "de.uav.detections" else "sensor"
    if kind == "not_utf8":
        return topic, key, b"\xff\xfe\x00garbage"
    if kind == "invalid_json":
        text = _json(doc)
        return topic, key, text[: int(rng.integers(10, len(text) - 2))]
    if kind == "unknown_schema_version":
        doc["schema"] = doc["schema"][:-1] + "9"
    elif kind == "missing_field":
        doc.pop({"de.radar.tracks": "pos", "de.camera.detections": "pos", "de.uav.detections": "lat",
                 "de.anpr.reads": "plate"}[topic])
    elif kind == "nan":
        if "pos" in doc:
            doc["pos"]["e"] = float("nan")
        else:
            doc["lat"] = float("nan")
    elif kind == "latitude_91":
        doc["lat"] = 91.5
    elif kind == "swapped_axes":
        doc["pos"] = {"e": doc["pos"]["n"], "n": doc["pos"]["e"]}
    elif kind == "unknown_sensor":
        doc[id_field] = sensor.id[:-1] + "X9"
    elif kind == "bad_timestamp":
        doc["ts"] = "yesterday"
    elif kind == "oversized_field":
        doc["plate" if "plate" in doc else "obj"] = "X" * 5000
    elif kind == "empty_value":
        doc[id_field] = ""
    return topic, key, _json(doc)
