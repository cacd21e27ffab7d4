"""Rebuild the pipeline's state from the input topics when no usable snapshot exists.

The state topic and the consumer group's offsets are committed in one transaction, so the group's
committed offsets say exactly which input records the published incidents came from. With no usable
snapshot (refused as crafted/corrupt/old, or deleted) but committed offsets, the service re-feeds every
input record *before* those offsets through a fresh pipeline, in the arrival merge's order, and throws
the output away: it was published already by the transactions that committed those offsets. Live
processing then continues from the offsets, so no incident is published twice and none is lost
(docs/delivery.md, "No usable snapshot"). Without committed offsets it is a first start: nothing to
rebuild, everything is consumed from the beginning and published.
"""
from __future__ import annotations

import logging
import time

import attrs
from kafka import KafkaConsumer, TopicPartition

from borderfuse.ingest.arrival_merge import ArrivalMerge
from borderfuse.ingest.publisher import RECONNECT_BACKOFF_MAX_MS
from borderfuse.sensors.base import RawRecord

log = logging.getLogger("borderfuse.service")
CALL_TIMEOUT_MS = 15000
PROGRESS_EVERY_S = 10.0
MERGE_BUFFER_RECORDS = 50_000


@attrs.frozen
class Rebuild:
    offsets: dict[tuple[str, int], int]   # (topic, partition) -> next offset: where live processing resumes
    records: int                          # input records re-fed
    incomplete: tuple[str, ...] = ()      # partitions whose start was already deleted by retention


def committed_offsets(consumer: KafkaConsumer, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
    """The group's committed offset of each partition that has one."""
    out = {}
    for tp in tps:
        offset = consumer.committed(tp, timeout_ms=CALL_TIMEOUT_MS)
        if offset is not None and offset > 0:
            out[tp] = offset
    return out


def rebuild_to_committed(group_consumer: KafkaConsumer, tps: list[TopicPartition], pipeline, prefix: str = "",
                         max_records: int = 5000, *, bootstrap: str, security: dict | None = None,
                         client_id: str = "borderfuse-rebuild", poll_timeout_ms: int = 500) -> Rebuild:
    """Feed `pipeline` every record of `tps` before the group's committed offsets, output discarded.

    `group_consumer` (the service's, of the group) is only asked for the committed offsets; the records
    are read by a consumer of its own (read_committed, no group) that drops each partition from its
    assignment once it reaches its offset. An empty `Rebuild.offsets` means the group has committed
    nothing (a first start).
    """
    targets = committed_offsets(group_consumer, tps)
    if not targets:
        return Rebuild({}, 0)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id=client_id, group_id=None,
                             enable_auto_commit=False, isolation_level="read_committed",
                             max_partition_fetch_bytes=1024 * 1024,
                             reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS, **(security or {}))
    try:
        return _rebuild(consumer, targets, pipeline, prefix, max_records, poll_timeout_ms)
    finally:
        consumer.close()


def _rebuild(consumer: KafkaConsumer, targets: dict[TopicPartition, int], pipeline, prefix: str, max_records: int,
             poll_timeout_ms: int) -> Rebuild:
    starts = consumer.beginning_offsets(list(targets), timeout_ms=CALL_TIMEOUT_MS)
    incomplete = tuple(f"{tp.topic}/{tp.partition}" for tp, start in starts.items() if start > 0)
    if incomplete:
        log.warning("service: rebuilding without the records retention already deleted from %s: the rebuilt "
                    "tracks may differ from the lost state's (see docs/delivery.md)", ", ".join(incomplete))
    pending = {tp: target for tp, target in targets.items() if starts[tp] < target}   # short of their target
    total = sum(target - starts[tp] for tp, target in pending.items())
    log.info("service: rebuilding the state from the topics: up to %d records of %d partitions before the "
             "group's committed offsets; nothing of it is published again", total, len(pending))
    consumer.assign(list(pending))
    for tp in pending:
        consumer.seek(tp, starts[tp])
    merge, fed, last_log = ArrivalMerge(), 0, time.monotonic()
    want_input = True
    while pending or merge.buffered():
        if pending and want_input:
            for tp, batch in consumer.poll(timeout_ms=poll_timeout_ms, max_records=max_records).items():
                target = targets[tp]
                merge.add(RawRecord(tp.topic[len(prefix):], r.partition, r.offset, r.timestamp, r.key, r.value)
                          for r in batch if r.offset < target)
            done = [tp for tp in pending if consumer.position(tp, timeout_ms=CALL_TIMEOUT_MS) >= pending[tp]]
            if done:
                for tp in done:
                    del pending[tp]
                consumer.assign(list(pending))    # positions of the others are kept
        lagging = [(tp.topic[len(prefix):], tp.partition) for tp in pending]
        released = merge.release(lagging, time.monotonic(), limit=max_records)
        # poll again while the merge is short of work or blocked on a lagging partition (bounds memory)
        want_input = merge.buffered() < MERGE_BUFFER_RECORDS or not released
        if released:
            pipeline.process_batch(released)    # published already: the output is dropped
            take = getattr(pipeline, "take_track_reports", None)
            if take is not None:
                take()
            fed += len(released)
        if time.monotonic() - last_log >= PROGRESS_EVERY_S:
            log.info("service: rebuilding the state: %d of up to %d records", fed, total)
            last_log = time.monotonic()
    log.info("service: state rebuilt from %d records; resuming at the group's committed offsets", fed)
    return Rebuild({(tp.topic, tp.partition): o for tp, o in targets.items()}, fed, incomplete)
