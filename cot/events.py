"""Incidents and track updates as Cursor-on-Target (CoT 2.0) XML events. Pure: no I/O, no clock
(the caller passes `now_us`).

An incident is a geofence-breach alarm (`b-a-g`) at the incident's place, uid `borderfuse-<id>`, so
a later update (higher seq, withdrawn) replaces it on the TAK map; a track is an atom of unknown
affiliation typed by its class. `start` is the event time, `time` the send time, `stale` a few
minutes (incidents) or seconds (tracks) after the send time: TAK clients drop stale events.
"""
from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from typing import Any, Mapping

from borderfuse.fusion.types import iso_utc

INCIDENT_TYPE = "b-a-g"          # alarm: geofence breached
TRACK_TYPES = {                  # atoms, affiliation unknown (u), by class
    "person": "a-u-G-U-C-I",
    "vehicle": "a-u-G-E-V-C",
    "drone": "a-u-A-M-F-Q",
    "boat": "a-u-S",
}
DEFAULT_TRACK_TYPE = "a-u-G"
INCIDENT_STALE_S = 600
TRACK_STALE_S = 30
UNKNOWN_HEIGHT = "9999999.0"     # CoT's "unknown" for hae / ce / le
UID_PREFIX = "borderfuse-"


class CotError(ValueError):
    """An incident or track lacks what a CoT event needs; the message names it."""


def _event(uid: str, cot_type: str, lat: float, lon: float, start_us: int, now_us: int, stale_s: float,
           ce_m: float | None = None) -> ET.Element:
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise CotError(f"{uid}: position {lat}, {lon} is not a WGS84 lat/lon")
    event = ET.Element("event", version="2.0", uid=uid, type=cot_type, how="m-f", time=iso_utc(now_us),
                       start=iso_utc(start_us), stale=iso_utc(now_us + int(stale_s * 1_000_000)))
    ET.SubElement(event, "point", lat=f"{lat:.7f}", lon=f"{lon:.7f}", hae=UNKNOWN_HEIGHT,
                  ce=UNKNOWN_HEIGHT if ce_m is None else f"{ce_m:.1f}", le=UNKNOWN_HEIGHT)
    return event


def _time_us(doc: Mapping[str, Any], what: str) -> int:
    if doc.get("time_us") is None:
        raise CotError(f"{what} has no time_us")
    return int(doc["time_us"])


def incident_event(doc: Mapping[str, Any], now_us: int, stale_s: float = INCIDENT_STALE_S) -> bytes:
    """One incident (the JSON form decode_incident gives) as a CoT alarm event."""
    try:
        incident_id, lat, lon = str(doc["incident_id"]), float(doc["lat"]), float(doc["lon"])
        kind, sector = str(doc["type"]), str(doc["sector"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CotError(f"incident {doc.get('incident_id')!r} lacks {exc}") from exc
    event = _event(UID_PREFIX + incident_id, INCIDENT_TYPE, lat, lon, _time_us(doc, f"incident {incident_id}"),
                   now_us, stale_s)
    detail = ET.SubElement(event, "detail")
    ET.SubElement(detail, "contact", callsign=f"{sector} {kind}")
    sources = ", ".join(doc.get("sources") or ())
    withdrawn = doc.get("status") == "withdrawn" or bool(doc.get("withdrawn"))
    remarks = ET.SubElement(detail, "remarks")
    remarks.text = (f"{doc.get('severity', '')} {kind} in {sector}: {doc.get('summary', '')} "
                    f"[{sources}]{' (withdrawn)' if withdrawn else ''}").strip()
    attributes = {"incident_id": incident_id, "type": kind, "sector": sector, "severity": str(doc.get("severity", "")),
                  "seq": str(doc.get("seq", 1)), "event_time": iso_utc(_time_us(doc, incident_id))}
    for key in ("class", "track_id", "plate", "country"):
        # a plate (and its country) only with a hotlist hit, the lawful reason to show it
        if doc.get(key) is not None and (key not in ("plate", "country") or kind == "hotlist_vehicle"):
            attributes[key] = str(doc[key])
    if withdrawn:
        attributes["withdrawn"] = "true"
    ET.SubElement(detail, "borderfuse", attributes)
    return ET.tostring(event, encoding="utf-8", xml_declaration=False)


def track_event(doc: Mapping[str, Any], now_us: int, stale_s: float = TRACK_STALE_S) -> bytes:
    """One confirmed track update (a tracks.<sector> record) as a CoT atom with course and speed."""
    try:
        track_id, lat, lon = str(doc["track_id"]), float(doc["lat"]), float(doc["lon"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CotError(f"track {doc.get('track_id')!r} lacks {exc}") from exc
    cls = str(doc.get("class") or "unknown")
    event = _event(UID_PREFIX + track_id, TRACK_TYPES.get(cls, DEFAULT_TRACK_TYPE), lat, lon,
                   _time_us(doc, f"track {track_id}"), now_us, stale_s, ce_m=doc.get("sigma_m"))
    detail = ET.SubElement(event, "detail")
    ET.SubElement(detail, "contact", callsign=f"{track_id} {cls}")
    vx, vy = float(doc.get("vx") or 0.0), float(doc.get("vy") or 0.0)
    course = (math.degrees(math.atan2(vx, vy)) + 360.0) % 360.0  # vx east, vy north (grid ~ true here)
    ET.SubElement(detail, "track", course=f"{course:.1f}", speed=f"{math.hypot(vx, vy):.2f}")
    ET.SubElement(detail, "borderfuse", {"track_id": track_id, "class": cls, "sector": str(doc.get("sector", "")),
                                         "sources": ",".join(doc.get("sources") or ())})
    return ET.tostring(event, encoding="utf-8", xml_declaration=False)
