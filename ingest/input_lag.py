"""The service's view of how far behind its inputs it is: which partitions have records it has not
taken yet (for the arrival merge) and the consumer lag per partition (for ops, /metrics)."""
from __future__ import annotations

from kafka import KafkaConsumer, TopicPartition

# Bound every blocking client call: an unbounded one can stall the loop silently across a broker restart.
POSITION_TIMEOUT_MS = 15000


class InputLag:
    """End offsets and processed positions per input partition (keys without the topic prefix)."""

    def __init__(self, prefix: str, metrics=None):
        self.prefix = prefix
        self.metrics = metrics
        self.ends: dict[tuple[str, int], int] = {}       # last known end offset per input partition
        self.positions: dict[tuple[str, int], int] = {}  # next offset to process per input partition

    def _key(self, tp: TopicPartition) -> tuple[str, int]:
        return tp.topic[len(self.prefix):], tp.partition

    def lagging(self, consumer: KafkaConsumer, tps: list[TopicPartition],
                ends: dict[TopicPartition, int]) -> list[tuple[str, int]]:
        """Partitions whose position is behind their end (highwater of the last fetch, or the end
        offset asked for by `update`: an empty partition's fetch may report no highwater)."""
        return [self._key(tp) for tp in tps
                if consumer.position(tp, timeout_ms=POSITION_TIMEOUT_MS) < max(consumer.highwater(tp) or 0,
                                                                                 ends.get(tp, 0))]

    def update(self, consumer: KafkaConsumer, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        """Ask the broker for every partition's end offset (one ListOffsets round trip) and report the lag."""
        ends = consumer.end_offsets(tps, timeout_ms=POSITION_TIMEOUT_MS)
        for tp in tps:
            self.ends[self._key(tp)] = ends[tp]
            self.positions[self._key(tp)] = consumer.position(tp, timeout_ms=POSITION_TIMEOUT_MS)
        self.report_stale()
        return ends

    def processed(self, topic: str, partition: int, offset: int) -> None:
        """The record at `offset` of an (unprefixed) input partition has been processed."""
        self.positions[(topic, partition)] = offset + 1

    def restored(self, offsets: dict[tuple[str, int], int]) -> None:
        """Positions from a restored snapshot (prefixed topic names, next offsets)."""
        self.positions.update({(t[len(self.prefix):], p): o for (t, p), o in offsets.items()})

    def report_stale(self) -> None:
        """Lag from the last known end offsets and the last processed positions: it stays true
        (and grows only as the ends did) while the broker cannot be asked."""
        if self.metrics is not None:
            for key, end in self.ends.items():
                self.metrics.set_lag(*key, max(end - self.positions.get(key, 0), 0))
