"""Merge the records of many partitions into one stream in broker-timestamp order.

A consumer with a backlog fetches each partition in large chunks, so one poll can hold minutes of
one topic and nothing of another. Fed like that, the fusion reorder buffer would see the
lagging topic's records as late and drop them. The merge holds each partition's records and
releases a record only once every partition that may still deliver an earlier one has been
heard from past its timestamp (Kafka Streams does the same, `max.task.idle.ms`). Ties are broken
by (topic, partition, offset), so the released order is a pure function of the data: a service
restarted from a snapshot feeds the pipeline exactly as an uninterrupted one would.

A partition blocks the merge only while it is behind its end offset, and only for records that
would order after its next one; a partition that is caught up holds nothing back. A lagging
partition that delivers nothing (a broker outage) blocks for as long as it lasts: skipping ahead
on a wall-clock timer would feed the pipeline another order than replay's and turn the held
records into late ones. `stalled_for()` tells the caller how long that has been, to say so.
"""
from __future__ import annotations

import heapq
from collections import deque
from typing import Hashable, Iterable

import attrs

from borderfuse.sensors.base import RawRecord

PartitionKey = tuple[str, int]
_NO_BOUND = (float("inf"),)
_BLOCK_ALL = (float("-inf"),)


def _order_key(record: RawRecord) -> tuple[int, str, int, int]:
    return (record.timestamp_ms, record.topic, record.partition, record.offset)


@attrs.define
class ArrivalMerge:
    """Per-partition FIFO buffers with a timestamp-ordered, deterministic release."""

    _buffers: dict[PartitionKey, deque] = attrs.field(factory=dict, init=False)
    _last_key: dict[PartitionKey, tuple] = attrs.field(factory=dict, init=False)
    _blocked_since: float | None = attrs.field(default=None, init=False)

    def add(self, records: Iterable[RawRecord]) -> None:
        for record in records:
            key = (record.topic, record.partition)
            self._buffers.setdefault(key, deque()).append(record)
            self._last_key[key] = (record.timestamp_ms, record.topic, record.partition, record.offset + 1)

    def buffered(self, key: PartitionKey | None = None) -> int:
        if key is not None:
            return len(self._buffers.get(key, ()))
        return sum(len(b) for b in self._buffers.values())

    def clear(self) -> None:
        """Drop everything (after a rollback the consumer re-fetches from the committed offsets)."""
        self._buffers.clear()
        self._last_key.clear()
        self._blocked_since = None

    def release(self, lagging: Iterable[Hashable], now_s: float, limit: int | None = None) -> list[RawRecord]:
        """Records safe to process now, oldest first.

        `lagging`: partitions whose consumer position is still behind their end offset (or not
        yet known). The next record of such a partition cannot order before (its last timestamp,
        its topic, partition, last offset + 1), so the release stops there; one never heard from
        blocks everything.
        """
        bound: tuple = _NO_BOUND
        for key in lagging:
            bound = min(bound, self._last_key.get(key, _BLOCK_ALL))
        if bound == _NO_BOUND:
            self._blocked_since = None
        heads = [(_order_key(buf[0]), key) for key, buf in self._buffers.items() if buf]
        heapq.heapify(heads)
        released: list[RawRecord] = []
        while heads and (limit is None or len(released) < limit):
            order, key = heads[0]
            if not order < bound:
                break
            buf = self._buffers[key]
            released.append(buf.popleft())
            if buf:
                heapq.heapreplace(heads, (_order_key(buf[0]), key))
            else:
                heapq.heappop(heads)
        if released or not any(self._buffers.values()):
            self._blocked_since = None
        elif self._blocked_since is None:
            self._blocked_since = now_s
        return released

    def stalled_for(self, now_s: float) -> float:
        """Seconds the merge has held records back waiting for a lagging partition (0: it is not)."""
        return 0.0 if self._blocked_since is None else now_s - self._blocked_since
