"""The fusion-state snapshot: what it holds, its bytes, and reading the latest committed one.

A snapshot is written to the compacted state topic (default `borderfuse.state`) inside the same
Kafka transaction as the incidents, dead letters and consumer offsets it belongs to, keyed by
the service's consumer group. So the latest committed snapshot and the group's committed offsets
always describe the same point in the input, and a restarted service resumes from exactly there.

Bytes: the state envelope (ingest.state_envelope: magic, versions, length, CRC) around a msgpack map of
explicit fields: offsets, counters, rules, and the pipeline's own state bytes (`Pipeline.snapshot()`, itself
an envelope around fusion.state_codec's fields). No pickle anywhere; a value this version cannot read raises
SnapshotRefused, and the service then rebuilds its state from the topics (docs/delivery.md).
"""
from __future__ import annotations

import time

import attrs

from borderfuse.ingest.publisher import RECONNECT_BACKOFF_MAX_MS
from borderfuse.ingest.state_envelope import KIND_SERVICE, StateFormatError, open_sealed, seal

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


class SnapshotRefused(SnapshotError):
    """The latest snapshot is not one this version restores (crafted, corrupt, another version, the old
    pickle format). Not transient: the service rebuilds its state from the topics instead (docs/delivery.md)."""


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


SERVICE_SCHEMA_VERSION = 1
# The service snapshot's fields and their types: exactly these, nothing else (bool is not an int here).
_FIELDS = {"offsets": list, "pipeline_state": bytes, "sequence": int, "records_processed": int, "needs_flush": bool,
           "created_unix_s": float, "rules_toml": str, "rules_version": str}


def encode_snapshot(snapshot: ServiceSnapshot, level: int | None = None) -> bytes:
    """The service snapshot in the state envelope (ingest.state_envelope): offsets and counters as explicit
    fields beside the pipeline's own bytes (already compressed by `Pipeline.snapshot`; `level` compresses
    again, for pipelines that do not)."""
    doc = {"offsets": [[t, p, o] for (t, p), o in sorted(snapshot.offsets.items())],
           "pipeline_state": bytes(snapshot.pipeline_state), "sequence": snapshot.sequence,
           "records_processed": snapshot.records_processed, "needs_flush": snapshot.needs_flush,
           "created_unix_s": float(snapshot.created_unix_s), "rules_toml": snapshot.rules_toml,
           "rules_version": snapshot.rules_version}
    return seal(KIND_SERVICE, SERVICE_SCHEMA_VERSION, doc, compress=level)


def decode_snapshot(data: bytes, where: str = "state topic") -> ServiceSnapshot:
    """Envelope bytes -> ServiceSnapshot; SnapshotRefused naming the field for anything malformed."""
    try:
        doc = open_sealed(data, KIND_SERVICE, SERVICE_SCHEMA_VERSION, where)
    except StateFormatError as exc:
        raise SnapshotRefused(str(exc)) from None
    if type(doc) is not dict or set(doc) != set(_FIELDS):
        keys = sorted(doc) if type(doc) is dict else type(doc).__name__
        raise SnapshotRefused(f"{where}: service snapshot fields are {keys}, expected {sorted(_FIELDS)}")
    for name, kind in _FIELDS.items():
        if type(doc[name]) is not kind:
            raise SnapshotRefused(f"{where}: service snapshot field {name} is {type(doc[name]).__name__}, "
                                  f"expected {kind.__name__}")
    offsets = {}
    for i, entry in enumerate(doc["offsets"]):
        if (type(entry) is not list or len(entry) != 3 or type(entry[0]) is not str or type(entry[1]) is not int
                or type(entry[2]) is not int or entry[1] < 0 or entry[2] < 0):
            raise SnapshotRefused(f"{where}: service snapshot field offsets[{i}] is not [topic, partition >= 0, "
                                  f"offset >= 0]: {entry!r:.80}")
        offsets[(entry[0], entry[1])] = entry[2]
    if any(doc[n] < 0 for n in ("sequence", "records_processed")):
        raise SnapshotRefused(f"{where}: service snapshot counters may not be negative")
    return ServiceSnapshot(offsets=offsets, pipeline_state=doc["pipeline_state"], sequence=doc["sequence"],
                           records_processed=doc["records_processed"], needs_flush=doc["needs_flush"],
                           created_unix_s=doc["created_unix_s"], rules_toml=doc["rules_toml"],
                           rules_version=doc["rules_version"])


def read_latest_snapshot(bootstrap: str, topic: str, key: bytes, timeout_s: float = 60.0,
                         client_id: str = "borderfuse-state", security: dict | None = None) -> ServiceSnapshot | None:
    """The latest committed snapshot under `key` in `topic`, or None when there is none.

    Reads read_committed from the beginning to the end offset; the caller must first have
    fenced any older producer (init_transactions), else its open transaction holds the end back.
    """
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id=client_id, group_id=None,
                             enable_auto_commit=False, isolation_level="read_committed",
                             fetch_max_bytes=128 * 1024 * 1024, max_partition_fetch_bytes=64 * 1024 * 1024,
                             reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS,
                             **(security or {}))
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
