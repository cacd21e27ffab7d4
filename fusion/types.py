"""What fusion hands out: incidents (the ICD's incident contract) and track reports."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import attrs

INCIDENT_TYPES = ("border_crossing", "drone_crossing", "hotlist_vehicle", "loitering")


def iso_utc(time_us: int) -> str:
    """UTC microseconds since the epoch -> ISO-8601 with microseconds and `Z`."""
    seconds, micros = divmod(int(time_us), 1_000_000)
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{micros:06d}Z"


def _sorted_tuple(value) -> tuple[str, ...]:
    return tuple(sorted(set(value)))


@attrs.frozen(slots=True)
class Incident:
    """One incident, or a later update of it (same `incident_id`, higher `seq`)."""

    incident_id: str
    type: str = attrs.field(validator=attrs.validators.in_(INCIDENT_TYPES))
    sector: str = attrs.field(validator=attrs.validators.min_len(1))
    time_us: int
    lat: float
    lon: float
    track_id: str | None
    sources: tuple[str, ...] = attrs.field(converter=_sorted_tuple)
    severity: str = "medium"
    summary: str = ""
    cls: str | None = None
    plate: str | None = None
    country: str | None = None
    seq: int = 1
    # Broker time of the newest input record consumed when this line was decided (set by the pipeline).
    decided_at_us: int | None = None
    status: str = attrs.field(default="active", validator=attrs.validators.in_(("active", "withdrawn")))

    @property
    def time(self) -> str:
        return iso_utc(self.time_us)

    def to_json_dict(self) -> dict[str, Any]:
        """The ICD contract fields first, then the extras; JSON-ready."""
        doc: dict[str, Any] = {
            "incident_id": self.incident_id,
            "type": self.type,
            "sector": self.sector,
            "time": self.time,
            "lat": round(self.lat, 7),
            "lon": round(self.lon, 7),
            "track_id": self.track_id,
            "sources": list(self.sources),
            "severity": self.severity,
            "summary": self.summary,
            "seq": self.seq,
        }
        if self.cls is not None:
            doc["class"] = self.cls
        if self.plate is not None:
            doc["plate"] = self.plate
            doc["country"] = self.country
        if self.decided_at_us is not None:
            doc["decided_at"] = iso_utc(self.decided_at_us)
        if self.status != "active":
            doc["status"] = self.status
        return doc


@attrs.frozen(slots=True)
class TrackReport:
    """One confirmed track's state after an update (what `borderfuse replay --tracks` writes)."""

    track_id: str
    time_us: int
    lat: float
    lon: float
    x: float
    y: float
    vx: float
    vy: float
    sigma_m: float
    cls: str
    sources: tuple[str, ...]

    def to_json_dict(self) -> dict[str, Any]:
        return {"track_id": self.track_id, "time": iso_utc(self.time_us), "lat": round(self.lat, 7),
                "lon": round(self.lon, 7), "x": round(self.x, 2), "y": round(self.y, 2), "vx": round(self.vx, 3),
                "vy": round(self.vy, 3), "sigma_m": round(self.sigma_m, 2), "class": self.cls,
                "sources": list(self.sources)}
