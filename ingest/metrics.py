"""The service's Prometheus metrics: one `ServiceMetrics` object owns them all.

Names follow the Prometheus conventions (`borderfuse_` prefix, base units, `_total` for
counters). The dashboards in dashboards/ and the alert rules rely on these exact names.

Label values come from bounded sets (topics, partitions, sectors, incident types, sides,
dead-letter reason codes). Never pass plates, track ids or free text as a label value: each
value is sanitised and truncated, and each metric accepts at most `MAX_LABEL_SETS` distinct
label combinations; further ones are folded into the value `other` so a bug cannot blow up
the time-series count.

Times arrive as the pipeline's UTC microseconds since the epoch and are exported in seconds.
"""
from __future__ import annotations

import re
import threading
from importlib import metadata
from typing import NamedTuple

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import start_http_server as _prometheus_start_http_server

NAMESPACE = "borderfuse"
MAX_LABEL_LENGTH = 64
MAX_LABEL_SETS = 256
OVERFLOW_LABEL = "other"
# Event-to-publish latency: incidents wait for the watermark (12 s allowed lateness by default)
# plus transport (<= 2.5 s), so most mass sits between 1 s and 30 s.
LATENCY_BUCKETS_S = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 12.5, 15.0, 20.0, 30.0, 45.0, 60.0)
# Poll-to-acknowledge wall time: transaction interval (1 s) and merge wait (2 s) dominate.
PROCESSING_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 20.0, 30.0, 60.0)
BATCH_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

_SAMPLE_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
}
_UNSAFE_LABEL_CHARS = re.compile(r"[^A-Za-z0-9_.:\->]")


class MetricsError(RuntimeError):
    """The metrics endpoint could not be started; the message says where and why."""


def sanitise_label(value: object) -> str:
    """A label value safe to export: printable ASCII subset, at most MAX_LABEL_LENGTH chars."""
    text = _UNSAFE_LABEL_CHARS.sub("_", str(value))[:MAX_LABEL_LENGTH]
    return text or "none"


def _package_version() -> str:
    try:
        return metadata.version("borderfuse")
    except metadata.PackageNotFoundError:
        return "unknown"


class MetricsServer(NamedTuple):
    """What `start_http_server` returns; unpacks as `(server, thread)`."""

    server: object
    thread: threading.Thread

    @property
    def port(self) -> int:
        """The port actually bound (useful when 0 was asked for)."""
        return self.server.server_port

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class _BoundedLabels:
    """Sanitises label values and caps the number of distinct label sets of one metric."""

    __slots__ = ("_seen", "_lock", "_arity")

    def __init__(self, arity: int):
        self._seen: set[tuple[str, ...]] = set()
        self._lock = threading.Lock()
        self._arity = arity

    def __call__(self, *values: object) -> tuple[str, ...]:
        key = tuple(sanitise_label(v) for v in values)
        with self._lock:
            if key in self._seen:
                return key
            if len(self._seen) >= MAX_LABEL_SETS:
                return (OVERFLOW_LABEL,) * self._arity
            self._seen.add(key)
            return key


