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

from borderfuse.fusion.rules import RulesError
from borderfuse.ingest.arrival_merge import ArrivalMerge
from borderfuse.ingest.incident_codec import encode_incident
from borderfuse.ingest.input_lag import InputLag
from borderfuse.ingest.kafka_security import client_config
from borderfuse.ingest.publisher import RECONNECT_BACKOFF_MAX_MS, PublishError, TransactionalPublisher
from borderfuse.ingest.rules_control import AUDIT_TOPIC, AUDIT_TOPIC_CONFIG, RULES_TOPIC, RULES_TOPIC_CONFIG, LiveRules
from borderfuse.ingest.settings import Settings
from borderfuse.ingest.state_envelope import StateFormatError
from borderfuse.ingest.state_rebuild import rebuild_to_committed
from borderfuse.ingest.state_store import (STATE_TOPIC_CONFIG, ServiceSnapshot, SnapshotError, SnapshotRefused,
                                           encode_snapshot, read_latest_snapshot)
from borderfuse.ingest.track_feed import TrackFeed, actions_topic
from borderfuse.ingest.topics import HOTLIST_TOPIC, INPUT_TOPICS, TopicSpec, TopicsError, dlq_topic, ensure_topics, \
    icd_topics, sector_topics
from borderfuse.sensors.base import RawRecord
from borderfuse.sensors.dlq import dead_letter_headers

log = logging.getLogger("borderfuse.service")
LAG_INTERVAL_S = 2.0
# Records the timestamp merge may hold (in poll batches) before polling waits for processing.
MERGE_BUFFER_BATCHES = 5


class ServiceError(RuntimeError):
    """The service cannot start (bad settings, broker unreachable); the message is one clear line."""


