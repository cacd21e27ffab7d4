"""ServiceMetrics: names and labels in the exposition, label bounding, the HTTP endpoint, and a
real Prometheus scraping it."""
from __future__ import annotations

import socket
import threading
import time
import urllib.request

import pytest
from hypothesis import given, settings, strategies as st
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from borderfuse.ingest.metrics import (
    LATENCY_BUCKETS_S, MAX_LABEL_LENGTH, MAX_LABEL_SETS, OVERFLOW_LABEL, MetricsError, ServiceMetrics, sanitise_label,
)

try:
    from prometheus_harness import PrometheusHarness, prometheus_available
except ImportError:  # tests/ became a package
    from tests.prometheus_harness import PrometheusHarness, prometheus_available

# The contract with the dashboards, the alert rules and the live service.
EXPECTED_NAMES = {
    "borderfuse_records_consumed_total": ("counter", {"topic"}),
    "borderfuse_dead_letters_total": ("counter", {"topic", "reason"}),
    "borderfuse_duplicates_total": ("counter", {"topic"}),
    "borderfuse_late_records_total": ("counter", {"topic"}),
    "borderfuse_consumer_lag_records": ("gauge", {"topic", "partition"}),
    "borderfuse_event_to_publish_latency_seconds": ("histogram", set()),
    "borderfuse_batch_processing_seconds": ("histogram", set()),
    "borderfuse_processing_latency_seconds": ("histogram", set()),
    "borderfuse_active_tracks": ("gauge", set()),
    "borderfuse_confirmed_tracks": ("gauge", set()),
    "borderfuse_incidents_total": ("counter", {"sector", "type"}),
    "borderfuse_last_event_timestamp_seconds": ("gauge", {"side"}),
    "borderfuse_watermark_timestamp_seconds": ("gauge", set()),
    "borderfuse_incidents_published_total": ("counter", {"topic"}),
    "borderfuse_publish_errors_total": ("counter", set()),
    "borderfuse_build_info": ("gauge", {"version"}),
    "borderfuse_broker_up": ("gauge", set()),
    "borderfuse_rules_info": ("gauge", {"version"}),
    "borderfuse_alarm_decision_latency_seconds": ("histogram", set()),
    "borderfuse_transactions_total": ("counter", {"outcome"}),
    "borderfuse_rollbacks_total": ("counter", {"reason"}),
    "borderfuse_last_commit_timestamp_seconds": ("gauge", set()),
}


def samples(metrics: ServiceMetrics) -> dict[tuple[str, frozenset], float]:
    """Parse the text exposition (what Prometheus sees) into {(sample name, labels): value}."""
    from prometheus_client import generate_latest
    text = generate_latest(metrics.registry).decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(metrics: ServiceMetrics, name: str, **labels) -> float | None:
    return samples(metrics).get((name, frozenset(labels.items())))


@pytest.fixture
def metrics() -> ServiceMetrics:
    return ServiceMetrics(CollectorRegistry(), version="1.2.3")


def exercise_all(m: ServiceMetrics) -> None:
    m.consumed("pl.radar.plots", 5)
    m.dead_letter("pl.radar.plots", "malformed")
    m.duplicate("de.radar.tracks")
    m.late("de.radar.tracks", 2)
    m.set_lag("pl.radar.plots", 0, 17)
    m.observe_latency(3.0)
    m.observe_batch(0.02)
    m.observe_processing_latency(0.7)
    m.set_tracks(active=7, confirmed=4)
    m.incident("S1", "border_crossing")
    m.saw_event("DE", 1_700_000_000_000_000)
    m.set_watermark(1_699_999_990_000_000)
    m.incident_published("incidents.S1")
    m.publish_error()
    m.set_broker_up(True)
    m.set_rules_version("0123abcd4567")
    m.observe_decision_latency(4.0)
    m.committed(1_700_000_001.0)
    m.rolled_back("ack_timeout")


def test_exposition_has_exactly_the_contract_names_types_and_labels(metrics):
    exercise_all(metrics)
    from prometheus_client import generate_latest
    text = generate_latest(metrics.registry).decode()
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.endswith("_created"):
                continue
            base = s.name
            if family.type == "histogram":
                base = family.name
            labels = set(s.labels) - ({"le"} if s.name.endswith("_bucket") else set())
            found.setdefault(base, (family.type, labels))
    assert found == EXPECTED_NAMES


