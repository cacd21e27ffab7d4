"""`borderfuse run` on the real broker: same incidents as replay, exactly-once across kill -9, broker
restart and SIGTERM, metrics scraped by a real Prometheus. Each test uses its own topic prefix and
consumer group on the session broker."""
from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import attrs
import pytest

from borderfuse.capture.files import read_capture
from borderfuse.capture.publish import publish_records
from borderfuse.ingest import incident_feed as feed
from borderfuse.ingest.acls import provision
from borderfuse.ingest.settings import load_settings
from borderfuse.ingest.service import FusionService
from prometheus_harness import PrometheusHarness, prometheus_available

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parent.parent


def service_env(broker, prefix: str, **extra: str) -> dict[str, str]:
    """The service's settings on `broker`, as principal borderfuse (its topics and ACLs: `provision`)."""
    env = {**broker.env("borderfuse"), "BORDERFUSE_KAFKA__GROUP_ID": f"{prefix}group",
           "BORDERFUSE_SERVICE__TOPIC_PREFIX": prefix}
    env.update({f"BORDERFUSE_{k.upper()}": v for k, v in extra.items()})
    return env


def publish_capture(broker, prefix: str, capture: Path) -> int:
    records = [attrs.evolve(r, topic=prefix + r.topic) for r in read_capture(capture)]
    return publish_records(broker.bootstrap, records, security=broker.client_config()).records


def read_incidents(broker, service: FusionService) -> list[dict]:
    """Every committed incident on the service's incident topics, decoded; keys and topics checked."""
    docs = feed.read_incidents(broker.bootstrap, service.sector_topic.values(), security=broker.client_config())
    for doc in docs:
        assert doc["_key"] == doc["incident_id"].encode()
        assert doc["_topic"] == service.sector_topic[doc["sector"]]
    return docs


def dead_letter_count(broker, prefix: str) -> int:
    from borderfuse.ingest.topics import INPUT_TOPICS, dlq_topic

    return len(feed.read_topics(broker.bootstrap, [prefix + dlq_topic(t) for t in INPUT_TOPICS],
                                security=broker.client_config()))


def keys(incidents) -> collections.Counter:
    return collections.Counter((d["incident_id"], d["type"], d["sector"]) for d in incidents)


@pytest.fixture(scope="module")
def replay_reference(sample_capture, tmp_path_factory) -> list[dict]:
    """What `borderfuse replay --as-live` writes for the sample: the reference the service must equal
    once it has consumed the whole sample (the live service never takes the end-of-input branch)."""
    import json

    out = tmp_path_factory.mktemp("replay") / "incidents.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BORDERFUSE_")}
    result = subprocess.run([sys.executable, "-m", "borderfuse.ingest.cli", "replay", str(sample_capture), "--out", str(out),
                             "--quiet", "--as-live"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]


def wait_until(predicate, timeout_s: float, what: str, poll_s: float = 0.5):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(poll_s)


def test_service_publishes_what_replay_raises_and_prometheus_scrapes_it(kafka_broker, sample_capture,
                                                                          replay_reference):
    from borderfuse.ingest.metrics import ServiceMetrics

    prefix = "eq."
    settings = load_settings(environ=service_env(kafka_broker, prefix))
    metrics = ServiceMetrics()
    service = FusionService(settings, metrics=metrics)
    service.check_broker()
    provision(settings)  # topics and ACLs, as admin; the service itself may not create topics
    service.ensure_topics()
    total = publish_capture(kafka_broker, prefix, sample_capture)
    server = metrics.start_http_server("127.0.0.1", 0)
    assert prometheus_available(), "scripts/setup.sh installs prometheus (apt package)"
    prom = PrometheusHarness([f"127.0.0.1:{server.port}"])
    stop = threading.Event()
    thread = threading.Thread(target=service.run, args=(stop,))
    try:
        prom.start()
        prom.wait_for("up == 1")
        thread.start()
        rate = prom.wait_for("sum(rate(borderfuse_records_consumed_total[15s])) > 0", timeout_s=60)
        assert float(rate[0]["value"][1]) > 0
        wait_until(lambda: service.records_processed >= total, 300, "the service to commit the whole input")
        # The dashboard's latency panels have data: what Prometheus scraped from the running service.
        for panel_metric in ("borderfuse_processing_latency_seconds_count", "borderfuse_batch_processing_seconds_count",
                             "borderfuse_alarm_decision_latency_seconds_count"):
            found = prom.wait_for(f"{panel_metric} > 0", timeout_s=60)
            assert float(found[0]["value"][1]) > 0, panel_metric
    finally:
        stop.set()
        thread.join(60)
        prom.stop()
        server.stop()
    assert not thread.is_alive()
    published = read_incidents(kafka_broker, service)
    assert published, "the sample raises incidents"
    assert keys(published) == keys(replay_reference)
    assert dead_letter_count(kafka_broker, prefix) == service.dead_letters_published > 0


def _start_run(env: dict, log: Path) -> subprocess.Popen:
    with open(log, "ab") as err:
        return subprocess.Popen([sys.executable, "-m", "borderfuse.ingest.cli", "run", "--no-metrics"],
                                env={**os.environ, **env}, cwd=REPO, stdout=subprocess.DEVNULL, stderr=err)


def _committed(broker, group: str) -> int:
    return feed.committed_total(broker.bootstrap, group, security=broker.client_config("ops"))  # ops: lag


def test_kill_9_sigterm_and_broker_restart_lose_and_duplicate_nothing(kafka_broker, sample_capture,
                                                                        replay_reference, tmp_path):
    prefix = "crash."
    env = service_env(kafka_broker, prefix, SERVICE__TRANSACTION_INTERVAL_MS="300",
                      KAFKA__POLL_MAX_RECORDS="1000")
    settings = load_settings(environ=env)
    probe = FusionService(settings)
    probe.check_broker()
    provision(settings)
    probe.ensure_topics()
    total = publish_capture(kafka_broker, prefix, sample_capture)
    group = settings.kafka.group_id
    log = tmp_path / "run.log"
    # Interrupt at several points of the stream: kill -9, SIGTERM, broker restart, kill -9.
    plan = [(0.2, "kill"), (0.45, "term"), (0.65, "broker"), (0.8, "kill")]
    proc = _start_run(env, log)
    try:
        for share, action in plan:
            try:
                wait_until(lambda: _committed(kafka_broker, group) >= share * total, 180,
                           f"{share:.0%} of the input committed", poll_s=0.2)
            except AssertionError as exc:
                proc.send_signal(signal.SIGUSR1)  # the service prints every thread's stack
                time.sleep(1)
                raise AssertionError(f"{exc}\n{log.read_text()[-6000:]}") from None
            if action == "kill":
                proc.kill()
                proc.wait(30)
                proc = _start_run(env, log)
            elif action == "term":
                proc.send_signal(signal.SIGTERM)
                assert proc.wait(60) == 0, "SIGTERM must stop cleanly"
                proc = _start_run(env, log)
            else:
                kafka_broker.stop()
                kafka_broker.start()
        wait_until(lambda: _committed(kafka_broker, group) >= total, 300, "all input committed")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    published = read_incidents(kafka_broker, probe)
    lost = keys(replay_reference) - keys(published)
    duplicated = keys(published) - keys(replay_reference)
    assert (sum(lost.values()), sum(duplicated.values())) == (0, 0), (lost, duplicated, log.read_text()[-3000:])
    assert "consuming 9 partitions from snapshot" in log.read_text()
