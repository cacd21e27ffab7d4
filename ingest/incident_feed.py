"""Reading what the service published: committed incidents (read_committed, Avro decoded) and the
consumer group's committed progress. Used by the demo's live feed, the tests and the benchmark."""
from __future__ import annotations

import time
from typing import Iterable, Iterator

from borderfuse.ingest.incident_codec import IncidentCodecError, decode_incident


class FeedError(RuntimeError):
    """The incident topics could not be read to their end in time."""


def _consumer(bootstrap: str, client_id: str, security: dict | None = None):
    from kafka import KafkaConsumer

    return KafkaConsumer(bootstrap_servers=bootstrap, client_id=client_id, group_id=None,
                         isolation_level="read_committed", enable_auto_commit=False, **(security or {}))


def read_topics(bootstrap: str, topics: Iterable[str], timeout_s: float = 60.0,
                client_id: str = "borderfuse-reader", security: dict | None = None) -> list:
    """Every committed record of `topics` (all partitions), from the beginning to the current end
    (`security`: kafka_security.client_config of the principal reading)."""
    from kafka import TopicPartition

    consumer = _consumer(bootstrap, client_id, security)
    try:
        tps = [TopicPartition(t, p) for t in sorted(set(topics)) for p in sorted(consumer.partitions_for_topic(t) or ())]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)  # read_committed: the last stable offset
        out = []
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise FeedError(f"reading {len(tps)} partitions did not reach their end in {timeout_s:.0f} s")
            for records in consumer.poll(timeout_ms=500).values():
                out.extend(records)
        return out
    finally:
        consumer.close()


def read_incidents(bootstrap: str, topics: Iterable[str], timeout_s: float = 60.0,
                   security: dict | None = None) -> list[dict]:
    """Every committed incident on `topics`, decoded (plus `_topic`, `_key`)."""
    return [{**decode_incident(r.value), "_topic": r.topic, "_key": r.key}
            for r in read_topics(bootstrap, topics, timeout_s, security=security)]


def follow_incidents(bootstrap: str, topics: Iterable[str], should_stop, on_error=None,
                     client_id: str = "borderfuse-feed", security: dict | None = None) -> Iterator[dict]:
    """Committed incidents as they are published (from the beginning), until `should_stop()`."""
    from kafka import TopicPartition

    consumer = _consumer(bootstrap, client_id, security)
    try:
        tps = [TopicPartition(t, p) for t in sorted(set(topics)) for p in sorted(consumer.partitions_for_topic(t) or ())]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        while not should_stop():
            for records in consumer.poll(timeout_ms=300).values():
                for record in records:
                    try:
                        yield {**decode_incident(record.value), "_topic": record.topic}
                    except IncidentCodecError as exc:
                        if on_error is not None:
                            on_error(f"undecodable incident at {record.topic}@{record.offset}: {exc}")
    finally:
        consumer.close()


def committed_total(bootstrap: str, group_id: str, timeout_s: float = 30.0, security: dict | None = None) -> int:
    """Sum of the group's committed offsets over all partitions (0 when it has none). Retries the
    retriable errors of a broker that is just coming back (e.g. NOT_COORDINATOR)."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    deadline = time.monotonic() + timeout_s
    while True:
        admin = None
        try:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="borderfuse-progress", **(security or {}))
            offsets = admin.list_group_offsets({group_id: None}).get(group_id, {})
            return sum(o.offset for o in offsets.values() if o.offset >= 0)
        except KafkaError as exc:
            if not getattr(exc, "retriable", False) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)
        finally:
            if admin is not None:
                admin.close()
