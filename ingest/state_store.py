"""The fusion-state snapshot: what it holds, its bytes, and reading the latest committed one.

A snapshot is written to the compacted state topic (default `borderfuse.state`) inside the same
Kafka transaction as the incidents, dead letters and consumer offsets it belongs to, keyed by
the service's consumer group. So the latest committed snapshot and the group's committed offsets
always describe the same point in the input, and a restarted service resumes from exactly there.

Bytes: MAGIC, a 4-byte big-endian header length, the JSON header (offsets, counters), then the
pipeline's own state bytes compressed with zlib.
"""
from __future__ import annotations

import json
import struct
import time
import zlib

import attrs

MAGIC = b"BFS1"
_LEN = struct.Struct(">I")
STATE_TOPIC_CONFIG = {
    "cleanup.policy": "compact",
    "max.message.bytes": str(64 * 1024 * 1024),
    # Keep the active segment small so compaction can drop superseded snapshots soon.
    "segment.bytes": str(64 * 1024 * 1024),
    "min.compaction.lag.ms": "0",
    "min.cleanable.dirty.ratio": "0.1",
}


class SnapshotError(RuntimeError):
    """A snapshot could not be written or read back; the message says which and why."""


@attrs.frozen(slots=True)
class ServiceSnapshot:
    """The service's state after processing every input record before `offsets`.

    `offsets` maps (topic, partition) to the next offset to consume. `pipeline_state` is the
    opaque `Pipeline.snapshot()` bytes. `sequence` counts committed transactions (for logs).
    """

    offsets: dict[tuple[str, int], int]
    pipeline_state: bytes
    sequence: int = 0
    records_processed: int = 0
    needs_flush: bool = False  # records processed since the pipeline's last flush()
    created_unix_s: float = attrs.field(factory=time.time)
    rules_toml: str = ""      # the rules in force when applied live (`borderfuse rules apply`); "" = the settings' file
    rules_version: str = ""


def encode_snapshot(snapshot: ServiceSnapshot, level: int = 1) -> bytes:
    header = {
        "offsets": [[t, p, o] for (t, p), o in sorted(snapshot.offsets.items())],
        "sequence": snapshot.sequence,
        "records_processed": snapshot.records_processed,
        "needs_flush": snapshot.needs_flush,
        "created_unix_s": snapshot.created_unix_s,
        "rules_toml": snapshot.rules_toml,
        "rules_version": snapshot.rules_version,
    }
    head = json.dumps(header, separators=(",", ":")).encode()
    return MAGIC + _LEN.pack(len(head)) + head + zlib.compress(snapshot.pipeline_state, level)


def decode_snapshot(data: bytes, where: str = "state topic") -> ServiceSnapshot:
    if not data or data[:4] != MAGIC:
        raise SnapshotError(f"{where}: value is not a borderfuse snapshot (bad magic {data[:4]!r})")
    try:
        (size,) = _LEN.unpack_from(data, 4)
        header = json.loads(data[8:8 + size])
        body = zlib.decompress(data[8 + size:])
        offsets = {(str(t), int(p)): int(o) for t, p, o in header["offsets"]}
    except (struct.error, ValueError, KeyError, TypeError, zlib.error) as exc:
        raise SnapshotError(f"{where}: snapshot is corrupt: {type(exc).__name__}: {exc}") from exc
    return ServiceSnapshot(offsets=offsets, pipeline_state=body, sequence=int(header.get("sequence", 0)),
                           records_processed=int(header.get("records_processed", 0)),
                           needs_flush=bool(header.get("needs_flush", False)),
                           created_unix_s=float(header.get("created_unix_s", 0.0)),
                           rules_toml=str(header.get("rules_toml", "")), rules_version=str(header.get("rules_version", "")))


def read_latest_snapshot(bootstrap: str, topic: str, key: bytes, timeout_s: float = 60.0,
                         client_id: str = "borderfuse-state") -> ServiceSnapshot | None:
    """The latest committed snapshot under `key` in `topic`, or None when there is none.

    Reads read_committed from the beginning to the end offset; the caller must first have
    fenced any older producer (init_transactions), else its open transaction holds the end back.
    """
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id=client_id, group_id=None,
                             enable_auto_commit=False, isolation_level="read_committed",
                             fetch_max_bytes=128 * 1024 * 1024, max_partition_fetch_bytes=64 * 1024 * 1024)
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            return None
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps, timeout_ms=15000)
        latest: bytes | None = None
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp, timeout_ms=15000) < ends[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise SnapshotError(f"reading {topic} did not reach its end offsets {dict(ends)} in {timeout_s:.0f} s")
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    if record.key == key:
                        latest = record.value  # a null value (tombstone) forgets the state
        return None if latest is None else decode_snapshot(latest, f"{topic} key {key!r}")
    except KafkaError as exc:
        raise SnapshotError(f"reading the latest snapshot from {topic}: {type(exc).__name__}: {exc}") from exc
    finally:
        consumer.close()
