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
import heapq
from pathlib import Path

import attrs

from borderfuse.fusion.engine import SLICE_US, FusionEngine, HotlistItem
from borderfuse.fusion.reorder import ReorderBuffer
from borderfuse.fusion.rules import RuleSet, load_rules
from borderfuse.fusion.state_codec import (DUPLICATES, ENGINE, INT, ITEM, ORDER_KEY, REORDER, STR, Map, Obj, Opt,
                                           Record, Seq, StateCodecError, Tup, decode_engine_into, encode_engine,
                                           restore_into, schema_digest)
from borderfuse.fusion.types import Incident
from borderfuse.sensors.topics import HOTLIST_TOPIC
from borderfuse.ingest.state_envelope import KIND_PIPELINE, StateFormatError, open_sealed, seal
from borderfuse.sensors.base import DecodeError, Observation, RawRecord
from borderfuse.sensors.decode import RecordDecoder
from borderfuse.sensors.dedup import DuplicateFilter
from borderfuse.sensors.hotlist import decode_hotlist

# 2: a pickle (refused since 3); 3: msgpack with explicit fields (fusion.state_codec).
SNAPSHOT_VERSION = 3


@attrs.frozen(slots=True)
class BatchResult:
    incidents: list[Incident]
    dead_letters: list[tuple[RawRecord, DecodeError]]
    duplicates: int = 0
    late: int = 0
    records: int = 0


