"""Service benchmark on one real broker, baselines measured in the same run.

1. Throughput, on an authenticated broker (SASL/SCRAM-SHA-512 + ACLs, the default; the service runs as
   principal borderfuse) and on a plain one (broker.authentication = false), both started in this run:
   the sample capture (../shared) published once into each; then (a) a bare kafka-python consume loop
   reads every record, (b) `borderfuse run` (in-process FusionService, real Pipeline, exactly-once
   transactions) processes every record. Records/s, service/bare, and authenticated/plain.
2. Latency at a fixed offered load: the live simulator at real time (event time = wall clock)
   feeds (a) a bare consume->produce echo (latency = echo visible to a read_committed reader minus
   the input record's timestamp) and (b) the service (latency = incident visible to a
   read_committed reader minus the incident's event time). p50/p99 and the ratio. The service's
   figure includes the fusion watermark (allowed lateness, 12 s by default) and the sensors'
   transport delays (up to 2.5 s): that is the product's latency, not overhead.

    python benchmarks/bench_service.py [--capture PATH] [--live-s 150] [--targets 60] [--throughput-only]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import attrs
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from borderfuse.devbroker.broker import KafkaBroker  # noqa: E402
from borderfuse.capture.files import read_capture  # noqa: E402
from borderfuse.capture.publish import publish_records  # noqa: E402
from borderfuse.ingest.acls import provision  # noqa: E402
from borderfuse.ingest.incident_feed import follow_incidents  # noqa: E402
from borderfuse.ingest.kafka_security import client_config  # noqa: E402
from borderfuse.ingest.service import FusionService  # noqa: E402
from borderfuse.ingest.settings import load_settings  # noqa: E402
from borderfuse.ingest.topics import HOTLIST_TOPIC, INPUT_TOPICS  # noqa: E402


def settings_for(broker: KafkaBroker, prefix: str, principal: str = "borderfuse"):
    """The service's settings on `broker` as `principal` (PLAINTEXT on a plain broker)."""
    return broker.settings_for(principal, load_settings(environ={
        "BORDERFUSE_KAFKA__GROUP_ID": f"{prefix}group", "BORDERFUSE_SERVICE__TOPIC_PREFIX": prefix}))


def security(broker: KafkaBroker, principal: str = "admin") -> dict:
    return client_config(settings_for(broker, "", principal).kafka)


def bare_consume(broker: KafkaBroker, topics: list[str], total: int) -> float:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, isolation_level="read_committed",
                             enable_auto_commit=False, max_poll_records=2000, **security(broker, "borderfuse"))
    tps = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    started, seen = time.perf_counter(), 0
    while seen < total:
        seen += sum(len(v) for v in consumer.poll(timeout_ms=500).values())
    elapsed = time.perf_counter() - started
    consumer.close()
    return total / elapsed


def service_throughput(broker: KafkaBroker, prefix: str, total: int) -> tuple[float, float]:
    service = FusionService(settings_for(broker, prefix))
    stop = threading.Event()
    thread = threading.Thread(target=service.run, args=(stop,))
    started = time.perf_counter()
    thread.start()
    while service.records_processed < total and thread.is_alive():
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    stop.set()
    thread.join()
    return total / elapsed, elapsed


def echo_latency(broker: KafkaBroker, prefix: str, duration_s: float, targets: int) -> np.ndarray:
    """Bare consume->produce echo of the live simulator's records; seconds from input timestamp to echo visible."""
    from kafka import KafkaConsumer, KafkaProducer

    from borderfuse.simulator import ScenarioConfig, run_live

    bootstrap, admin = broker.bootstrap, security(broker)  # the echo is a bare client: admin, no ACL to make
    stop = threading.Event()
    inputs = [prefix + t for t in INPUT_TOPICS]
    consumer = KafkaConsumer(*inputs, bootstrap_servers=bootstrap, group_id=f"{prefix}echo", auto_offset_reset="latest",
                             **admin)
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, acks="all", **admin)
    reader = KafkaConsumer(f"{prefix}echo", bootstrap_servers=bootstrap, group_id=None,
                           isolation_level="read_committed", auto_offset_reset="latest", **admin)
    consumer.poll(timeout_ms=2000)
    reader.poll(timeout_ms=2000)
    latencies: list[float] = []

    def read_echo():
        while not stop.is_set():
            for records in reader.poll(timeout_ms=200).values():
                now = time.time()
                latencies.extend(now - int(r.value) / 1000 for r in records)

    config = ScenarioConfig(minutes=None, start=None, targets=targets, start_stagger_s=0.0)
    threads = [threading.Thread(target=run_live, args=(bootstrap, config, stop), kwargs={
                   "progress": None, "topic_prefix": prefix, "security_for": lambda p: security(broker, p)}),
               threading.Thread(target=read_echo)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + duration_s
    while time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=200).values():
            for r in records:
                producer.send(f"{prefix}echo", str(r.timestamp).encode())
        producer.flush()
    stop.set()
    for thread in threads:
        thread.join()
    consumer.close()
    producer.close()
    reader.close()
    return np.array(latencies)


