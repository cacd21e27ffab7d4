"""`borderfuse run`: the live fusion service on Kafka, exactly-once (see docs/delivery.md).

One loop: poll every input partition and `shared.hotlist` (read_committed, manual assignment,
offsets stored under the consumer group), merge the partitions in broker-timestamp order
(ingest.arrival_merge), feed the Pipeline, and put the incidents, the dead letters, a snapshot of
the pipeline's state and the consumed offsets into one Kafka transaction. Every failure is
handled the same way as a start: fence the old producer, read the latest committed snapshot,
restore it, seek to its offsets, carry on.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

import attrs
from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition
from kafka.errors import KafkaError

from borderfuse.ingest.arrival_merge import ArrivalMerge
from borderfuse.ingest.incident_codec import encode_incident
from borderfuse.ingest.publisher import PublishError, TransactionalPublisher
from borderfuse.ingest.settings import Settings
from borderfuse.ingest.state_store import (STATE_TOPIC_CONFIG, ServiceSnapshot, SnapshotError, encode_snapshot,
                                read_latest_snapshot)
from borderfuse.ingest.topics import HOTLIST_TOPIC, INPUT_TOPICS, TopicSpec, TopicsError, dlq_topic, ensure_topics, \
    icd_topics, sector_topics
from borderfuse.sensors.base import RawRecord
from borderfuse.sensors.dlq import dead_letter_headers

log = logging.getLogger("borderfuse.service")
LAG_INTERVAL_S = 2.0
# Records the timestamp merge may hold (in poll batches) before polling waits for processing.
MERGE_BUFFER_BATCHES = 5
# Bound every blocking client call: an unbounded one can stall the loop silently across a broker restart.
POSITION_TIMEOUT_MS = 15000


class ServiceError(RuntimeError):
    """The service cannot start (bad settings, broker unreachable); the message is one clear line."""


def _default_pipeline_factory(settings: Settings):
    from borderfuse.ingest.pipeline import Pipeline
    return Pipeline.from_settings(settings)


@attrs.define
class _Pending:
    """What the open transaction holds, for metrics once it commits."""

    incidents: list = attrs.field(factory=list)  # (topic, sector, type, event time_us, poll monotonic s)
    records: int = 0
    flushed: bool = False
    opened_s: float = 0.0


class FusionService:
    """The live service. `run(stop)` returns when `stop` is set (after a final commit)."""

    def __init__(self, settings: Settings, metrics=None,
                 pipeline_factory: Callable[[Settings], object] | None = None):
        self.settings = settings
        self.metrics = metrics
        self.pipeline_factory = pipeline_factory or (lambda s: _default_pipeline_factory(s))
        svc = settings.service
        self.prefix = svc.topic_prefix
        self.bootstrap = settings.kafka.bootstrap_servers
        self.state_topic = self.prefix + svc.state_topic
        self.state_key = settings.kafka.group_id.encode()
        self.transactional_id = f"borderfuse-{self.prefix}{settings.kafka.group_id}"
        try:
            self.sector_topic = {s: self.prefix + t for s, t in sector_topics(settings.icd.geo_dir).items()}
        except TopicsError as exc:
            raise ServiceError(str(exc)) from exc
        self.input_topics = [self.prefix + t for t in (*INPUT_TOPICS, HOTLIST_TOPIC)]
        self.committed_transactions = 0
        self.records_processed = 0
        self.incidents_published = 0
        self.dead_letters_published = 0
        self.restarts = 0
        self.flushes = 0
        self.needs_flush = False  # records processed since the last flush (kept in the snapshot)
        self._processing_latency = _processing_latency_histogram(metrics)
        self._producer: TransactionalPublisher | None = None
        self._consumer: KafkaConsumer | None = None

    # ------------------------------------------------------------------ start / recover

    def check_broker(self) -> None:
        """Raise ServiceError (one line) unless the broker answers within startup_timeout_s."""
        from borderfuse.ingest.kafka_probe import answers_metadata

        deadline = time.monotonic() + self.settings.service.startup_timeout_s
        while not answers_metadata(self.bootstrap, timeout_s=3.0):
            if time.monotonic() > deadline:
                raise ServiceError(f"cannot reach Kafka at {self.bootstrap} (kafka.bootstrap_servers) within "
                                   f"{self.settings.service.startup_timeout_s:.0f} s: is the broker running? "
                                   f"(`borderfuse broker start`)")
            time.sleep(1.0)

    def ensure_topics(self) -> None:
        specs = [TopicSpec(self.prefix + s.name, s.partitions, s.configs) for s in icd_topics(self.settings.icd.geo_dir)]
        specs.append(TopicSpec(self.state_topic, 1, tuple(STATE_TOPIC_CONFIG.items())))
        ensure_topics(self.bootstrap, specs)

    def _open(self):
        """Fence, restore the latest committed snapshot, seek: the one way in, at start and after errors."""
        self._close()
        kafka = self.settings.kafka
        self._producer = TransactionalPublisher(self.bootstrap, self.transactional_id, kafka.client_id)
        self._producer.init()
        log.debug("service: producer %s initialised", self.transactional_id)
        snapshot = read_latest_snapshot(self.bootstrap, self.state_topic, self.state_key)
        pipeline = self.pipeline_factory(self.settings)
        if snapshot is not None:
            pipeline.restore(snapshot.pipeline_state)
            self.committed_transactions = snapshot.sequence
            self.records_processed = snapshot.records_processed
            self.needs_flush = snapshot.needs_flush
        else:
            self.committed_transactions = self.records_processed = 0
            self.needs_flush = False
        self._consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap, client_id=kafka.client_id, group_id=kafka.group_id,
            enable_auto_commit=False, isolation_level="read_committed", auto_offset_reset="earliest",
            max_poll_records=kafka.poll_max_records, max_partition_fetch_bytes=256 * 1024)
        tps = []
        for topic in self.input_topics:
            partitions = self._consumer.partitions_for_topic(topic)
            if not partitions:
                raise ServiceError(f"input topic {topic} does not exist on {self.bootstrap}")
            tps.extend(TopicPartition(topic, p) for p in sorted(partitions))
        # Manual assignment: fusion needs every input in one process (see docs/delivery.md).
        self._consumer.assign(tps)
        offsets = snapshot.offsets if snapshot is not None else {}
        for tp in tps:
            if (tp.topic, tp.partition) in offsets:
                self._consumer.seek(tp, offsets[(tp.topic, tp.partition)])
            else:
                self._consumer.seek_to_beginning(tp)
        where = f"snapshot #{snapshot.sequence}, {snapshot.records_processed} records" if snapshot else "the beginning"
        log.info("service: consuming %d partitions from %s", len(tps), where)
        return pipeline, dict(offsets), tps

    def _close(self) -> None:
        if self._producer is not None:
            self._producer.abort()
            self._producer.close()
            self._producer = None
        if self._consumer is not None:
            try:
                self._consumer.close(autocommit=False)
            except (KafkaError, OSError):
                pass
            self._consumer = None

    # ------------------------------------------------------------------ the loop

    def run(self, stop: threading.Event) -> int:
        """Serve until `stop` is set; 0 after a clean final commit, 1 if that commit failed."""
        self.check_broker()
        try:
            self.ensure_topics()
        except TopicsError as exc:
            raise ServiceError(str(exc)) from exc
        backoff, committed_at_failure = 0.5, -1
        try:
            while not stop.is_set():
                try:
                    self._session(stop)
                    return 0
                except (KafkaError, PublishError, SnapshotError, OSError) as exc:
                    self.restarts += 1
                    if stop.is_set():
                        log.error("service: stopping without a final commit (%s: %s); a restart resumes from "
                                  "the last committed snapshot", type(exc).__name__, exc)
                        return 1
                    if self.committed_transactions != committed_at_failure:
                        backoff = 0.5  # it made progress since the last failure: a new incident
                    committed_at_failure = self.committed_transactions
                    log.warning("service: %s: %s; rolling back to the last committed snapshot in %.1f s",
                                type(exc).__name__, exc, backoff)
                    self._close()
                    stop.wait(backoff)
                    backoff = min(backoff * 2, self.settings.service.retry_backoff_max_s)
            return 0
        finally:
            self._close()

    def _session(self, stop: threading.Event) -> None:
        svc, kafka = self.settings.service, self.settings.kafka
        pipeline, next_offsets, tps = self._open()
        consumer, producer = self._consumer, self._producer
        merge = ArrivalMerge(max_wait_s=svc.merge_max_wait_s)
        pending = _Pending()
        last_input_s = time.monotonic()
        last_lag_s = time.monotonic()
        ends = self._update_lag(consumer, tps)
        want_input = True
        interval_s = svc.transaction_interval_ms / 1000
        while True:
            stopping = stop.is_set()
            if not stopping:
                polled = consumer.poll(timeout_ms=kafka.poll_timeout_ms if want_input else 0,
                                       max_records=kafka.poll_max_records) if want_input else {}
                now = time.monotonic()
                for tp, batch in polled.items():
                    topic = tp.topic[len(self.prefix):]
                    merge.add(RawRecord(topic, r.partition, r.offset, r.timestamp, r.key, r.value) for r in batch)
                    if self.metrics is not None:
                        self.metrics.consumed(topic, len(batch))
                if polled:
                    last_input_s = now
                if now - last_lag_s >= LAG_INTERVAL_S:
                    ends = self._update_lag(consumer, tps)
                    last_lag_s = now
                lagging = self._lagging(consumer, tps, ends)
                # Bounded batches keep the commit cadence.
                released = merge.release(lagging, now, limit=kafka.poll_max_records)
                # Poll again only while the merge is short of work or blocked (bounds its memory).
                want_input = merge.buffered() < MERGE_BUFFER_BATCHES * kafka.poll_max_records or not released
                if released:
                    self._process(pipeline, pipeline.process_batch(released), pending, now)
                    for r in released:
                        next_offsets[(self.prefix + r.topic, r.partition)] = r.offset + 1
                    pending.records += len(released)
                    self.needs_flush = True
                elif (self.needs_flush and not lagging and not merge.buffered()
                      and now - last_input_s >= svc.idle_flush_s):
                    # Input is idle and fully consumed: release what the watermark still holds.
                    self._process(pipeline, pipeline.flush(), pending, now)
                    self.needs_flush = False
                    self.flushes += 1
                    pending.flushed = True
            due = (pending.records or pending.flushed) and (stopping or pending.records >= svc.transaction_max_records
                                       or time.monotonic() - pending.opened_s >= interval_s)
            if due:
                self._commit(pipeline, producer, consumer, next_offsets, pending)
                pending = _Pending(opened_s=time.monotonic())
            elif not (pending.records or pending.flushed):
                pending.opened_s = time.monotonic()
            if stopping:
                log.info("service: stopped after %d transactions, %d records", self.committed_transactions,
                         self.records_processed)
                return

    def _lagging(self, consumer: KafkaConsumer, tps: list[TopicPartition],
                 ends: dict[TopicPartition, int]) -> list[tuple[str, int]]:
        """Partitions whose position is behind their end (highwater of the last fetch, or the end
        offset asked for every LAG_INTERVAL_S: an empty partition's fetch may report no highwater)."""
        lagging = []
        for tp in tps:
            end = max(consumer.highwater(tp) or 0, ends.get(tp, 0))
            if consumer.position(tp, timeout_ms=POSITION_TIMEOUT_MS) < end:
                lagging.append((tp.topic[len(self.prefix):], tp.partition))
        return lagging

    def _update_lag(self, consumer: KafkaConsumer, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        ends = consumer.end_offsets(tps)
        if self.metrics is not None:
            for tp in tps:
                self.metrics.set_lag(tp.topic[len(self.prefix):], tp.partition, ends[tp] - consumer.position(tp, timeout_ms=POSITION_TIMEOUT_MS))
        return ends

    def _process(self, pipeline, result, pending: _Pending, poll_wall_s: float) -> None:
        producer = self._producer
        producer.begin()
        incidents = result if isinstance(result, list) else result.incidents
        for incident in incidents:
            doc = incident.to_json_dict()
            topic = self.sector_topic.get(incident.sector)
            if topic is None:
                log.error("service: incident %s has sector %r not in the sectors file; not published",
                          incident.incident_id, incident.sector)
                continue
            producer.send(topic, incident.incident_id.encode(), encode_incident(doc))
            pending.incidents.append((topic, incident.sector, incident.type, incident.time_us, poll_wall_s))
        for record, error in ([] if isinstance(result, list) else result.dead_letters):
            producer.send(self.prefix + dlq_topic(record.topic), record.key, record.value,
                          dead_letter_headers(record, error))
            self.dead_letters_published += 1
            if self.metrics is not None:
                self.metrics.dead_letter(record.topic, error.kind)
        if self.metrics is not None and not isinstance(result, list):
            _record_batch_stats(self.metrics, pipeline, result)

    def _commit(self, pipeline, producer: TransactionalPublisher, consumer: KafkaConsumer,
                next_offsets: dict, pending: _Pending) -> None:
        self.records_processed += pending.records
        snapshot = ServiceSnapshot(offsets={(t, p): o for (t, p), o in next_offsets.items()},
                                   pipeline_state=pipeline.snapshot(), sequence=self.committed_transactions + 1,
                                   records_processed=self.records_processed, needs_flush=self.needs_flush)
        producer.send(self.state_topic, self.state_key, encode_snapshot(snapshot))
        offsets = {TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in next_offsets.items()}
        producer.commit(offsets, consumer.group_metadata())
        log.debug("service: committed #%d: %d records, %d incidents", snapshot.sequence, pending.records, len(pending.incidents))
        acked_s, acked_unix = time.monotonic(), time.time()
        self.committed_transactions += 1
        self.incidents_published += len(pending.incidents)
        if self.metrics is not None:
            for topic, sector, kind, time_us, poll_wall_s in pending.incidents:
                self.metrics.incident(sector, kind)
                self.metrics.incident_published(topic[len(self.prefix):])
                self.metrics.observe_latency(acked_unix - time_us / 1e6)
                self._processing_latency.observe(max(acked_s - poll_wall_s, 0.0))


def _processing_latency_histogram(metrics):
    """The processing view of latency (poll -> commit ack), registered next to ServiceMetrics' own."""
    if metrics is None:
        return None
    from prometheus_client import Histogram

    name = "borderfuse_incident_processing_latency_seconds"
    existing = getattr(metrics.registry, "_names_to_collectors", {}).get(name)
    if existing is not None:
        return existing
    return Histogram(name, "Wall time from polling the batch that raised an incident to the commit that published it.",
                     registry=metrics.registry, buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0))


def _record_batch_stats(metrics, pipeline, result) -> None:
    """Per-batch pipeline figures -> metrics (duplicates per topic from the stats' running counters)."""
    stats = getattr(pipeline, "stats", None)
    if stats is not None:
        seen = getattr(pipeline, "_metrics_duplicates_seen", {})
        for topic, total in stats.duplicates.items():
            if total > seen.get(topic, 0):
                metrics.duplicate(topic, total - seen.get(topic, 0))
        pipeline._metrics_duplicates_seen = dict(stats.duplicates)
    if result.late:
        metrics.late("all", result.late)
    engine = getattr(pipeline, "engine", None)
    if engine is not None:
        metrics.set_tracks(len(engine.tracker), engine.tracker.confirmed_count())
    reorder = getattr(pipeline, "reorder", None)
    if reorder is not None:
        if reorder.watermark_us is not None:
            metrics.set_watermark(reorder.watermark_us)
        newest: dict[str, int] = {}
        for source, time_us in getattr(reorder, "_newest", {}).items():
            side = str(source[0]).split(".", 1)[0].upper()
            newest[side] = max(newest.get(side, time_us), time_us)
        for side, time_us in newest.items():
            if side in ("DE", "PL"):
                metrics.saw_event(side, time_us)
