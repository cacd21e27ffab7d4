"""`run_live` into the real broker: records appear on all eight ICD input topics and the hotlist."""
from __future__ import annotations

import threading

import pytest

from borderfuse.simulator import ScenarioConfig, run_live
from borderfuse.ingest.topics import INPUT_TOPICS, HOTLIST_TOPIC

pytestmark = pytest.mark.integration
PREFIX = "simlive."


def _provision(broker) -> None:
    """Topics and ACLs under PREFIX: the simulator's agencies may each write only their own topics."""
    from borderfuse.ingest.acls import provision
    from borderfuse.ingest.settings import load_settings

    provision(broker.settings_for("admin", load_settings(environ={"BORDERFUSE_SERVICE__TOPIC_PREFIX": PREFIX})))


def _count(broker, topics: list[str]) -> dict[str, int]:
    from kafka import KafkaConsumer, TopicPartition
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False,
                             **broker.client_config())
    try:
        parts = [TopicPartition(t, 0) for t in topics]
        ends = consumer.end_offsets(parts)
        return {p.topic: ends[p] for p in parts}
    finally:
        consumer.close()


def test_run_live_produces_on_every_icd_topic_as_each_agency(kafka_broker):
    _provision(kafka_broker)
    # Many vehicles and both UAVs on station from the start, so that in 4 simulated minutes (6 s at
    # 40x) every feed has records; with this seed each has several (the world depends on the seed only).
    config = ScenarioConfig(seed=7, minutes=4.0, targets=40, uav_first_sortie_within_s=0.0,
                            mix={"vehicle": 3, "local_vehicle": 2, "crossing": 1, "drone": 1})
    stop = threading.Event()
    result = {}
    worker = threading.Thread(target=lambda: result.update(
        summary=run_live(kafka_broker.bootstrap, config, stop, speed=40.0, progress=None, topic_prefix=PREFIX,
                         security_for=kafka_broker.client_config)))
    worker.start()
    worker.join(timeout=60.0)
    stop.set()
    worker.join(timeout=30.0)
    assert not worker.is_alive()
    summary = result["summary"]
    counts = _count(kafka_broker, [PREFIX + t for t in (*INPUT_TOPICS, HOTLIST_TOPIC)])
    assert all(n > 0 for n in counts.values()), {k: v for k, v in counts.items() if v == 0}
    assert sum(counts.values()) == summary.records
    assert summary.simulated_s == pytest.approx(240.0)


def test_run_live_stops_promptly_when_asked(kafka_broker):
    _provision(kafka_broker)
    stop = threading.Event()
    timer = threading.Timer(2.0, stop.set)
    timer.start()
    summary = run_live(kafka_broker.bootstrap, ScenarioConfig(seed=1, minutes=None, targets=10), stop,
                       progress=None, topic_prefix=PREFIX, security_for=kafka_broker.client_config)
    assert 1.5 <= summary.seconds < 5.0 and summary.records > 0
