"""`run_live` into the real broker: records appear on all eight ICD input topics and the hotlist."""
from __future__ import annotations

import threading

import pytest

from borderfuse.ingest.settings import DEFAULT_GEO_DIR
from borderfuse.simulator import ScenarioConfig, run_live
from borderfuse.ingest.topics import INPUT_TOPICS, HOTLIST_TOPIC, ensure_topics, icd_topics

pytestmark = pytest.mark.integration
PREFIX = "simlive."


def _count(bootstrap: str, topics: list[str]) -> dict[str, int]:
    from kafka import KafkaConsumer, TopicPartition
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        parts = [TopicPartition(t, 0) for t in topics]
        ends = consumer.end_offsets(parts)
        return {p.topic: ends[p] for p in parts}
    finally:
        consumer.close()


def test_run_live_produces_on_every_icd_topic(kafka_broker):
    ensure_topics(kafka_broker.bootstrap, icd_topics(DEFAULT_GEO_DIR, prefix=PREFIX))
    # Many vehicles and both UAVs on station from the start, so that in 4 simulated minutes (6 s at
    # 40x) every feed has records; with this seed each has several (the world depends on the seed only).
    config = ScenarioConfig(seed=7, minutes=4.0, targets=40, uav_first_sortie_within_s=0.0,
                            mix={"vehicle": 3, "local_vehicle": 2, "crossing": 1, "drone": 1})
    stop = threading.Event()
    result = {}
    worker = threading.Thread(target=lambda: result.update(
        summary=run_live(kafka_broker.bootstrap, config, stop, speed=40.0, progress=None, topic_prefix=PREFIX)))
    worker.start()
    worker.join(timeout=60.0)
    stop.set()
    worker.join(timeout=30.0)
    assert not worker.is_alive()
    summary = result["summary"]
    counts = _count(kafka_broker.bootstrap, [PREFIX + t for t in (*INPUT_TOPICS, HOTLIST_TOPIC)])
    assert all(n > 0 for n in counts.values()), {k: v for k, v in counts.items() if v == 0}
    assert sum(counts.values()) == summary.records
    assert summary.simulated_s == pytest.approx(240.0)


def test_run_live_stops_promptly_when_asked(kafka_broker):
    ensure_topics(kafka_broker.bootstrap, icd_topics(DEFAULT_GEO_DIR, prefix=PREFIX))
    stop = threading.Event()
    timer = threading.Timer(2.0, stop.set)
    timer.start()
    summary = run_live(kafka_broker.bootstrap, ScenarioConfig(seed=1, minutes=None, targets=10), stop,
                       progress=None, topic_prefix=PREFIX)
    assert 1.5 <= summary.seconds < 5.0 and summary.records > 0
