"""publish/record against a real broker: the sample capture round trip, pacing, limits, clear errors."""
from __future__ import annotations

import time
import uuid
from collections import defaultdict

import pytest

from borderfuse.capture.files import CaptureReader, read_capture
from borderfuse.capture.publish import PublishError, make_producer, publish_records
from borderfuse.capture.record import RecordError, record_topics
from borderfuse.ingest.settings import DEFAULT_GEO_DIR
from borderfuse.ingest.topics import HOTLIST_TOPIC, INPUT_TOPICS, TopicSpec, ensure_topics, icd_topics
from borderfuse.sensors.base import RawRecord


def _by_topic(records) -> dict[str, list[tuple]]:
    grouped = defaultdict(list)
    for r in records:
        grouped[r.topic].append((r.key, r.value, r.timestamp_ms))
    return dict(grouped)


def _topic(kafka_broker, partitions: int = 1) -> str:
    name = f"pr-{uuid.uuid4().hex[:10]}"
    ensure_topics(kafka_broker.bootstrap, [TopicSpec(name, partitions)], security=kafka_broker.client_config())
    return name


@pytest.mark.integration
def test_sample_capture_round_trip(kafka_broker_factory, sample_capture):
    broker = kafka_broker_factory()  # clean ICD topics, whatever else the session broker holds
    admin = broker.client_config()
    ensure_topics(broker.bootstrap, icd_topics(DEFAULT_GEO_DIR), security=admin)
    reader = CaptureReader(sample_capture, strict=True)
    published = publish_records(broker.bootstrap, reader, security=admin)
    print(f"\npublish: {published.records} records in {published.seconds:.1f} s ({published.rate:,.0f}/s)")
    started = time.monotonic()
    recorded = record_topics(broker.bootstrap, [*INPUT_TOPICS, HOTLIST_TOPIC], from_beginning=True,
                             max_records=published.records, security=admin)
    elapsed = time.monotonic() - started
    print(f"record: {len(recorded)} records in {elapsed:.1f} s ({len(recorded) / elapsed:,.0f}/s)")
    assert published.records == reader.records == len(recorded) == 90_317
    original, back = _by_topic(read_capture(sample_capture)), _by_topic(recorded)
    assert {t: len(v) for t, v in back.items()} == {t: len(v) for t, v in original.items()}
    for topic in original:  # same bytes, same order, same timestamps within every topic
        assert back[topic] == original[topic], topic
    # interleaved by broker timestamp across topics
    assert all(a.timestamp_ms <= b.timestamp_ms for a, b in zip(recorded, recorded[1:]))


@pytest.mark.integration
@pytest.mark.parametrize("speed, min_s, max_s", [(0, 0.0, 0.6), (4, 0.45, 1.5)])
def test_speed_paces_by_recorded_timestamps(kafka_broker, speed, min_s, max_s):
    topic = _topic(kafka_broker)
    # 2 s of recorded time: at speed 4 it takes ~0.5 s, at speed 0 as long as sending takes.
    records = [RawRecord(topic, 0, i, 1_700_000_000_000 + i * 100, b"k", b"v%d" % i) for i in range(21)]
    admin = kafka_broker.client_config()
    result = publish_records(kafka_broker.bootstrap, records, speed=speed, security=admin)
    assert result.records == 21 and min_s <= result.seconds <= max_s
    back = record_topics(kafka_broker.bootstrap, [topic], from_beginning=True, until_idle_s=0.5, security=admin)
    assert [(r.value, r.timestamp_ms) for r in back] == [(r.value, r.timestamp_ms) for r in records]


@pytest.mark.integration
def test_partitions_are_kept_and_merged_by_timestamp(kafka_broker):
    topic = _topic(kafka_broker, partitions=2)
    records = [RawRecord(topic, i % 2, 0, 1_700_000_000_000 + i, None if i == 3 else b"k%d" % i,
                         None if i == 5 else b"v%d" % i) for i in range(10)]
    admin = kafka_broker.client_config()
    publish_records(kafka_broker.bootstrap, records, security=admin)
    back = record_topics(kafka_broker.bootstrap, [topic], from_beginning=True, max_records=10, security=admin)
    assert [(r.partition, r.key, r.value, r.timestamp_ms) for r in back] == \
        [(r.partition, r.key, r.value, r.timestamp_ms) for r in records]


@pytest.mark.integration
def test_record_limits_and_from_now(kafka_broker):
    topic = _topic(kafka_broker)
    admin = kafka_broker.client_config()
    publish_records(kafka_broker.bootstrap, [RawRecord(topic, 0, 0, 1_700_000_000_000 + i, None, b"old")
                                             for i in range(5)], security=admin)
    assert len(record_topics(kafka_broker.bootstrap, [topic], from_beginning=True, max_records=3,
                             security=admin)) == 3
    started = time.monotonic()
    assert record_topics(kafka_broker.bootstrap, [topic], until_idle_s=0.5, security=admin) == []  # only new
    assert time.monotonic() - started < 5


@pytest.mark.integration
def test_publish_to_missing_topic_fails_loudly(kafka_broker):
    producer = make_producer(kafka_broker.bootstrap, max_block_ms=1500, **kafka_broker.client_config())
    try:
        with pytest.raises(PublishError, match="cannot send to no-such-topic-x\\[0\\].*topics create"):
            publish_records(producer, [RawRecord("no-such-topic-x", 0, 0, 1_700_000_000_000, None, b"v")])
    finally:
        producer.close()


@pytest.mark.integration
def test_publish_to_missing_partition_fails_loudly(kafka_broker):
    topic = _topic(kafka_broker)
    with pytest.raises(PublishError, match=rf"cannot send to {topic}\[3\]"):
        publish_records(kafka_broker.bootstrap, [RawRecord(topic, 3, 0, 1_700_000_000_000, None, b"v")],
                        security=kafka_broker.client_config())


@pytest.mark.integration
def test_record_missing_topic_is_one_clear_error(kafka_broker):
    with pytest.raises(RecordError, match="topic 'no-such-topic-y' does not exist"):
        record_topics(kafka_broker.bootstrap, ["no-such-topic-y"], until_idle_s=0.2, security=kafka_broker.client_config())


@pytest.mark.parametrize("call", [
    lambda: publish_records("127.0.0.1:1", []),
    lambda: record_topics("127.0.0.1:1", ["x"]),
])
def test_unreachable_broker_is_one_clear_error(call):
    with pytest.raises((PublishError, RecordError), match="cannot reach Kafka at 127.0.0.1:1"):
        call()


def test_negative_speed_is_rejected():
    with pytest.raises(ValueError, match="speed must be >= 0"):
        publish_records("127.0.0.1:1", [], speed=-1)
