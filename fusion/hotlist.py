"""The current hotlist and ANPR passages.

The hotlist is kept from `shared.hotlist` updates (set, change, delete by null value), keyed
`<country alpha-2>:<plate pseudonym>` exactly as the decoded ANPR reads are (the same keyed HMAC of
the normalised plate, borderfuse.privacy.plates), so spellings ("LU 14958", "lu-14958") and Vienna
signs (D) already agree and a read is matched without its plate in clear. A hit's incident carries
the hotlist entry's own plate. A passage is the reads of one
plate, country and direction no more than `passage_window_s` apart: however many lane cameras
on both sides read it, it is one incident; a later read updates that incident (same id, higher
seq) only when it adds a sensor.
"""
from __future__ import annotations

import attrs

from borderfuse.fusion.rules import HotlistRule
from borderfuse.sensors.base import Observation
from borderfuse.privacy.plates import normalise_plate


@attrs.define(slots=True)
class Passage:
    incident_id: str
    first_us: int
    last_us: int
    direction: str | None
    sources: set
    track_id: str | None
    seq: int = 1
    first_xy: tuple[float, float] | None = None


@attrs.frozen(slots=True)
class PassageEvent:
    passage: Passage
    read: Observation
    reason: str
    new: bool
    plate: str = ""      # the hotlist entry's plate, normalised (the read itself holds only a pseudonym)


class HotlistMatcher:
    def __init__(self, rule: HotlistRule):
        self.rule = rule
        self.entries: dict[str, object] = {}
        self._open: dict[str, Passage] = {}

    def apply(self, update) -> None:
        """A `sensors.hotlist.HotlistUpdate`: set or (entry None) delete."""
        if update.entry is None:
            self.entries.pop(update.key, None)
        else:
            self.entries[update.key] = update.entry

    def rekey(self, pseudonym) -> None:
        """Key every entry again with `pseudonym(plate) -> str` (after a restore under a rotated plate key:
        entries keep their listed plate, so they follow the new key). Open passages follow their entry;
        a passage whose entry is gone (nothing to derive its new key from) ends."""
        renamed = {key: f"{key.partition(':')[0]}:{pseudonym(entry.plate_as_listed)}"
                   for key, entry in self.entries.items()}
        self.entries = {renamed[key]: entry for key, entry in self.entries.items()}
        self._open = {renamed[key]: passage for key, passage in self._open.items() if key in renamed}

    def read(self, obs: Observation, track_id: str | None) -> PassageEvent | None:
        """Judge one ANPR read; an event when it opens a passage or adds a sensor to one."""
        if not obs.plate or not obs.country:
            return None
        key = f"{obs.country}:{obs.plate}"
        entry = self.entries.get(key)
        passage = self._open.get(key)
        window = int(self.rule.passage_window_s * 1e6)
        if passage is not None and (obs.time_us - passage.last_us > window or passage.direction != obs.direction):
            passage = None
        if passage is None:
            if entry is None:
                return None
            passage = Passage(f"hotlist_vehicle-{key.replace(':', '-')}-{obs.time_us}", obs.time_us, obs.time_us,
                              obs.direction, {obs.sensor_id}, track_id)
            self._open[key] = passage
            return PassageEvent(passage, obs, getattr(entry, "reason", ""), True, _plate(entry))
        passage.last_us = max(passage.last_us, obs.time_us)
        if passage.track_id is None:
            passage.track_id = track_id
        if obs.sensor_id in passage.sources:
            return None
        passage.sources.add(obs.sensor_id)
        passage.seq += 1
        return PassageEvent(passage, obs, getattr(entry, "reason", ""), False, _plate(entry))


def _plate(entry) -> str:
    return normalise_plate(getattr(entry, "plate_as_listed", "") or "")
