"""`borderfuse publish CAPTURE`: a capture file's records into Kafka.

`publish_records` is the loop, reused by the simulator, the demo and tests: each record goes to
its own topic and partition with its key and value bytes unchanged and its recorded
`timestamp_ms` as the Kafka timestamp (so the ICD's "24 h from the broker timestamp" check
behaves the same live and in replay). The idempotent producer keeps per-partition order.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Callable, Iterable

import attrs

from borderfuse.ingest.kafka_probe import reachable
from borderfuse.capture.files import CaptureFormatError, CaptureReader
from borderfuse.sensors.base import RawRecord

Progress = Callable[[int, float], None]  # (records so far, seconds since start)


class PublishError(RuntimeError):
    """A record could not be delivered; the message says which topic and what to do."""


@attrs.frozen(slots=True)
class PublishResult:
    records: int
    seconds: float
    per_topic: tuple[tuple[str, int], ...]

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else float("inf")


def make_producer(bootstrap: str, client_id: str = "borderfuse-publish", **overrides):
    """A KafkaProducer for bulk, ordered, acknowledged delivery of raw bytes."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    # Idempotent: a broker restart mid-publish makes the producer retry, and retries must not
    # duplicate records (the broker drops a batch it already has by producer id and sequence).
    config = dict(bootstrap_servers=bootstrap, client_id=client_id, acks="all", linger_ms=5, enable_idempotence=True,
                  batch_size=256 * 1024, max_block_ms=15000, bootstrap_timeout_ms=10000,
                  max_request_size=8 * 1024 * 1024)
    config.update(overrides)
    if not reachable(bootstrap):
        raise PublishError(f"cannot reach Kafka at {bootstrap} (is the broker running? `borderfuse broker start`)")
    try:
        return KafkaProducer(**config)
    except KafkaError as exc:
        raise PublishError(f"cannot reach Kafka at {bootstrap}: {exc!r} (is the broker running? "
                           f"`borderfuse broker start`)") from exc


def publish_records(producer_or_bootstrap, records: Iterable[RawRecord], speed: float = 0.0,
                    progress: Progress | None = None, progress_every_s: float = 2.0,
                    keep_partition: bool = True, flush_timeout_s: float = 120.0,
                    order_window_ms: int = 500, security: dict | None = None) -> PublishResult:
    """Send `records` in order and flush; raise PublishError on any delivery failure.

    `speed` 0 sends as fast as possible; N > 0 paces by the records' timestamps (1 = real time).
    `order_window_ms`: records are appended window by window of this much timestamp (a flush between
    windows), so that across topics the broker's append order follows the timestamps as the sensors'
    own producers would; the producer's per-partition batching would otherwise append one topic's
    next minute before another's next second (0: no windows, fastest).
    `producer_or_bootstrap` is a KafkaProducer (left open) or a bootstrap string (producer made
    and closed here, as the principal of `security`, kafka_security.client_config).
    `keep_partition=False` lets the producer pick partitions by key.
    """
    from kafka.errors import KafkaError

    if speed < 0:
        raise ValueError(f"speed must be >= 0, got {speed}")
    owned = isinstance(producer_or_bootstrap, str)
    producer = make_producer(producer_or_bootstrap, **(security or {})) if owned else producer_or_bootstrap
    errors: list[BaseException] = []
    per_topic: dict[str, int] = {}
    started = time.monotonic()
    next_progress = started + progress_every_s
    first_ts_ms: int | None = None
    window_end_ms: int | None = None
    sent = 0
    try:
        for record in records:
            if order_window_ms > 0:
                if window_end_ms is not None and record.timestamp_ms >= window_end_ms:
                    try:
                        producer.flush(timeout=flush_timeout_s)
                    except KafkaError as exc:
                        raise PublishError(f"flushing {sent} records did not finish in {flush_timeout_s:.0f} s: "
                                           f"{exc!r}") from exc
                    window_end_ms = None
                if window_end_ms is None:
                    window_end_ms = record.timestamp_ms + order_window_ms
            if speed > 0:
                if first_ts_ms is None:
                    first_ts_ms = record.timestamp_ms
                delay = started + (record.timestamp_ms - first_ts_ms) / 1000.0 / speed - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            try:
                future = producer.send(record.topic, value=record.value, key=record.key,
                                       partition=record.partition if keep_partition else None,
                                       timestamp_ms=record.timestamp_ms)
            except (KafkaError, AssertionError, ValueError) as exc:
                # kafka-python: KafkaTimeoutError when the topic's metadata never comes (no such
                # topic, auto-create is off), ValueError/AssertionError for a partition the topic lacks.
                raise PublishError(f"cannot send to {record.topic}[{record.partition}]: {exc!r} -- does the "
                                   f"topic exist with enough partitions? (`borderfuse topics create`)") from exc
            future.add_errback(errors.append)
            sent += 1
            per_topic[record.topic] = per_topic.get(record.topic, 0) + 1
            if errors:
                break
            if progress is not None and time.monotonic() >= next_progress:
                progress(sent, time.monotonic() - started)
                next_progress += progress_every_s
        try:
            producer.flush(timeout=flush_timeout_s)
        except KafkaError as exc:
            raise PublishError(f"flushing {sent} records did not finish in {flush_timeout_s:.0f} s: {exc!r}") from exc
        if errors:
            raise PublishError(f"{len(errors)} record(s) were not delivered; first error: {errors[0]!r}")
    finally:
        if owned:
            producer.close(timeout=10)
    return PublishResult(sent, time.monotonic() - started, tuple(sorted(per_topic.items())))