def _default_pipeline_factory(settings: Settings, rules=None):
    from borderfuse.ingest.pipeline import Pipeline
    return Pipeline.from_settings(settings, collect_tracks=True, rules=rules)  # track reports feed tracks.<sector>


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
        # The rules in force are read once, when the service validates its configuration; a recovery
        # rebuilds the pipeline with them, never with whatever the file holds by then.
        self.rules = None
        self.pipeline_factory = pipeline_factory or (lambda s: _default_pipeline_factory(s, self.rules))
        svc = settings.service
        self.prefix = svc.topic_prefix
        self.bootstrap = settings.kafka.bootstrap_servers
        self.state_topic = self.prefix + svc.state_topic
        self.state_key = settings.kafka.group_id.encode()
        self.rules_topic = self.prefix + RULES_TOPIC
        self.audit_topic = self.prefix + AUDIT_TOPIC
        self._rules_consumer: KafkaConsumer | None = None
        self.transactional_id = f"borderfuse-{self.prefix}{settings.kafka.group_id}"
        self._rules = LiveRules(self.state_key, self.rules_topic, self.audit_topic, self.transactional_id, metrics)
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
        self.needs_flush = False  # records processed since the last flush (kept in the snapshot)
        self._producer: TransactionalPublisher | None = None
        self._consumer: KafkaConsumer | None = None
        self._lag = InputLag(self.prefix, metrics)
        self._track_feed = TrackFeed(prefix=self.prefix)  # consoles' tracks.<sector>, <= 1 update/s per track

    # ------------------------------------------------------------------ start / recover

    def validate(self):
        """Build a pipeline once, before any Kafka client exists: rules, geography and schemas are
        checked here, so a bad file is one line and exit 2 and never fences a running instance."""
        from borderfuse.geo.frames import GeoError
        from borderfuse.sensors.base import DecodeError

        try:
            pipeline = self.pipeline_factory(self.settings)
        except (RulesError, GeoError, DecodeError, OSError, ValueError, KeyError) as exc:
            raise ServiceError(f"bad configuration: {exc}") from exc
        self.rules = getattr(pipeline, "rules", None)
        return pipeline

    def check_broker(self) -> None:
        """Raise ServiceError (one line) unless the broker answers within startup_timeout_s."""
        from borderfuse.ingest.kafka_probe import answers_metadata, reachable

        deadline = time.monotonic() + self.settings.service.startup_timeout_s
        while not (reachable(self.bootstrap) and  # no broker: say that, before anything about credentials
                   answers_metadata(self.bootstrap, timeout_s=3.0, security=client_config(self.settings.kafka))):
            if time.monotonic() > deadline:
                raise ServiceError(f"cannot reach Kafka at {self.bootstrap} (kafka.bootstrap_servers) within "
                                   f"{self.settings.service.startup_timeout_s:.0f} s: is the broker running? "
                                   f"(`borderfuse broker start`)")
            time.sleep(1.0)

    def _watch_broker(self, stop: threading.Event, every_s: float = 1.0) -> None:
        """broker_up from a TCP probe each second, beside the loop: a transaction can wait tens of
        seconds on an absent broker before it fails, and ops must see the outage while it lasts."""
        from borderfuse.ingest.kafka_probe import reachable

        was_up = True
        while not stop.wait(every_s):
            up = reachable(self.bootstrap, timeout_s=0.5)
            if self.metrics is not None:
                self.metrics.set_broker_up(up)
            if up and not was_up:
                log.info("service: the broker answers again")
            was_up = up

    def ensure_topics(self) -> None:
        """Every topic the service reads or writes (inputs, hotlist, every dead-letter topic including
        the hotlist's, incidents, tracks, state, rules control, audit) exists afterwards, or TopicsError
        names the missing ones. Not the operators' actions topics: the service neither reads nor writes
        them, so its principal has no right on them (least privilege, ingest/acls.py)."""
        actions = {actions_topic(sector) for sector in self.sector_topic}
        specs = [TopicSpec(self.prefix + s.name, s.partitions, s.configs) for s in icd_topics(self.settings.icd.geo_dir)
                 if s.name not in actions]
        specs.append(TopicSpec(self.state_topic, 1, tuple(STATE_TOPIC_CONFIG.items())))
        specs.append(TopicSpec(self.rules_topic, 1, tuple(RULES_TOPIC_CONFIG.items())))
        specs.append(TopicSpec(self.audit_topic, 1, tuple(AUDIT_TOPIC_CONFIG.items())))
        ensure_topics(self.bootstrap, specs, security=client_config(self.settings.kafka))
        outputs = {self.prefix + dlq_topic(t) for t in (*INPUT_TOPICS, HOTLIST_TOPIC)} | set(self.sector_topic.values())
        missing = outputs - {s.name for s in specs}
        if missing:
            raise TopicsError(f"output topics not in the topic list: {', '.join(sorted(missing))}")

    def _open(self):
        """Fence, restore the latest committed snapshot, seek: the one way in, at start and after errors."""
        self._close()
        kafka = self.settings.kafka
        security = client_config(kafka)  # the service's principal (kafka.username), see docs/operations.md
        self._producer = TransactionalPublisher(self.bootstrap, self.transactional_id, kafka.client_id, security=security)
        self._producer.init()
        log.debug("service: producer %s initialised", self.transactional_id)
        try:
            snapshot = read_latest_snapshot(self.bootstrap, self.state_topic, self.state_key, security=security)
            pipeline = self.pipeline_factory(self.settings)
            if snapshot is not None:
                pipeline.restore(snapshot.pipeline_state)
        except (SnapshotRefused, StateFormatError) as exc:   # never retried: rebuilt from the topics below
            log.error("service: latest snapshot refused, rebuilding the state from the topics: %s", exc)
            snapshot, pipeline = None, self.pipeline_factory(self.settings)
        if snapshot is not None:
            self._rules.restore(snapshot.rules_toml, snapshot.rules_version, pipeline)  # in force when taken
            self.committed_transactions = snapshot.sequence
            self.records_processed = snapshot.records_processed
            self.needs_flush = snapshot.needs_flush
            self._lag.restored(snapshot.offsets)
        else:
            self.committed_transactions = self.records_processed = 0
            self.needs_flush = False
            self._rules.restore("", "", pipeline)
        self._consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap, client_id=kafka.client_id, group_id=kafka.group_id,
            enable_auto_commit=False, isolation_level="read_committed", auto_offset_reset="earliest",
            max_poll_records=kafka.poll_max_records, max_partition_fetch_bytes=256 * 1024,
            reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS, **security)
        tps = []
        for topic in self.input_topics:
            partitions = self._consumer.partitions_for_topic(topic)
            if not partitions:
                raise ServiceError(f"input topic {topic} does not exist on {self.bootstrap}")
            tps.extend(TopicPartition(topic, p) for p in sorted(partitions))
        # Manual assignment: fusion needs every input in one process (see docs/delivery.md).
        self._consumer.assign(tps)
        offsets = snapshot.offsets if snapshot is not None else {}
        if snapshot is None:   # no usable snapshot: replay what the group committed, unpublished (docs/delivery.md)
            rebuilt = rebuild_to_committed(self._consumer, tps, pipeline, self.prefix, kafka.poll_max_records,
                                           bootstrap=self.bootstrap, security=security)
            offsets, self.records_processed = rebuilt.offsets, rebuilt.records
        for tp in tps:
            if (tp.topic, tp.partition) in offsets:
                self._consumer.seek(tp, offsets[(tp.topic, tp.partition)])
            else:
                self._consumer.seek_to_beginning(tp)
        rules_tp = TopicPartition(self.rules_topic, 0)
        self._rules_consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap, client_id=f"{kafka.client_id}-rules", group_id=None,
            enable_auto_commit=False, isolation_level="read_committed",
            reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS, **security)
        self._rules_consumer.assign([rules_tp])
        if (self.rules_topic, 0) in offsets:
            self._rules_consumer.seek(rules_tp, offsets[(self.rules_topic, 0)])
        else:
            self._rules_consumer.seek_to_beginning(rules_tp)
        where = (f"snapshot #{snapshot.sequence}, {snapshot.records_processed} records" if snapshot else
                 "the group's committed offsets (state rebuilt)" if offsets else "the beginning")
        log.info("service: consuming %d partitions from %s", len(tps), where)
        return pipeline, dict(offsets), tps

    def _close(self, failed: bool = False) -> None:
        """`failed`: after an error, drop the producer at once. Aborting would wait for a coordinator
        that may be gone (up to the step timeout: recoveries of 35 s were seen); the next producer's
        init_transactions fences this one and aborts its open transaction anyway (KIP-98)."""
        if self._producer is not None:
            if not failed:
                self._producer.abort()
            self._producer.close(timeout_s=0.0 if failed else 5.0)
            self._producer = None
        if self._rules_consumer is not None:
            try:
                self._rules_consumer.close(autocommit=False)
            except (KafkaError, OSError):
                pass
            self._rules_consumer = None
        if self._consumer is not None:
            try:
                self._consumer.close(autocommit=False)
            except (KafkaError, OSError):
                pass
            self._consumer = None

    # ------------------------------------------------------------------ the loop

    def run(self, stop: threading.Event) -> int:
        """Serve until `stop` is set; 0 after a clean final commit, 1 if that commit failed."""
        self.validate()
        self.check_broker()
        threading.Thread(target=self._watch_broker, args=(stop,), name="broker-probe", daemon=True).start()
        try:
            self.ensure_topics()
        except TopicsError as exc:
            raise ServiceError(str(exc)) from exc
        from borderfuse.ingest.audit import audit_service_start
        audit_service_start(self.settings, self.transactional_id, bootstrap=self.bootstrap)  # who runs, as whom
        backoff, committed_at_failure = 0.5, -1
        try:
            while not stop.is_set():
                try:
                    self._session(stop)
                    return 0
                except (KafkaError, PublishError, SnapshotError, TopicsError, OSError) as exc:
                    self.restarts += 1
                    reason = getattr(exc, "reason", None) or type(exc).__name__
                    if self.metrics is not None:
                        self.metrics.rolled_back(reason)
                        if isinstance(exc, PublishError):
                            self.metrics.publish_error()
                        from borderfuse.ingest.kafka_probe import reachable
                        self.metrics.set_broker_up(reachable(self.bootstrap))
                        self._lag.report_stale()
                    if stop.is_set():
                        log.error("service: stopping without a final commit (%s: %s); a restart resumes from "
                                  "the last committed snapshot", type(exc).__name__, exc)
                        return 1
                    if self.committed_transactions != committed_at_failure:
                        backoff = 0.5  # it made progress since the last failure: a new incident
                    committed_at_failure = self.committed_transactions
                    log.warning("service: rolled back to the last committed snapshot (%s: %s); retrying in %.1f s",
                                reason, exc, backoff)
                    self._close(failed=True)
                    stop.wait(backoff)
                    backoff = min(backoff * 2, self.settings.service.retry_backoff_max_s)
            return 0
        finally:
            self._close()

    def _session(self, stop: threading.Event) -> None:
        svc, kafka = self.settings.service, self.settings.kafka
        pipeline, next_offsets, tps = self._open()
        consumer, producer = self._consumer, self._producer
        merge = ArrivalMerge()
        pending = _Pending()
        stall_warned = False
        last_lag_s = time.monotonic()
        ends = self._lag.update(consumer, tps)
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
                lagging = self._lag.lagging(consumer, tps, ends)
                if now - last_lag_s >= LAG_INTERVAL_S or (polled and len(lagging) < len(tps)):
                    # kafka-python learns a partition's high watermark only when a poll hands out that
                    # partition's share of a fetch, so one that looks caught up may already hold records
                    # older than those just polled (seen: 10-86 s older in a burst, processed late and
                    # unlike replay). Its end offset, asked after this poll, says so.
                    ends = self._lag.update(consumer, tps)
                    last_lag_s = now
                    lagging = self._lag.lagging(consumer, tps, ends)
                # Bounded batches keep the commit cadence.
                released = merge.release(lagging, now, limit=kafka.poll_max_records)
                # Poll again only while the merge is short of work or blocked (bounds its memory).
                want_input = merge.buffered() < MERGE_BUFFER_BATCHES * kafka.poll_max_records or not released
                if released:
                    # No live path ever takes the end-of-input branch (Pipeline.flush): a pause in
                    # the input holds decisions until the next arrivals, exactly as replay does.
                    started = time.perf_counter()
                    self._process(pipeline, pipeline.process_batch(released), pending, now)
                    for r in released:
                        next_offsets[(self.prefix + r.topic, r.partition)] = r.offset + 1
                        self._lag.processed(r.topic, r.partition, r.offset)
                    pending.records += len(released)
                    if self.metrics is not None:
                        self.metrics.observe_batch(time.perf_counter() - started)
                if merge.stalled_for(now) >= svc.merge_max_wait_s and not stall_warned:
                    log.warning("service: partition(s) %s are behind their end offset but deliver nothing; "
                                "waiting for them (never skipping ahead: that would reorder the input)",
                                ", ".join(f"{t}/{p}" for t, p in lagging) or "?")
                    stall_warned = True
                elif not merge.stalled_for(now):
                    stall_warned = False
            if not stopping:
                changes = self._rules_consumer.poll(timeout_ms=0)
                records = [r for batch in changes.values() for r in batch]
                if records:
                    # A transaction boundary first: what came before is decided under the old rules.
                    if pending.records or pending.flushed:
                        self._commit(pipeline, producer, consumer, next_offsets, pending)
                        pending = _Pending(opened_s=time.monotonic())
                    self._rules.apply(records, pipeline, producer)
                    next_offsets[(self.rules_topic, 0)] = records[-1].offset + 1
                    pending.flushed = True   # commit the switch (snapshot with the rules, audit) now
            # An alarm does not wait for the transaction interval: the patrol centre sees it once it commits.
            due = (pending.records or pending.flushed) and (stopping or pending.records >= svc.transaction_max_records
                                       or time.monotonic() - pending.opened_s >= interval_s or pending.flushed
                                       or bool(pending.incidents))
            if due:
                self._commit(pipeline, producer, consumer, next_offsets, pending)
                pending = _Pending(opened_s=time.monotonic())
            elif not (pending.records or pending.flushed):
                pending.opened_s = time.monotonic()
            if stopping:
                log.info("service: stopped after %d transactions, %d records", self.committed_transactions,
                         self.records_processed)
                return

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
            pending.incidents.append((topic, incident.sector, incident.type, incident.time_us, poll_wall_s,
                                      incident.decided_at_us if incident.seq == 1 else None))
        for topic, key, value in self._track_feed.select_from(pipeline):  # same transaction as the incidents
            producer.send(topic, key, value)
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
                                   records_processed=self.records_processed, needs_flush=self.needs_flush,
                                   rules_toml=self._rules.toml, rules_version=self._rules.version)
        producer.send(self.state_topic, self.state_key, encode_snapshot(snapshot))
        offsets = {TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in next_offsets.items()
                   if t != self.rules_topic}   # the rules topic's position lives in the snapshot only
        producer.commit(offsets, consumer.group_metadata())
        log.debug("service: committed #%d: %d records, %d incidents", snapshot.sequence, pending.records, len(pending.incidents))
        acked_s, acked_unix = time.monotonic(), time.time()
        self.committed_transactions += 1
        if self.metrics is not None:
            self.metrics.committed(acked_unix)
            self.metrics.set_broker_up(True)
        self.incidents_published += len(pending.incidents)
        if self.metrics is not None:
            for topic, sector, kind, time_us, poll_wall_s, decided_us in pending.incidents:
                self.metrics.incident(sector, kind)
                self.metrics.incident_published(topic[len(self.prefix):])
                self.metrics.observe_latency(acked_unix - time_us / 1e6)
                self.metrics.observe_processing_latency(acked_s - poll_wall_s)
                if decided_us is not None:
                    self.metrics.observe_decision_latency((decided_us - time_us) / 1e6)


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