def test_metric_names_lists_every_exported_sample_name(metrics):
    exercise_all(metrics)
    exported = {name for name, _ in samples(metrics)}
    assert exported <= metrics.metric_names()
    assert {"borderfuse_event_to_publish_latency_seconds_bucket", "borderfuse_records_consumed_total"} \
        <= metrics.metric_names()


@pytest.mark.parametrize("call, name, labels, expected", [
    (lambda m: m.consumed("pl.radar.plots", 5), "borderfuse_records_consumed_total", {"topic": "pl.radar.plots"}, 5),
    (lambda m: (m.consumed("t"), m.consumed("t", 2)), "borderfuse_records_consumed_total", {"topic": "t"}, 3),
    (lambda m: m.dead_letter("de.anpr.reads", "malformed"), "borderfuse_dead_letters_total",
     {"topic": "de.anpr.reads", "reason": "malformed"}, 1),
    (lambda m: m.duplicate("de.radar.tracks", 3), "borderfuse_duplicates_total", {"topic": "de.radar.tracks"}, 3),
    (lambda m: m.late("pl.uav.detections"), "borderfuse_late_records_total", {"topic": "pl.uav.detections"}, 1),
    (lambda m: m.set_lag("pl.radar.plots", 2, 40), "borderfuse_consumer_lag_records",
     {"topic": "pl.radar.plots", "partition": "2"}, 40),
    (lambda m: m.set_lag("pl.radar.plots", 0, -3), "borderfuse_consumer_lag_records",
     {"topic": "pl.radar.plots", "partition": "0"}, 0),
    (lambda m: m.set_tracks(9, 4), "borderfuse_active_tracks", {}, 9),
    (lambda m: m.set_tracks(9, 4), "borderfuse_confirmed_tracks", {}, 4),
    (lambda m: m.incident("S3", "loitering"), "borderfuse_incidents_total", {"sector": "S3", "type": "loitering"}, 1),
    (lambda m: m.saw_event("PL", 1_700_000_000_500_000), "borderfuse_last_event_timestamp_seconds",
     {"side": "PL"}, 1_700_000_000.5),
    # a late record does not move the newest event time back
    (lambda m: (m.saw_event("PL", 2_000_000), m.saw_event("PL", 1_000_000)),
     "borderfuse_last_event_timestamp_seconds", {"side": "PL"}, 2.0),
    (lambda m: m.set_watermark(1_500_000), "borderfuse_watermark_timestamp_seconds", {}, 1.5),
    (lambda m: m.incident_published("incidents.S2", 2), "borderfuse_incidents_published_total",
     {"topic": "incidents.S2"}, 2),
    (lambda m: m.publish_error(), "borderfuse_publish_errors_total", {}, 1),
    (lambda m: None, "borderfuse_build_info", {"version": "1.2.3"}, 1),
    (lambda m: m.observe_latency(3.0), "borderfuse_event_to_publish_latency_seconds_bucket", {"le": "2.0"}, 0),
    (lambda m: m.observe_latency(3.0), "borderfuse_event_to_publish_latency_seconds_bucket", {"le": "3.0"}, 1),
    (lambda m: m.observe_latency(-1.0), "borderfuse_event_to_publish_latency_seconds_bucket", {"le": "0.1"}, 1),
    (lambda m: m.observe_latency(3.0), "borderfuse_event_to_publish_latency_seconds_sum", {}, 3.0),
    (lambda m: m.observe_batch(0.02), "borderfuse_batch_processing_seconds_count", {}, 1),
    (lambda m: m.observe_processing_latency(0.7), "borderfuse_processing_latency_seconds_bucket", {"le": "0.5"}, 0),
    (lambda m: m.observe_processing_latency(0.7), "borderfuse_processing_latency_seconds_bucket", {"le": "1.0"}, 1),
])
def test_recorded_values_appear_in_the_exposition(metrics, call, name, labels, expected):
    call(metrics)
    assert value(metrics, name, **labels) == pytest.approx(expected)


def test_batch_timer_observes_one_batch(metrics):
    with metrics.batch_timer():
        time.sleep(0.01)
    assert value(metrics, "borderfuse_batch_processing_seconds_count") == 1
    assert value(metrics, "borderfuse_batch_processing_seconds_sum") >= 0.01


def test_latency_buckets_cover_a_tenth_of_a_second_to_a_minute():
    assert LATENCY_BUCKETS_S[0] == 0.1 and LATENCY_BUCKETS_S[-1] == 60.0
    assert list(LATENCY_BUCKETS_S) == sorted(set(LATENCY_BUCKETS_S))


