"""A crafted, corrupt or old (pickle) snapshot on `borderfuse.state`, on the real broker: the service refuses it
with one clear log line, never unpickles it, rebuilds its state from the input topics up to the consumer
group's committed offsets without publishing that part again, and carries on: every incident exactly once.

The fast tests use the counting stand-in pipeline of test_service_delivery (its ids hash every record
processed before, so a lost, doubled or reordered record in the rebuild changes every later id); the slow
one runs the real pipeline over the sample and compares with `borderfuse replay --as-live`.
"""
from __future__ import annotations

import collections
import logging
import threading
import time

import attrs
import pytest

from borderfuse.capture.publish import publish_records
from borderfuse.ingest import incident_feed as feed
from borderfuse.ingest.acls import provision
from borderfuse.ingest.service import FusionService
from borderfuse.ingest.settings import load_settings
from borderfuse.ingest.state_store import ServiceSnapshot, encode_snapshot
from borderfuse.sensors.base import RawRecord
from old_snapshots import old_service_snapshot
from test_service_delivery import N_RECORDS, CountingPipeline, _records, expected_ids
from test_service_kafka import keys, publish_capture, read_incidents, replay_reference, service_env  # noqa: F401

pytestmark = pytest.mark.integration
REFUSED = "latest snapshot refused, rebuilding the state from the topics"


def _crafted(kind: str, marker, offsets) -> bytes | None:
    """Three ways in: refused by the envelope (the old pickle; wrong types, lengths and versions take the
    same path, tests/test_service_state_store.py), refused by the pipeline's restore, and no snapshot."""
    if kind == "old pickle (v2)":
        return old_service_snapshot(marker, [(t, p, o) for (t, p), o in offsets.items()])
    if kind == "crafted pipeline state":   # a well-formed envelope whose pipeline state the pipeline refuses
        return encode_snapshot(ServiceSnapshot(offsets=offsets, pipeline_state=b'{"count": "lots"}'))
    assert kind == "tombstone"              # no snapshot at all, but the group has committed offsets
    return None


def _run(service: FusionService, until_records: int, timeout_s: float = 90) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=service.run, args=(stop,))
    thread.start()
    deadline = time.monotonic() + timeout_s
    try:
        while service.records_processed < until_records and time.monotonic() < deadline and thread.is_alive():
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join(60)
    assert not thread.is_alive()
    assert service.records_processed >= until_records, f"{service.records_processed} < {until_records}"


def _write_state(broker, service: FusionService, value: bytes | None) -> None:
    publish_records(broker.bootstrap, [RawRecord(service.state_topic, 0, -1, int(time.time() * 1000),
                                                 service.state_key, value)], security=broker.client_config())


@pytest.mark.parametrize("kind", ["old pickle (v2)", "crafted pipeline state", "tombstone"])
def test_refused_snapshot_is_rebuilt_from_the_topics_and_nothing_is_published_twice(kafka_broker, kind, tmp_path,
                                                                                     caplog):
    prefix = f"refuse{abs(hash(kind)) % 10_000}."
    env = {**kafka_broker.env("borderfuse"), "BORDERFUSE_KAFKA__GROUP_ID": f"{prefix}group",
           "BORDERFUSE_SERVICE__TOPIC_PREFIX": prefix, "BORDERFUSE_SERVICE__TRANSACTION_INTERVAL_MS": "200",
           "BORDERFUSE_KAFKA__POLL_MAX_RECORDS": "300"}
    settings = load_settings(environ=env)
    provision(settings)
    first = FusionService(settings, pipeline_factory=CountingPipeline)
    records = _records(prefix)
    publish_records(kafka_broker.bootstrap, records, security=kafka_broker.client_config())
    expected = expected_ids([attrs.evolve(r, topic=r.topic[len(prefix):]) for r in records])
    _run(first, N_RECORDS // 2)

    marker = tmp_path / "unpickled"
    offsets = {(prefix + "pl.radar.plots", 0): 1}
    _write_state(kafka_broker, first, _crafted(kind, marker, offsets))
    caplog.set_level(logging.INFO, logger="borderfuse.service")
    second = FusionService(settings, pipeline_factory=CountingPipeline)
    _run(second, N_RECORDS)

    published = collections.Counter(d["incident_id"] for d in feed.read_incidents(
        kafka_broker.bootstrap, second.sector_topic.values(), security=kafka_broker.client_config()))
    assert published == expected, (sum((expected - published).values()), sum((published - expected).values()))
    assert not marker.exists(), "the old snapshot's pickle was loaded"
    refusals = [r.getMessage() for r in caplog.records if REFUSED in r.getMessage()]
    assert len(refusals) == (0 if kind == "tombstone" else 1), refusals
    assert any("state rebuilt from" in r.getMessage() for r in caplog.records)


@pytest.mark.slow
def test_real_pipeline_refuses_an_old_pickle_snapshot_and_equals_replay(kafka_broker, sample_capture,
                                                                      replay_reference, tmp_path, caplog):
    prefix = "refusereal."
    env = service_env(kafka_broker, prefix, SERVICE__TRANSACTION_INTERVAL_MS="300", KAFKA__POLL_MAX_RECORDS="1000")
    settings = load_settings(environ=env)
    provision(settings)
    total = publish_capture(kafka_broker, prefix, sample_capture)
    first = FusionService(settings)
    _run(first, int(total * 0.4), timeout_s=300)
    marker = tmp_path / "unpickled"
    _write_state(kafka_broker, first, old_service_snapshot(marker, [(prefix + "pl.radar.plots", 0, 5)]))
    caplog.set_level(logging.INFO, logger="borderfuse.service")
    second = FusionService(settings)
    _run(second, total, timeout_s=400)
    published = read_incidents(kafka_broker, second)
    lost, doubled = keys(replay_reference) - keys(published), keys(published) - keys(replay_reference)
    assert (sum(lost.values()), sum(doubled.values())) == (0, 0), (lost, doubled)
    assert not marker.exists()
    assert [r for r in caplog.records if REFUSED in r.getMessage() and "pickle-based format" in r.getMessage()]