def service_latency(broker: KafkaBroker, prefix: str, duration_s: float, targets: int) -> np.ndarray:
    from borderfuse.simulator import ScenarioConfig, run_live

    bootstrap = broker.bootstrap
    stop = threading.Event()
    service = FusionService(settings_for(broker, prefix))
    config = ScenarioConfig(minutes=None, start=None, targets=targets, start_stagger_s=0.0)
    threads = [threading.Thread(target=service.run, args=(stop,)),
               threading.Thread(target=run_live, args=(bootstrap, config, stop),
                                kwargs={"progress": None, "topic_prefix": prefix,
                                        "security_for": lambda p: security(broker, p)})]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + duration_s
    # First reports only: an update (seq > 1) keeps the incident's original event time.
    latencies = [time.time() - doc["time_us"] / 1e6
                 for doc in follow_incidents(bootstrap, service.sector_topic.values(),
                                             lambda: time.monotonic() >= deadline, security=security(broker))
                 if doc.get("seq", 1) == 1]
    stop.set()
    for thread in threads:
        thread.join()
    return np.array(latencies)


def pct(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def throughput(broker: KafkaBroker, capture: Path) -> tuple[int, float, float, float]:
    """(records, bare consume records/s, service records/s, service seconds) for the capture on `broker`."""
    prefix = "tput."
    provision(settings_for(broker, prefix, "admin"))   # topics (+ ACLs when authenticated), as admin
    records = [attrs.evolve(r, topic=prefix + r.topic) for r in read_capture(capture)]
    publish_records(broker.bootstrap, records, security=security(broker))
    total = len(records)
    bare = bare_consume(broker, [prefix + t for t in (*INPUT_TOPICS, HOTLIST_TOPIC)], total)
    svc, elapsed = service_throughput(broker, prefix, total)
    return total, bare, svc, elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--capture", type=Path, default=REPO.parent / "shared" / "scenarios" / "sample" / "capture.jsonl.gz")
    parser.add_argument("--live-s", type=float, default=150.0, help="seconds of live load per latency run")
    parser.add_argument("--targets", type=int, default=60, help="simulated targets at once (offered load)")
    parser.add_argument("--throughput-only", action="store_true", help="skip the latency runs (2 x --live-s)")
    args = parser.parse_args()
    settings = load_settings()
    figures = {}
    with tempfile.TemporaryDirectory(prefix="bench-service-") as tmp:
        for authenticated in (False, True):  # the plain broker first, stopped before the other starts
            label = "SASL/SCRAM + ACLs" if authenticated else "plain (no auth)"
            broker = KafkaBroker.from_settings(settings.broker, data_dir=Path(tmp) / label.split()[0], port=0,
                                               authentication=authenticated,
                                               credentials_file=Path(tmp) / "credentials.toml").start()
            try:
                total, bare, svc, elapsed = figures[authenticated] = throughput(broker, args.capture)
                print(f"throughput on the {label} broker ({total} records of {args.capture.name}):")
                print(f"  bare kafka-python consume : {bare:10.0f} records/s")
                print(f"  borderfuse run (EOS)      : {svc:10.0f} records/s  ({elapsed:.1f} s)")
                print(f"  ratio service / bare      : {svc / bare:10.3f}", flush=True)
                if not authenticated or args.throughput_only:
                    continue
                for p in ("echo.", "live."):
                    provision(settings_for(broker, p, "admin"))
                from borderfuse.ingest.topics import TopicSpec, ensure_topics
                ensure_topics(broker.bootstrap, [TopicSpec("echo.echo")], security=security(broker))
                echo = echo_latency(broker, "echo.", args.live_s, args.targets)
                live = service_latency(broker, "live.", args.live_s, args.targets)
                print(f"latency on the {label} broker at the live simulator's load ({args.targets} targets, "
                      f"real time, {args.live_s:.0f} s each):")
                print(f"  bare consume->produce echo: p50 {pct(echo, 50) * 1e3:8.1f} ms  p99 {pct(echo, 99) * 1e3:8.1f} ms  "
                      f"({len(echo)} records)")
                print(f"  event -> incident visible : p50 {pct(live, 50):8.2f} s   p99 {pct(live, 99):8.2f} s   "
                      f"({len(live)} incidents)")
                print(f"  ratio p50 service / echo  : {pct(live, 50) / pct(echo, 50):10.1f}")
            finally:
                broker.stop()
    (_, bare_p, svc_p, _), (_, bare_a, svc_a, _) = figures[False], figures[True]
    print("authenticated / plain, same run:")
    print(f"  bare consume              : {bare_a / bare_p:10.3f}")
    print(f"  borderfuse run (EOS)      : {svc_a / svc_p:10.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
