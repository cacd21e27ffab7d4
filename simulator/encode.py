"""ICD wire encoders: PL Avro with Confluent framing, DE JSON, shared.hotlist JSON.

PL: byte 0x00, the schema id (4 bytes big-endian, from sensors/schemas/pl/registry.json), then the
Avro binary body (fastavro `schemaless_writer`, schemas parsed once). Times are timestamp-micros
UTC. DE: compact UTF-8 JSON, times ISO-8601 with milliseconds and the Europe/Berlin offset of
the moment (+01:00 in winter), positions to 0.1 m. Field values come from our own models (ids,
plates of letters, digits, spaces and dashes), so the DE templates need no JSON escaping.
"""
from __future__ import annotations

import io
import json
import struct
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import fastavro
import numpy as np

from borderfuse.simulator.layout import VIENNA_SIGN
from borderfuse.simulator.scenario import SimulatorError
from borderfuse.simulator.sensors import Feed
from borderfuse.simulator.snapshot import CLASS_CODES

DE_ZONE = ZoneInfo("Europe/Berlin")
PL_CLASSES = tuple(c.upper() for c in CLASS_CODES)
PL_SCHEMA_FILES = {"radar": "radar_plot.v1.avsc", "camera": "camera_detection.v1.avsc",
                   "uav": "uav_detection.v1.avsc", "anpr_v1": "anpr_read.v1.avsc", "anpr_v2": "anpr_read.v2.avsc"}


def frame(schema_id: int, body: bytes) -> bytes:
    return b"\x00" + struct.pack(">I", schema_id) + body


def time_us(t0_us: int, t: np.ndarray) -> np.ndarray:
    return t0_us + np.round(np.asarray(t, float) * 1e6).astype(np.int64)