@attrs.frozen(slots=True)
class DecodedBatch:
    """A batch of records after the duplicate filter and decoding: what fusion consumes.

    The seam between decoding and fusion (`Pipeline.decode` / `Pipeline.process_decoded`), e.g. for
    a cache of decoded captures. `entries` are (arrival ms, order key, Observation | HotlistItem) in
    arrival order; `topic_counts`/`duplicate_counts` are per topic.
    """

    records: int
    topic_counts: collections.Counter
    duplicate_counts: collections.Counter
    entries: list
    dead_letters: list


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
    def __init__(self, geography, rules: RuleSet, schemas_dir: Path | str, *, plates, allowed_lateness_s: float = 12.0,
                 duplicate_window_s: float = 60.0, idle_source_s: float = 30.0, collect_tracks: bool = False,
                 arrival_settle_ms: int = 1000):
        self.geography = geography
        self.rules = rules
        # plates (privacy.plates.PlatePseudonymiser): reads and hotlist keys are pseudonymised at decoding
        self.plates = plates
        self.decoder = RecordDecoder(geography, schemas_dir, plates)
        self.duplicates = DuplicateFilter(duplicate_window_s)
        self.reorder = ReorderBuffer.from_seconds(allowed_lateness_s, idle_source_s)
        self.engine = FusionEngine(geography, rules, collect_tracks=collect_tracks)
        self.stats = PipelineStats()
        self._next_slice_us = -(1 << 62)  # the engine runs when the watermark reaches the next slice
        self.arrival_settle_ms = arrival_settle_ms
        self._settling: list = []          # heap of entries waiting for arrival_settle_ms of newer arrivals
        self._newest_arrival_ms: int | None = None

    @classmethod
    def from_settings(cls, settings, rules_file: Path | str | None = None, collect_tracks: bool = False,
                      rules: RuleSet | None = None) -> "Pipeline":
        """`rules` (already loaded) wins over `rules_file`, which wins over settings.fusion.rules_file."""
        from borderfuse.geo.geography import Geography
        geography = Geography.load(settings.icd.geo_dir)
        if rules is None:
            rules = load_rules(rules_file if rules_file is not None else settings.fusion.rules_file)
        from borderfuse.ingest.plate_key import plate_pseudonymiser
        return cls(geography, rules, settings.icd.schemas_dir, plates=plate_pseudonymiser(settings),
                   allowed_lateness_s=settings.fusion.allowed_lateness_s,
                   duplicate_window_s=settings.fusion.duplicate_window_s, collect_tracks=collect_tracks)

    # --- input ---
    def process_batch(self, records: list[RawRecord]) -> BatchResult:
        """Records in arrival order -> incidents and dead letters (= process_decoded(decode(records)))."""
        return self.process_decoded(self.decode(records))

    def decode(self, records: list[RawRecord]) -> DecodedBatch:
        """Duplicate filter and decoding of a batch; no fusion state is touched but the duplicate filter."""
        topic_counts: collections.Counter = collections.Counter()
        duplicate_counts: collections.Counter = collections.Counter()
        fresh, dead, hotlist = [], [], []
        arrival: dict[tuple[str, int, int], tuple[int, int]] = {}   # (topic, partition, offset) -> (index, ms)
        for index, record in enumerate(records):
            topic_counts[record.topic] += 1
            if self.duplicates.is_duplicate(record):
                duplicate_counts[record.topic] += 1
                continue
            if record.topic == HOTLIST_TOPIC:
                try:
                    update = decode_hotlist(record, self.plates)
                except DecodeError as exc:
                    dead.append((record, exc))
                    continue
                # the hotlist has no event time: it takes effect at its broker time, in event order
                item = HotlistItem(record.timestamp_ms * 1000, update)
                hotlist.append((index, record.timestamp_ms, ("", record.topic, record.partition, record.offset), item))
                continue
            arrival[(record.topic, record.partition, record.offset)] = (index, record.timestamp_ms)
            fresh.append(record)
        observations, decode_dead = self.decoder.decode_batch(fresh)
        entries = hotlist
        for obs in observations:
            index, arrival_ms = arrival[(obs.topic, obs.partition, obs.offset)]
            entries.append((index, arrival_ms, (obs.sensor_id, obs.topic, obs.partition, obs.offset), obs))
        entries.sort(key=lambda e: e[0])   # arrival order; a record's observations keep their order
        return DecodedBatch(len(records), topic_counts, duplicate_counts,
                            [(ms, key, item) for _, ms, key, item in entries], dead + decode_dead)

    def process_decoded(self, batch: DecodedBatch) -> BatchResult:
        """Feed decoded entries one by one in broker-timestamp order: the watermark moves and slices
        are processed after every entry, so the output is a function of the arrivals alone, whatever
        the batching (live polls, replay chunks, a restart in between).

        Entries first wait until `arrival_settle_ms` of newer arrivals have been seen and are then
        taken in (broker timestamp, topic, partition, offset) order: records that other producers
        appended to other partitions in a slightly different order than their timestamps (a live
        burst while the consumer is caught up) are fed exactly as replay feeds the sorted capture."""
        stats = self.stats
        stats.records.update(batch.topic_counts)
        stats.duplicates.update(batch.duplicate_counts)
        for record, exc in batch.dead_letters:
            stats.dead_letters[(record.topic, exc.kind)] += 1
        stats.observations += sum(1 for _, _, item in batch.entries if not isinstance(item, HotlistItem))
        settling, previous, sub = self._settling, None, 0
        incidents: list[Incident] = []
        late = 0
        engine = self.engine
        for arrival_ms, key, item in batch.entries:
            if self._newest_arrival_ms is None or arrival_ms > self._newest_arrival_ms:
                self._newest_arrival_ms = arrival_ms
            # The hotlist and ANPR reads decide on their own, at arrival: a hit needs nothing but the
            # read and the list (no track, no watermark), so its alarm costs only the transport delay.
            if isinstance(item, HotlistItem):
                engine.hotlist.apply(item.update)
                continue
            if item.sensor_kind == "anpr":
                found = engine.read_anpr(item)
                incidents += [attrs.evolve(inc, decided_at_us=self._newest_arrival_ms * 1000) for inc in found]
                continue
            where = key[1:4]             # (topic, partition, offset) of the record
            sub = sub + 1 if where == previous else 0
            previous = where
            heapq.heappush(settling, (arrival_ms, *where, sub, key, item))
            ready = []
            while settling and settling[0][0] <= self._newest_arrival_ms - self.arrival_settle_ms:
                entry = heapq.heappop(settling)
                ready.append((entry[0], entry[5], entry[6]))
            if ready:
                found, n_late = self._feed(ready)
                incidents += found
                late += n_late
        self._count(incidents)
        return BatchResult(incidents, batch.dead_letters, sum(batch.duplicate_counts.values()), late, batch.records)

    def _feed(self, entries) -> tuple[list[Incident], int]:
        """Entries into the reorder buffer and the engine; what comes out is stamped `decided_at`:
        the broker time of the newest record consumed when it was decided (a function of the
        arrivals, so replay gives the same stamps as live)."""
        incidents, late = self._feed_entries(entries)
        if incidents and self._newest_arrival_ms is not None:
            decided_us = self._newest_arrival_ms * 1000
            incidents = [attrs.evolve(inc, decided_at_us=decided_us) for inc in incidents]
        return incidents, late

    def _feed_entries(self, entries) -> tuple[list[Incident], int]:
        stats, reorder, engine = self.stats, self.reorder, self.engine
        incidents: list[Incident] = []
        late = 0
        for arrival_ms, key, item in entries:
            if isinstance(item, HotlistItem):
                if not reorder.push(None, item.time_us, key, item, arrival_ms):
                    engine.hotlist.apply(item.update)
                    stats.late["hotlist_applied"] += 1
            else:
                if not reorder.push((item.topic, item.partition), item.time_us, key, item, arrival_ms):
                    late += 1
                    what, found = engine.late(item)
                    stats.late[what] += 1
                    incidents += found
            watermark = reorder.watermark_us
            if watermark is not None and watermark >= self._next_slice_us:
                incidents += engine.process(reorder.release(), watermark)
                incidents += engine.look_ahead(reorder.held())
                self._next_slice_us = watermark - watermark % SLICE_US + SLICE_US
        return incidents, late

    def flush(self, end_of_input: bool = True) -> BatchResult:
        """Release everything held; processing may continue afterwards.

        `end_of_input` (replay): also decide every crossing still waiting for its track's class.
        The live service, flushing because the feed went quiet, passes False: nothing is decided
        before its time, later records carry on from here.
        """
        settled = [heapq.heappop(self._settling) for _ in range(len(self._settling))]
        incidents, _ = self._feed([(e[0], e[5], e[6]) for e in settled])
        items = self.reorder.flush()
        tail = self.engine.process(items, self.reorder.watermark_us) + self.engine.flush(final=end_of_input)
        if self._newest_arrival_ms is not None:
            tail = [attrs.evolve(inc, decided_at_us=self._newest_arrival_ms * 1000) for inc in tail]
        incidents += tail
        self._count(incidents)
        return BatchResult(incidents, [], 0, 0, 0)

    def _count(self, incidents: list[Incident]) -> None:
        for inc in incidents:
            if inc.seq == 1:
                self.stats.incidents[(inc.type, inc.sector)] += 1
            else:
                self.stats.incident_updates += 1

    def set_rules(self, rules: RuleSet) -> None:
        """Another rule set from the next record on; tracks and every rule's state are kept."""
        self.rules = rules
        self.engine.set_rules(rules)

    # --- state ---
    @property
    def active_tracks(self) -> int:
        return self.engine.tracker.confirmed_count()

    def take_track_reports(self) -> list:
        reports, self.engine.track_reports = self.engine.track_reports, []
        return reports

    def snapshot(self) -> bytes:
        """Everything needed to carry on exactly where this pipeline is: explicit fields, no pickle
        (fusion.state_codec, ingest.state_envelope). The geography and the rules are configuration,
        rebuilt from the settings, not part of it."""
        values = [PIPELINE_STATE.enc(self), encode_engine(self.engine)]
        return seal(KIND_PIPELINE, SNAPSHOT_VERSION, [_SCHEMA_DIGEST, values], compress=1)

    def restore(self, data: bytes, where: str = "pipeline state") -> None:
        """Load `snapshot()` bytes into this freshly built pipeline; StateFormatError (nothing changed)
        for anything else: a crafted or corrupt value, another version, the old pickle format."""
        doc = open_sealed(data, KIND_PIPELINE, SNAPSHOT_VERSION, where)
        if type(doc) is not list or len(doc) != 2 or type(doc[1]) is not list or len(doc[1]) != 2:
            raise StateFormatError(f"{where}: expected [schema digest, [pipeline, engine]]")
        digest, (pipeline_values, engine_values) = doc
        if digest != _SCHEMA_DIGEST:
            raise StateFormatError(f"{where}: written under another state schema (digest {digest!r})")
        fresh = FusionEngine(self.geography, self.rules, collect_tracks=self.engine.collect_tracks)
        try:
            fields = PIPELINE_STATE.dec(pipeline_values)
        except StateCodecError as exc:
            raise StateFormatError(f"{where}: {exc}") from None
        try:
            decode_engine_into(fresh, engine_values)
        except StateCodecError as exc:
            raise StateFormatError(f"{where}: {exc.under('engine')}") from None
        duplicates = DuplicateFilter(1.0)
        restore_into(duplicates, fields.pop("duplicates"))
        fields["duplicates"] = duplicates
        restore_into(self, fields)
        self.engine = fresh
        self.engine.hotlist.rekey(self.plates.pseudonym)   # the plate key may have rotated since the snapshot


PIPELINE_STATS = Obj(PipelineStats, [
    ("records", Map(STR, INT, collections.Counter)),
    ("dead_letters", Map(Tup(STR, STR), INT, collections.Counter)),
    ("duplicates", Map(STR, INT, collections.Counter)), ("late", Map(STR, INT, collections.Counter)),
    ("incidents", Map(Tup(STR, STR), INT, collections.Counter)), ("incident_updates", INT), ("observations", INT)])
# The pipeline's own fields (the engine is encoded beside it by fusion.state_codec.encode_engine).
PIPELINE_STATE = Record("pipeline", [
    ("duplicates", DUPLICATES), ("reorder", REORDER), ("stats", PIPELINE_STATS), ("_next_slice_us", INT),
    ("_settling", Seq(Tup(INT, STR, INT, INT, INT, ORDER_KEY, ITEM))), ("_newest_arrival_ms", Opt(INT))])
_SCHEMA_DIGEST = schema_digest(Tup(PIPELINE_STATE, ENGINE))   # another layout: refused, not misread
