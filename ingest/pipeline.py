"""The one glue between records and incidents, used by `borderfuse replay` and by the live service.

    records ─▶ duplicate filter ─▶ decode (dead letters out) ─▶ reorder buffer (per-source
    watermark) ─▶ FusionEngine (tracks, rules) ─▶ incidents

No Kafka and no clock inside: the same records in the same order give the same output, byte for
byte. The live service wraps this object around a consumer; after a crash it either restores a
`snapshot()` or rebuilds state by re-feeding a window of records (tracks and rule state then
warm up from that window; incident ids are derived from track ids, which restart from the
snapshot's counter, so restore the snapshot where one exists).
"""
from __future__ import annotations

import collections
import pickle
from pathlib import Path

import attrs

from borderfuse.fusion.engine import FusionEngine, HotlistItem
from borderfuse.fusion.reorder import ReorderBuffer
from borderfuse.fusion.rules import RuleSet, load_rules
from borderfuse.fusion.types import Incident
from borderfuse.sensors.topics import HOTLIST_TOPIC
from borderfuse.sensors.base import DecodeError, Observation, RawRecord
from borderfuse.sensors.decode import RecordDecoder
from borderfuse.sensors.dedup import DuplicateFilter
from borderfuse.sensors.hotlist import decode_hotlist

SNAPSHOT_VERSION = 1


@attrs.frozen(slots=True)
class BatchResult:
    incidents: list[Incident]
    dead_letters: list[tuple[RawRecord, DecodeError]]
    duplicates: int = 0
    late: int = 0
    records: int = 0


@attrs.define(slots=True)
class PipelineStats:
    records: collections.Counter = attrs.field(factory=collections.Counter)        # per topic
    dead_letters: collections.Counter = attrs.field(factory=collections.Counter)   # (topic, reason)
    duplicates: collections.Counter = attrs.field(factory=collections.Counter)     # per topic
    late: collections.Counter = attrs.field(factory=collections.Counter)           # per what was done
    incidents: collections.Counter = attrs.field(factory=collections.Counter)      # (type, sector), first report only
    incident_updates: int = 0
    observations: int = 0

    def as_dict(self) -> dict:
        return {"records": dict(sorted(self.records.items())),
                "dead_letters": {f"{t}/{r}": n for (t, r), n in sorted(self.dead_letters.items())},
                "duplicates": dict(sorted(self.duplicates.items())),
                "late": dict(sorted(self.late.items())),
                "incidents": {f"{t}/{s}": n for (t, s), n in sorted(self.incidents.items())},
                "incident_updates": self.incident_updates, "observations": self.observations}


class Pipeline:
    def __init__(self, geography, rules: RuleSet, schemas_dir: Path | str, *, allowed_lateness_s: float = 12.0,
                 duplicate_window_s: float = 60.0, idle_source_s: float = 30.0, collect_tracks: bool = False):
        self.geography = geography
        self.rules = rules
        self.decoder = RecordDecoder(geography, schemas_dir)
        self.duplicates = DuplicateFilter(duplicate_window_s)
        self.reorder = ReorderBuffer.from_seconds(allowed_lateness_s, idle_source_s)
        self.engine = FusionEngine(geography, rules, collect_tracks=collect_tracks)
        self.stats = PipelineStats()

    @classmethod
    def from_settings(cls, settings, rules_file: Path | str | None = None, collect_tracks: bool = False) -> "Pipeline":
        from borderfuse.geo.geography import Geography
        geography = Geography.load(settings.icd.geo_dir)
        rules = load_rules(rules_file if rules_file is not None else settings.fusion.rules_file)
        return cls(geography, rules, settings.icd.schemas_dir,
                   allowed_lateness_s=settings.fusion.allowed_lateness_s,
                   duplicate_window_s=settings.fusion.duplicate_window_s, collect_tracks=collect_tracks)

    # --- input ---
    def process_batch(self, records: list[RawRecord]) -> BatchResult:
        stats = self.stats
        fresh, dead, dup = [], [], 0
        for record in records:
            stats.records[record.topic] += 1
            if self.duplicates.is_duplicate(record):
                stats.duplicates[record.topic] += 1
                dup += 1
                continue
            if record.topic == HOTLIST_TOPIC:
                try:
                    update = decode_hotlist(record)
                except DecodeError as exc:
                    dead.append((record, exc))
                    continue
                # the hotlist has no event time: it takes effect at its broker time, in event order
                item = HotlistItem(record.timestamp_ms * 1000, update)
                if not self.reorder.push(None, item.time_us, ("", record.topic, record.partition, record.offset), item):
                    self.engine.hotlist.apply(update)
                    stats.late["hotlist_applied"] += 1
                continue
            fresh.append(record)
        observations, decode_dead = self.decoder.decode_batch(fresh)
        dead += decode_dead
        for record, exc in dead:
            stats.dead_letters[(record.topic, exc.kind)] += 1
        stats.observations += len(observations)
        incidents: list[Incident] = []
        late = 0
        for obs in observations:
            key = (obs.sensor_id, obs.topic, obs.partition, obs.offset)
            if not self.reorder.push((obs.topic, obs.partition), obs.time_us, key, obs):
                late += 1
                what, found = self.engine.late(obs)
                stats.late[what] += 1
                incidents += found
        incidents += self.engine.process(self.reorder.release(), self.reorder.watermark_us)
        self._count(incidents)
        return BatchResult(incidents, dead, dup, late, len(records))

    def flush(self, end_of_input: bool = True) -> BatchResult:
        """Release everything held; processing may continue afterwards.

        `end_of_input` (replay): also decide every crossing still waiting for its track's class.
        The live service, flushing because the feed went quiet, passes False: nothing is decided
        before its time, later records carry on from here.
        """
        items = self.reorder.flush()
        incidents = self.engine.process(items, self.reorder.watermark_us) + self.engine.flush(final=end_of_input)
        self._count(incidents)
        return BatchResult(incidents, [], 0, 0, 0)

    def _count(self, incidents: list[Incident]) -> None:
        for inc in incidents:
            if inc.seq == 1:
                self.stats.incidents[(inc.type, inc.sector)] += 1
            else:
                self.stats.incident_updates += 1

    # --- state ---
    @property
    def active_tracks(self) -> int:
        return self.engine.tracker.confirmed_count()

    def take_track_reports(self) -> list:
        reports, self.engine.track_reports = self.engine.track_reports, []
        return reports

    def snapshot(self) -> bytes:
        """Everything needed to carry on exactly where this pipeline is (trusted storage only)."""
        detectors = (self.engine.crossings, self.engine.loitering)
        for d in detectors:          # the geography is configuration, rebuilt from the ICD files
            d.geography = None
        try:
            state = (SNAPSHOT_VERSION, self.duplicates, self.reorder, self.stats, _engine_state(self.engine))
            return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
        finally:
            for d in detectors:
                d.geography = self.geography

    def restore(self, data: bytes) -> None:
        version, self.duplicates, self.reorder, self.stats, engine_state = pickle.loads(data)
        if version != SNAPSHOT_VERSION:
            raise ValueError(f"pipeline snapshot version {version} is not {SNAPSHOT_VERSION}")
        self.engine.__dict__.update(engine_state)
        self.engine.crossings.geography = self.engine.loitering.geography = self.geography


def _engine_state(engine: FusionEngine) -> dict:
    state = dict(engine.__dict__)
    state.pop("geography")
    state.pop("rules")
    return state
