"""`borderfuse record`: what is on some topics into a capture file.

`record_topics` consumes (no consumer group, nothing committed) until idle, a record count or
Ctrl-C, then returns the records in capture order: each partition in offset (arrival) order,
partitions interleaved by broker timestamp. It holds the recording in memory to merge it.
"""
from __future__ import annotations

import heapq
import sys
import time
from pathlib import Path
from typing import Callable

from borderfuse.ingest.kafka_probe import reachable
from borderfuse.capture.files import CaptureWriter
from borderfuse.sensors.base import RawRecord

Progress = Callable[[int, float], None]  # (records so far, seconds since start)


class RecordError(RuntimeError):
    """The topics could not be read; the message says what to do."""


def record_topics(bootstrap: str, topics: list[str], from_beginning: bool = False,
                  until_idle_s: float | None = None, max_records: int | None = None,
                  progress: Progress | None = None, progress_every_s: float = 2.0,
                  security: dict | None = None) -> list[RawRecord]:
    """Consume `topics` and return their records merged by broker timestamp (stable per partition).

    Stops after `until_idle_s` seconds without a new record, after `max_records`, or on Ctrl-C;
    with neither limit it runs until Ctrl-C. Starts at the end of each partition unless
    `from_beginning`. `security`: kafka_security.client_config of the principal reading.
    """
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError

    if not reachable(bootstrap):
        raise RecordError(f"cannot reach Kafka at {bootstrap} (is the broker running? `borderfuse broker start`)")
    try:
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="borderfuse-record", group_id=None,
                                 enable_auto_commit=False, auto_offset_reset="earliest", bootstrap_timeout_ms=10000,
                                 max_poll_records=10000, fetch_max_bytes=64 * 1024 * 1024,
                                 max_partition_fetch_bytes=16 * 1024 * 1024, **(security or {}))
    except KafkaError as exc:
        raise RecordError(f"cannot reach Kafka at {bootstrap}: {exc!r} (is the broker running? "
                          f"`borderfuse broker start`)") from exc
    per_partition: dict[tuple[str, int], list[RawRecord]] = {}
    count = 0
    started = time.monotonic()
    try:
        partitions = []
        for topic in topics:
            ids = consumer.partitions_for_topic(topic)
            if not ids:
                raise RecordError(f"topic {topic!r} does not exist on {bootstrap} (`borderfuse topics list`)")
            partitions += [TopicPartition(topic, p) for p in sorted(ids)]
        consumer.assign(partitions)
        if from_beginning:
            consumer.seek_to_beginning()
        else:
            consumer.seek_to_end()
        last_record = time.monotonic()
        next_progress = started + progress_every_s
        try:
            while max_records is None or count < max_records:
                batches = consumer.poll(timeout_ms=200)
                now = time.monotonic()
                for tp, batch in batches.items():
                    bucket = per_partition.setdefault((tp.topic, tp.partition), [])
                    bucket += [RawRecord(m.topic, m.partition, m.offset, m.timestamp, m.key, m.value)
                               for m in batch]
                    count += len(batch)
                    last_record = now
                if until_idle_s is not None and now - last_record >= until_idle_s:
                    break
                if progress is not None and now >= next_progress:
                    progress(count, now - started)
                    next_progress += progress_every_s
        except KeyboardInterrupt:
            pass  # the recording so far is kept
    finally:
        consumer.close()
    merged = list(heapq.merge(*per_partition.values(), key=lambda r: r.timestamp_ms))
    return merged[:max_records] if max_records is not None else merged


def _print_progress(records: int, elapsed_s: float) -> None:
    print(f"record: {records} records, {records / max(elapsed_s, 1e-9):,.0f}/s", file=sys.stderr, flush=True)


def register(sub):
    p = sub.add_parser(
        "record", help="record topics from Kafka into a capture file",
        description="Consume topics (no consumer group, nothing committed) and write their records to a "
        "capture file (.jsonl, or gzip when it ends in .gz): each partition in arrival order, topics "
        "interleaved by broker timestamp. Stops at --until-idle, --max-records or Ctrl-C, then writes.")
    p.add_argument("--topics", required=True, metavar="T1,T2",
                   help="comma-separated topics to record")
    p.add_argument("--out", required=True, metavar="FILE", help="capture file to write (.jsonl or .jsonl.gz)")
    p.add_argument("--bootstrap", metavar="HOST:PORT",
                   help="Kafka bootstrap servers (default: settings kafka.bootstrap_servers)")
    p.add_argument("--principal", metavar="NAME",
                   help="Kafka principal to read as (default: settings kafka.username, i.e. the service's, which "
                   "may read the raw feeds and the hotlist; other topics need a principal allowed to read them)")
    p.add_argument("--from-beginning", action="store_true",
                   help="start at each partition's first record (default: only records arriving from now)")
    p.add_argument("--until-idle", type=float, metavar="SECONDS",
                   help="stop after SECONDS without a new record")
    p.add_argument("--max-records", type=int, metavar="N", help="stop after N records")
    p.set_defaults(func=_run)


def _run(args) -> int:
    bootstrap = args.bootstrap or args.settings.kafka.bootstrap_servers
    topics = [t.strip() for t in args.topics.split(",") if t.strip()]
    if not topics:
        print("borderfuse record: --topics names no topic", file=sys.stderr)
        return 2
    started = time.monotonic()
    from borderfuse.ingest.kafka_security import client_config

    try:
        records = record_topics(bootstrap, topics, args.from_beginning, args.until_idle, args.max_records,
                                _print_progress, security=client_config(args.settings.kafka, args.principal)
                                if reachable(bootstrap) else {})  # no broker: report that, not the credentials
    except RecordError as exc:
        print(f"borderfuse record: {exc}", file=sys.stderr)
        return 1
    with CaptureWriter(Path(args.out)) as writer:
        writer.write_all(records)
    elapsed = time.monotonic() - started
    print(f"recorded {len(records)} records from {len(topics)} topic(s) to {args.out} in {elapsed:.1f} s "
          f"({len(records) / max(elapsed, 1e-9):,.0f}/s)")
    return 0