def test_default_registry_is_private_so_two_instances_coexist():
    first, second = ServiceMetrics(), ServiceMetrics()
    first.consumed("t")
    assert value(first, "borderfuse_records_consumed_total", topic="t") == 1
    assert value(second, "borderfuse_records_consumed_total", topic="t") is None


@pytest.mark.parametrize("raw, expected", [
    ("pl.radar.plots", "pl.radar.plots"),
    ("incidents.S1", "incidents.S1"),
    ("DE", "DE"),
    (3, "3"),
    ("", "none"),
    ("a b\nc\"d", "a_b_c_d"),
    ("x" * 500, "x" * MAX_LABEL_LENGTH),
    ("Zürich", "Z_rich"),
])
def test_sanitise_label(raw, expected):
    assert sanitise_label(raw) == expected


@given(st.text(max_size=1000))
@settings(max_examples=200, deadline=None)
def test_sanitised_labels_are_short_printable_ascii(raw):
    out = sanitise_label(raw)
    assert 1 <= len(out) <= MAX_LABEL_LENGTH
    assert out.isascii() and out.isprintable() and '"' not in out and "\\" not in out


def test_label_sets_are_bounded_and_overflow_goes_to_other(metrics):
    for i in range(MAX_LABEL_SETS + 50):
        metrics.dead_letter("pl.anpr.reads", f"reason{i}")
    dead = {labels: v for (name, labels), v in samples(metrics).items() if name == "borderfuse_dead_letters_total"}
    assert len(dead) == MAX_LABEL_SETS + 1
    assert dead[frozenset({"topic": OVERFLOW_LABEL, "reason": OVERFLOW_LABEL}.items())] == 50
    # a label set seen before the cap keeps counting under its own name
    metrics.dead_letter("pl.anpr.reads", "reason0")
    assert value(metrics, "borderfuse_dead_letters_total", topic="pl.anpr.reads", reason="reason0") == 2


def test_http_server_serves_metrics_on_a_free_port(metrics):
    metrics.consumed("pl.radar.plots", 4)
    endpoint = metrics.start_http_server("127.0.0.1", 0)
    try:
        server, thread = endpoint  # unpacks as the (server, thread) pair
        assert thread.is_alive() and endpoint.port > 0
        body = urllib.request.urlopen(f"http://127.0.0.1:{endpoint.port}/metrics", timeout=5).read().decode()
        assert 'borderfuse_records_consumed_total{topic="pl.radar.plots"} 4.0' in body
    finally:
        endpoint.stop()


def test_http_server_on_a_taken_port_says_where(metrics):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(MetricsError, match=f"127.0.0.1:{port}"):
            metrics.start_http_server("127.0.0.1", port)


@pytest.mark.slow
@pytest.mark.skipif(not prometheus_available(), reason="needs /usr/bin/prometheus (Debian package prometheus)")
def test_real_prometheus_scrapes_the_consumed_rate(metrics):
    endpoint = metrics.start_http_server("127.0.0.1", 0)
    stop = threading.Event()

    def bump():  # a steady 50 records/s on one topic, 0 on another
        while not stop.is_set():
            metrics.consumed("pl.radar.plots", 5)
            metrics.consumed("de.radar.tracks", 0)
            stop.wait(0.1)

    bumper = threading.Thread(target=bump, daemon=True)
    bumper.start()
    try:
        with PrometheusHarness([f"127.0.0.1:{endpoint.port}"]) as prom:
            prom.wait_for('up{job="borderfuse"} == 1', timeout_s=20)
            assert prom.wait_for("sum by (topic) (rate(borderfuse_records_consumed_total[10s])) > 0", timeout_s=30)
            # rate() divides by the whole window, so judge its size only once the window holds 10 scrapes
            prom.wait_for('count_over_time(borderfuse_records_consumed_total{topic="pl.radar.plots"}[10s]) >= 10',
                          timeout_s=30)
            rates = prom.query("sum by (topic) (rate(borderfuse_records_consumed_total[10s])) > 0")
            by_topic = {r["metric"]["topic"]: float(r["value"][1]) for r in rates}
            assert set(by_topic) == {"pl.radar.plots"}
            assert 10 < by_topic["pl.radar.plots"] < 150  # ~50/s, loose for a loaded 2-core CI box
            info = prom.query("borderfuse_build_info")
            assert info[0]["metric"]["version"] == "1.2.3"
    finally:
        stop.set()
        bumper.join(timeout=5)
        endpoint.stop()
