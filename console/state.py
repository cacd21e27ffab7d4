"""What a console knows: incidents (latest report each), the operators' actions on them, live tracks.

Pure state, no I/O: the Kafka feed (live) or the replay thread applies records to it; the web app
reads views of it and validates operators' requests against it. Every change is passed to the
listeners as one event (a JSON-ready dict), which the app pushes to browsers. Thread-safe: feeds
apply from their own thread while the app reads from the event loop.
"""
from __future__ import annotations

import collections
import threading
import uuid
from typing import Any, Callable, Mapping

import attrs

from borderfuse.fusion.types import iso_utc

ACTIONS = ("ack", "assign", "resolve")
STATUS_AFTER = {"ack": "acknowledged", "assign": "assigned", "resolve": "resolved"}
TRAIL_POINTS = 20
TRACK_STALE_US = 30_000_000
MAX_TEXT = 200


class ActionError(ValueError):
    """An operator's request is malformed or not allowed; `status` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def _text(body: Mapping[str, Any], key: str, required: bool) -> str | None:
    value = body.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ActionError(f"field {key!r} is required (a non-empty string)")
        return None
    if not isinstance(value, str):
        raise ActionError(f"field {key!r} must be a string, got {type(value).__name__}")
    if len(value) > MAX_TEXT:
        raise ActionError(f"field {key!r} is longer than {MAX_TEXT} characters")
    return value.strip()


@attrs.frozen(slots=True)
class Action:
    """One operator action on an incident: a record of `actions.<sector>`, keyed by incident id."""

    incident_id: str = attrs.field(validator=attrs.validators.min_len(1))
    action: str = attrs.field(validator=attrs.validators.in_(ACTIONS))
    by: str = attrs.field(validator=attrs.validators.min_len(1))
    at_us: int
    action_id: str = attrs.field(validator=attrs.validators.min_len(1))
    unit: str | None = None
    note: str | None = None
    console: str | None = None

    @classmethod
    def from_request(cls, incident_id: str, action: str, body: Any, at_us: int, console: str | None, *,
                     by: str) -> "Action":
        """Validate an API request body ({"unit"} for assign, {"note"} for resolve); `by` is the logged-in user
        (never taken from the body: the record says who really acted)."""
        if action not in ACTIONS:
            raise ActionError(f"unknown action {action!r}; one of {', '.join(ACTIONS)}", status=404)
        if not isinstance(body, dict):
            raise ActionError("the request body must be a JSON object like {} or {\"unit\": \"patrol 7\"}")
        unknown = set(body) - {"unit", "note"}
        if unknown:
            raise ActionError(f"unknown field(s) {', '.join(sorted(unknown))}; allowed: unit, note")
        return cls(incident_id, action, by, int(at_us), uuid.uuid4().hex,
                   unit=_text(body, "unit", action == "assign"), note=_text(body, "note", action == "resolve"),
                   console=console)

    @classmethod
    def from_json_dict(cls, doc: Mapping[str, Any]) -> "Action":
        try:
            return cls(str(doc["incident_id"]), str(doc["action"]), str(doc["by"]), int(doc["at_us"]),
                       str(doc["action_id"]), doc.get("unit"), doc.get("note"), doc.get("console"))
        except (KeyError, TypeError, ValueError) as exc:
            raise ActionError(f"not an action record: {exc}") from exc

    def to_json_dict(self) -> dict[str, Any]:
        doc = {"incident_id": self.incident_id, "action": self.action, "by": self.by, "at": iso_utc(self.at_us),
               "at_us": self.at_us, "action_id": self.action_id}
        for key in ("unit", "note", "console"):
            if getattr(self, key) is not None:
                doc[key] = getattr(self, key)
        return doc


def _decided_us(doc: Mapping[str, Any]) -> int | None:
    from borderfuse.ingest.incident_codec import IncidentCodecError, iso_to_time_us

    if doc.get("decided_at_us") is not None:
        return int(doc["decided_at_us"])
    try:
        return iso_to_time_us(doc["decided_at"]) if doc.get("decided_at") else None
    except IncidentCodecError:
        return None


def status_of(actions: list[dict]) -> str:
    status = "new"
    for action in actions:
        status = STATUS_AFTER.get(action["action"], status)
    return status


class ConsoleState:
    """Incidents by id (latest seq), actions by incident id, tracks by id (with short trails)."""

    def __init__(self):
        self._lock = threading.RLock()
        self.incidents: dict[str, dict] = {}       # id -> {"incident": doc, "decided_us": int, "received_us": int}
        self.actions: dict[str, list[dict]] = collections.defaultdict(list)
        self._action_ids: set[str] = set()
        self.tracks: dict[str, dict] = {}          # id -> latest track doc with "trail": [[lat, lon], ...]
        self.clock_us = 0                          # the console's "now": wall clock, or the replay's event clock
        self.listeners: list[Callable[[dict], None]] = []

    def _emit(self, event: dict) -> None:
        for listener in list(self.listeners):
            listener(event)

    # --- applying records
    def apply_incident(self, doc: Mapping[str, Any], decided_us: int | None = None) -> bool:
        """A report or an update (higher seq) of an incident; an older or repeated seq changes nothing."""
        incident_id = str(doc["incident_id"])
        with self._lock:
            current = self.incidents.get(incident_id)
            if current is not None and int(current["incident"].get("seq", 1)) >= int(doc.get("seq", 1)):
                return False
            # the first report's decision time: the incident's own decided_at (v2) when it has one
            first_decided = current["decided_us"] if current else (_decided_us(doc) or decided_us)
            self.incidents[incident_id] = {"incident": dict(doc), "decided_us": first_decided}
            entry = self._entry(incident_id)
        self._emit({"kind": "incident", "entry": entry})
        return True

    def apply_action(self, action: Action) -> bool:
        with self._lock:
            if action.action_id in self._action_ids:
                return False
            self._action_ids.add(action.action_id)
            self.actions[action.incident_id].append(action.to_json_dict())
            known = action.incident_id in self.incidents
            entry = self._entry(action.incident_id) if known else None
        if entry is not None:
            self._emit({"kind": "incident", "entry": entry})
        return True

    def apply_tracks(self, docs: list[dict]) -> None:
        """Track updates (one per track per second at most); drops tracks silent for TRACK_STALE_US."""
        if not docs:
            return
        with self._lock:
            for doc in docs:
                previous = self.tracks.get(doc["track_id"])
                trail = previous["trail"] if previous else []
                trail = (trail + [[doc["lat"], doc["lon"]]])[-TRAIL_POINTS:]
                self.tracks[doc["track_id"]] = {**doc, "trail": trail}
            newest = max(int(d["time_us"]) for d in docs)
            stale = {k: t.get("sector") for k, t in self.tracks.items() if int(t["time_us"]) < newest - TRACK_STALE_US}
            for key in stale:
                del self.tracks[key]
        # gone_sectors: for the app's per-user filter (it sends each browser "gone" of its own sectors only)
        self._emit({"kind": "tracks", "tracks": [{k: v for k, v in d.items() if k != "trail"} for d in docs],
                    "gone": list(stale), "gone_sectors": stale})

    def set_clock(self, now_us: int) -> None:
        with self._lock:
            self.clock_us = int(now_us)

    # --- views
    def _entry(self, incident_id: str) -> dict:
        held = self.incidents[incident_id]
        actions = list(self.actions.get(incident_id, ()))
        return {**held, "incident_id": incident_id, "actions": actions, "status": status_of(actions)}

    def entry(self, incident_id: str) -> dict:
        with self._lock:
            return self._entry(incident_id)

    def sector_of(self, incident_id: str) -> str | None:
        """The incident's sector (None: unknown incident)."""
        with self._lock:
            held = self.incidents.get(incident_id)
            return None if held is None else held["incident"].get("sector")

    def knows(self, incident_id: str) -> bool:
        with self._lock:
            return incident_id in self.incidents

    def status(self, incident_id: str) -> str:
        with self._lock:
            return status_of(self.actions.get(incident_id, []))

    def entries(self, sectors: set[str] | None = None) -> list[dict]:
        """Incidents with their actions, newest event time first; only `sectors` if given."""
        with self._lock:
            out = [self._entry(i) for i, held in self.incidents.items()
                   if sectors is None or held["incident"]["sector"] in sectors]
        out.sort(key=lambda e: (e["incident"].get("time_us") or 0, e["incident_id"]), reverse=True)
        return out

    def snapshot(self, sectors: set[str] | frozenset[str] | None = None) -> dict:
        """Everything a browser needs on (re)connect (only `sectors` if given)."""
        with self._lock:
            return {"kind": "snapshot", "clock_us": self.clock_us, "incidents": self.entries(sectors),
                    "tracks": [t for t in self.tracks.values() if sectors is None or t.get("sector") in sectors]}