class ServiceMetrics:
    """All metrics of one service instance, registered in `registry` (a fresh one by default;
    pass `prometheus_client.REGISTRY` to also export the process/platform collectors)."""

    def __init__(self, registry: CollectorRegistry | None = None, version: str | None = None):
        self.registry = registry if registry is not None else CollectorRegistry()
        reg = self.registry
        self._records_consumed = Counter(
            "records_consumed", "Records taken from Kafka (or a capture), including those dead-lettered.",
            ["topic"], namespace=NAMESPACE, registry=reg)
        self._dead_letters = Counter(
            "dead_letters", "Records sent to <topic>.dlq, by reason code.",
            ["topic", "reason"], namespace=NAMESPACE, registry=reg)
        self._duplicates = Counter(
            "duplicates", "Byte-identical redeliveries dropped by the duplicate filter.",
            ["topic"], namespace=NAMESPACE, registry=reg)
        self._late_records = Counter(
            "late_records", "Records whose event time was already behind the watermark.",
            ["topic"], namespace=NAMESPACE, registry=reg)
        self._consumer_lag = Gauge(
            "consumer_lag_records", "Records between the consumer position and the partition end.",
            ["topic", "partition"], namespace=NAMESPACE, registry=reg)
        self._latency = Histogram(
            "event_to_publish_latency_seconds", "Wall time of publishing an incident minus its event time.",
            namespace=NAMESPACE, registry=reg, buckets=LATENCY_BUCKETS_S)
        self._processing = Histogram(
            "processing_latency_seconds", "Wall time from polling a record to Kafka acknowledging its incident "
            "(the pipeline's own share of the latency, without the event-time wait).",
            namespace=NAMESPACE, registry=reg, buckets=PROCESSING_BUCKETS_S)
        self._batch = Histogram(
            "batch_processing_seconds", "Time to decode, fuse and publish one polled batch.",
            namespace=NAMESPACE, registry=reg, buckets=BATCH_BUCKETS_S)
        self._active_tracks = Gauge(
            "active_tracks", "Tracks currently held by the tracker.", namespace=NAMESPACE, registry=reg)
        self._confirmed_tracks = Gauge(
            "confirmed_tracks", "Active tracks that are confirmed.", namespace=NAMESPACE, registry=reg)
        self._incidents = Counter(
            "incidents", "Incidents raised, by sector and type.",
            ["sector", "type"], namespace=NAMESPACE, registry=reg)
        self._last_event = Gauge(
            "last_event_timestamp_seconds", "Newest event time seen per side (DE/PL), Unix seconds.",
            ["side"], namespace=NAMESPACE, registry=reg)
        self._watermark = Gauge(
            "watermark_timestamp_seconds", "The fusion watermark (event time), Unix seconds.",
            namespace=NAMESPACE, registry=reg)
        self._incidents_published = Counter(
            "incidents_published", "Incident records acknowledged by Kafka, by output topic.",
            ["topic"], namespace=NAMESPACE, registry=reg)
        self._publish_errors = Counter(
            "publish_errors", "Incident records Kafka did not acknowledge.", namespace=NAMESPACE, registry=reg)
        self._decision = Histogram(
            "alarm_decision_latency_seconds", "decided_at - event time of each incident's first report: how long "
            "the evidence took to decide it (broker time, so the same in replay).",
            namespace=NAMESPACE, registry=reg, buckets=LATENCY_BUCKETS_S)
        self._broker_up = Gauge(
            "broker_up", "1 while the service reaches the Kafka broker (its last transaction or probe "
            "succeeded), 0 while it does not.", namespace=NAMESPACE, registry=reg)
        self._transactions = Counter(
            "transactions", "Kafka transactions by outcome: committed, or aborted (rolled back).",
            ["outcome"], namespace=NAMESPACE, registry=reg)
        self._rollbacks = Counter(
            "rollbacks", "Roll-backs to the last committed snapshot, by reason (the error's type).",
            ["reason"], namespace=NAMESPACE, registry=reg)
        self._last_commit = Gauge(
            "last_commit_timestamp_seconds", "Unix time of the last committed transaction (0: none yet).",
            namespace=NAMESPACE, registry=reg)
        self._rules_info = Gauge(
            "rules_info", "Always 1 for the rules in force; the version label (hash of the rules text, or 'settings' "
            "for the settings' rules file) says which.", ["version"], namespace=NAMESPACE, registry=reg)
        self._build_info = Gauge(
            "build_info", "Always 1; the version label says what runs.", ["version"],
            namespace=NAMESPACE, registry=reg)
        self._build_info.labels(sanitise_label(version or _package_version())).set(1)

        self._bounded = {name: _BoundedLabels(arity) for name, arity in (
            ("consumed", 1), ("dead", 2), ("dup", 1), ("late", 1), ("lag", 2), ("inc", 2),
            ("side", 1), ("pub", 1), ("why", 1))}
        self._last_event_s: dict[str, float] = {}
        self._last_event_lock = threading.Lock()

    # --- input -------------------------------------------------------------------------
    def consumed(self, topic: str, n: int = 1) -> None:
        self._records_consumed.labels(*self._bounded["consumed"](topic)).inc(n)

    def dead_letter(self, topic: str, reason: str, n: int = 1) -> None:
        """`reason` is the DecodeError's `kind` (a short stable code), never its message."""
        self._dead_letters.labels(*self._bounded["dead"](topic, reason)).inc(n)

    def duplicate(self, topic: str, n: int = 1) -> None:
        self._duplicates.labels(*self._bounded["dup"](topic)).inc(n)

    def late(self, topic: str, n: int = 1) -> None:
        self._late_records.labels(*self._bounded["late"](topic)).inc(n)

    def set_lag(self, topic: str, partition: int, lag: int) -> None:
        self._consumer_lag.labels(*self._bounded["lag"](topic, partition)).set(max(lag, 0))

    def saw_event(self, side: str, time_us: int) -> None:
        """Newest event time per side only moves forward: late records do not pull it back."""
        (label,) = self._bounded["side"](side)
        seconds = time_us / 1e6
        with self._last_event_lock:
            if seconds <= self._last_event_s.get(label, float("-inf")):
                return
            self._last_event_s[label] = seconds
            self._last_event.labels(label).set(seconds)

    # --- fusion ------------------------------------------------------------------------
    def observe_batch(self, seconds: float) -> None:
        self._batch.observe(seconds)

    def batch_timer(self):
        """Context manager timing one batch: `with metrics.batch_timer(): ...`."""
        return self._batch.time()

    def set_tracks(self, active: int, confirmed: int) -> None:
        self._active_tracks.set(active)
        self._confirmed_tracks.set(confirmed)

    def set_watermark(self, watermark_us: int) -> None:
        self._watermark.set(watermark_us / 1e6)

    def incident(self, sector: str, incident_type: str) -> None:
        self._incidents.labels(*self._bounded["inc"](sector, incident_type)).inc()

    # --- output ------------------------------------------------------------------------
    def observe_latency(self, seconds: float) -> None:
        """Event-to-publish latency of one incident; negative values (clock skew) count as 0."""
        self._latency.observe(max(seconds, 0.0))

    def observe_decision_latency(self, seconds: float) -> None:
        """decided_at - event time of one incident's first report."""
        self._decision.observe(max(seconds, 0.0))

    def observe_processing_latency(self, seconds: float) -> None:
        """Poll-to-acknowledge wall time of one incident."""
        self._processing.observe(max(seconds, 0.0))

    def incident_published(self, topic: str, n: int = 1) -> None:
        self._incidents_published.labels(*self._bounded["pub"](topic)).inc(n)

    def publish_error(self, n: int = 1) -> None:
        self._publish_errors.inc(n)

    # --- health ------------------------------------------------------------------------
    def set_rules_version(self, version: str) -> None:
        self._rules_info.clear()
        self._rules_info.labels(sanitise_label(version)).set(1)

    def set_broker_up(self, up: bool) -> None:
        self._broker_up.set(1 if up else 0)

    def committed(self, unix_s: float) -> None:
        self._transactions.labels("committed").inc()
        self._last_commit.set(unix_s)

    def rolled_back(self, reason: str) -> None:
        """One aborted transaction and roll-back to the last snapshot; `reason` is a short code."""
        self._transactions.labels("aborted").inc()
        self._rollbacks.labels(*self._bounded["why"](reason)).inc()

    # --- export ------------------------------------------------------------------------
    def metric_names(self) -> frozenset[str]:
        """Every sample name this object can export (with the _total, _bucket ... suffixes)."""
        names = set()
        for family in self.registry.collect():
            names.update(family.name + suffix for suffix in _SAMPLE_SUFFIXES.get(family.type, ("",)))
        return frozenset(names)

    def start_http_server(self, host: str, port: int) -> MetricsServer:
        """Serve /metrics on host:port in a daemon thread; port 0 picks a free one (see `.port`)."""
        try:
            server, thread = _prometheus_start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise MetricsError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from exc
        return MetricsServer(server, thread)