def de_offset(us: int) -> str:
    off = datetime.fromtimestamp(us / 1e6, timezone.utc).astimezone(DE_ZONE).utcoffset()
    minutes = int(off.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def de_times(us: np.ndarray) -> list[str]:
    """ISO-8601 local time with milliseconds and the local UTC offset, e.g. 2026-11-21T23:00:34.387+01:00."""
    us = np.asarray(us, np.int64)
    if us.size == 0:
        return []
    first, last = de_offset(int(us.min())), de_offset(int(us.max()))
    offsets = [first] * us.size if first == last else [de_offset(int(u)) for u in us]  # DST change inside
    shift = np.array([(1 if o[0] == "+" else -1) * (int(o[1:3]) * 60 + int(o[4:6])) * 60_000_000 for o in offsets])
    local = np.datetime_as_string((us + shift).astype("datetime64[us]").astype("datetime64[ms]"), unit="ms")
    return [a + b for a, b in zip(local.tolist(), offsets)]


class Encoder:
    """Turns Feeds into record values (bytes), one list per feed, in feed order."""

    def __init__(self, schemas_dir: Path | str, t0_us: int):
        self.t0_us = t0_us
        pl_dir = Path(schemas_dir) / "pl"
        try:
            registry = json.loads((pl_dir / "registry.json").read_text())["schemas"]
            by_file = {name: int(sid) for sid, name in registry.items()}
            self.ids = {kind: by_file[name] for kind, name in PL_SCHEMA_FILES.items()}
            self.schemas = {kind: fastavro.parse_schema(json.loads((pl_dir / name).read_text()))
                            for kind, name in PL_SCHEMA_FILES.items()}
        except (OSError, KeyError, ValueError, fastavro.schema.SchemaParseException) as exc:
            raise SimulatorError(f"cannot load the PL schemas from {pl_dir}: {exc!r}") from exc
        self._buf = io.BytesIO()

    def avro(self, kind: str, record: dict) -> bytes:
        buf = self._buf
        buf.seek(0)
        buf.truncate()
        fastavro.schemaless_writer(buf, self.schemas[kind], record)
        return frame(self.ids[kind], buf.getvalue())

    def encode(self, feed: Feed) -> list[bytes]:
        if len(feed) == 0:
            return []
        return getattr(self, "_" + feed.topic.replace(".", "_"))(feed, time_us(self.t0_us, feed.t))

    # --- PL ---
    def _pl_radar_plots(self, f: Feed, us: np.ndarray) -> list[bytes]:
        c = f.cols
        return [self.avro("radar", {"sensor_id": s, "scan_id": k, "time": t, "range_m": r, "azimuth_deg": a,
                                    "doppler_mps": d, "rcs_dbsm": x})
                for s, k, t, r, a, d, x in zip(f.sensor.tolist(), c["scan_id"].tolist(), us.tolist(),
                                               c["range_m"].tolist(), c["azimuth_deg"].tolist(),
                                               c["doppler_mps"].tolist(), c["rcs_dbsm"].tolist())]

    def _pl_camera_detections(self, f: Feed, us: np.ndarray) -> list[bytes]:
        c = f.cols
        return [self.avro("camera", {"sensor_id": s, "time": t, "object_id": o, "bearing_deg": b, "range_m": r,
                                     "object_class": PL_CLASSES[k], "confidence": p})
                for s, t, o, b, r, k, p in zip(f.sensor.tolist(), us.tolist(), c["object_id"].tolist(),
                                               c["bearing_deg"].tolist(), c["range_m"].tolist(), c["cls"].tolist(),
                                               c["confidence"].tolist())]

    def _pl_uav_detections(self, f: Feed, us: np.ndarray) -> list[bytes]:
        c = f.cols
        return [self.avro("uav", {"platform_id": s, "time": t, "lat": la, "lon": lo,
                                  "alt_m": None if al != al else al, "object_class": PL_CLASSES[k], "confidence": p})
                for s, t, la, lo, al, k, p in zip(f.sensor.tolist(), us.tolist(), c["lat"].tolist(),
                                                  c["lon"].tolist(), c["alt_m"].tolist(), c["cls"].tolist(),
                                                  c["confidence"].tolist())]

    def _pl_anpr_reads(self, f: Feed, us: np.ndarray) -> list[bytes]:
        c = f.cols
        out = []
        for s, t, plate, nat, toward, vc, strip, v2, p in zip(
                f.sensor.tolist(), us.tolist(), c["plate"].tolist(), c["nat"].tolist(), c["toward"].tolist(),
                c["vehicle_class"].tolist(), c["strip"].tolist(), c["v2"].tolist(), c["confidence"].tolist()):
            rec = {"sensor_id": s, "time": t, "plate": plate.replace(" ", "").replace("-", "") if strip else plate,
                   "country": VIENNA_SIGN.get(nat, nat), "confidence": p,
                   "direction": "IN" if toward == "PL" else "OUT", "lane": 2 if toward == "PL" else 1}
            if v2:
                rec.update(vehicle_class=vc, image_ref=f"s3://pl-anpr/{s}/{t // 1000}.jpg")
            out.append(self.avro("anpr_v2" if v2 else "anpr_v1", rec))
        return out

    # --- DE ---
    def _de_radar_tracks(self, f: Feed, us: np.ndarray) -> list[bytes]:
        c = f.cols
        status = ("tentative", "confirmed", "lost")
        course = np.mod(np.round(c["course_deg"], 1), 360.0)
        return [(f'{{"schema":"de.bpol.radar.track/1","sensor":"{s}","track":"T{k:04d}","ts":"{ts}",'
                 f'"pos":{{"e":{e:.1f},"n":{n:.1f}}},"speed_kmh":{v:.1f},"course_deg":{cd:.1f},'
                 f'"status":"{status[st]}","quality":{q:.1f}}}').encode()
                for s, k, ts, e, n, v, cd, st, q in zip(f.sensor.tolist(), c["track"].tolist(), de_times(us),
                                                        c["x"].tolist(), c["y"].tolist(), c["speed_kmh"].tolist(),
                                                        course.tolist(), c["status"].tolist(), c["quality"].tolist())]

    def _de_camera_detections(self, f: Feed, us: np.ndarray) -> list[bytes]:
        c = f.cols
        return [(f'{{"schema":"de.bpol.camera.detection/1","sensor":"{s}","ts":"{ts}","obj":"{o}",'
                 f'"pos":{{"e":{e:.1f},"n":{n:.1f}}},"sigma_m":{sg:.1f},"cls":"{CLASS_CODES[k]}","score":{p:.3f}}}'
                 ).encode()
                for s, ts, o, e, n, sg, k, p in zip(f.sensor.tolist(), de_times(us), c["object_id"].tolist(),
                                                    c["e"].tolist(), c["n"].tolist(), c["sigma_m"].tolist(),
                                                    c["cls"].tolist(), c["confidence"].tolist())]

    def _de_uav_detections(self, f: Feed, us: np.ndarray) -> list[bytes]:
        c = f.cols
        return [(f'{{"schema":"de.bpol.uav.detection/1","platform":"{s}","ts":"{ts}","lat":{la:.7f},'
                 f'"lon":{lo:.7f},"alt_m":{"null" if al != al else f"{al:.1f}"},"cls":"{CLASS_CODES[k]}",'
                 f'"score":{p:.3f}}}').encode()
                for s, ts, la, lo, al, k, p in zip(f.sensor.tolist(), de_times(us), c["lat"].tolist(),
                                                   c["lon"].tolist(), c["alt_m"].tolist(), c["cls"].tolist(),
                                                   c["confidence"].tolist())]

    def _de_anpr_reads(self, f: Feed, us: np.ndarray) -> list[bytes]:
        c = f.cols
        return [(f'{{"schema":"de.bpol.anpr.read/1","sensor":"{s}","ts":"{ts}","plate":"{plate}","nat":"{nat}",'
                 f'"conf":{p * 100.0 - 2.0:.1f},"dir":"{"entry" if toward == "DE" else "exit"}",'
                 f'"lane":{1 if toward == "DE" else 2}}}').encode()
                for s, ts, plate, nat, toward, p in zip(f.sensor.tolist(), de_times(us), c["plate"].tolist(),
                                                        c["nat"].tolist(), c["toward"].tolist(),
                                                        c["confidence"].tolist())]


def hotlist_record(plate: str, country_iso: str, reason: str, list_name: str, added_us: int) -> tuple[bytes, bytes]:
    """(key, value) of a shared.hotlist entry: key `<country>:<normalised plate>`."""
    normalised = "".join(ch for ch in plate.upper() if ch.isascii() and ch.isalnum())
    added = datetime.fromtimestamp(added_us / 1e6, timezone.utc).astimezone(DE_ZONE)
    value = json.dumps({"plate": plate, "country": country_iso, "reason": reason, "list": list_name,
                        "added": added.isoformat(timespec="milliseconds")}, separators=(",", ":"))
    return f"{country_iso}:{normalised}".encode(), value.encode()