def _print_progress(records: int, elapsed_s: float) -> None:
    print(f"publish: {records} records, {records / max(elapsed_s, 1e-9):,.0f}/s", file=sys.stderr, flush=True)


def register(sub):
    p = sub.add_parser(
        "publish", help="publish a capture file's records into Kafka",
        description="Produce every record of a capture file (.jsonl or .jsonl.gz) into Kafka: same topic, "
        "partition, key and value bytes, in the file's order per topic, with the recorded timestamp_ms as "
        "the Kafka timestamp. The topics must exist (`borderfuse topics create`). Bad lines are skipped "
        "and reported with their line number (exit status 1 if any); --strict stops at the first one.")
    p.add_argument("capture", metavar="CAPTURE", help="capture file (.jsonl or .jsonl.gz)")
    p.add_argument("--bootstrap", metavar="HOST:PORT",
                   help="Kafka bootstrap servers (default: settings kafka.bootstrap_servers)")
    p.add_argument("--principal", default="admin", metavar="NAME",
                   help="Kafka principal to publish as (password from kafka.credentials_file). Default admin: a "
                   "capture mixes both agencies' topics, which no single agency may write; a capture of one side "
                   "can go out as pl-agency or de-agency (development: admin is the super user)")
    p.add_argument("--speed", type=float, default=0.0, metavar="N",
                   help="0 (default): as fast as possible; N: paced by the recorded timestamps, N times "
                   "real time (1 = real time)")
    p.add_argument("--order-window-ms", type=int, default=500, metavar="MS",
                   help="append window by window of this much recorded time (a flush between windows), so the "
                   "broker appends across topics in timestamp order as the sensors' own producers would "
                   "(default 500; 0: fastest, but one topic's batches may then land ahead of another's)")
    p.add_argument("--strict", action="store_true",
                   help="stop at the first bad capture line (exit 1; the records before it are published)")
    p.set_defaults(func=_run)


def _run(args) -> int:
    bootstrap = args.bootstrap or args.settings.kafka.bootstrap_servers
    if args.speed < 0:
        print("borderfuse publish: --speed must be >= 0", file=sys.stderr)
        return 2

    def report_bad(exc: CaptureFormatError) -> None:
        print(f"publish: skipped bad line {exc}", file=sys.stderr)

    if not Path(args.capture).is_file():
        print(f"borderfuse publish: capture file {args.capture} does not exist", file=sys.stderr)
        return 1
    reader = CaptureReader(args.capture, strict=args.strict, on_bad_line=report_bad)
    try:
        from borderfuse.ingest.kafka_security import client_config

        # No broker there: that is the error to report (make_producer says so), before any credentials.
        security = client_config(args.settings.kafka, args.principal) if reachable(bootstrap) else {}
        result = publish_records(bootstrap, reader, args.speed, _print_progress,
                                 order_window_ms=max(args.order_window_ms, 0), security=security)
    except (PublishError, CaptureFormatError, FileNotFoundError) as exc:
        print(f"borderfuse publish: {exc}", file=sys.stderr)
        return 1
    topics = ", ".join(f"{t}={n}" for t, n in result.per_topic)
    print(f"published {result.records} records from {args.capture} to {bootstrap} in {result.seconds:.1f} s "
          f"({result.rate:,.0f}/s); bad lines skipped: {reader.bad_lines}; {topics}")
    return 1 if reader.bad_lines else 0
