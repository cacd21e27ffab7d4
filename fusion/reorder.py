"""Bounded event-time reorder buffer with a per-source watermark.

Why per source: live, the consumer interleaves topic-partitions arbitrarily (one poll may hold
minutes of one partition and nothing of another); replay reads them in arrival order. A single
"newest time seen minus lateness" watermark would then release different sets in the two modes.
Here every source (topic, partition) has its own newest event time; the watermark is the
minimum over the *active* sources minus the allowed lateness, so a source that is behind holds
the others back and live and replay release the same observations in the same order.

Transport bound: a record arrives at most `lateness` after its event time (the ICD's delivery
delays), so the watermark is never behind the newest arrival pushed minus `lateness`, whatever the
per-source rule below says: a sparse source (ANPR, UAV, a camera with nothing in view) or a silent
one does not hold the others back, and the watermark trails the input by the transport delay alone.

Idle sources are judged on arrival time (the records' broker timestamps), never on the wall
clock: a source with nothing in flight, i.e. none of whose records arrived within `idle_arrival_s`
of the newest arrival of any source, is ignored (sparse feeds such as ANPR or a camera with nothing
in view, or a silent/dead feed, must not stall everything). If it wakes up, its records behind the
watermark are late and the caller decides what to do with them (never dropped silently). Items
pushed without an arrival time fall back to the older rule: a source more than `idle_s` of event
time behind the newest is idle.

The watermark moves on every push, not on `release()`: whether an item is late is then a function
of the items pushed before it, never of how the caller batched them (live polls vs replay chunks).

Release order is (time_us, order key) - a pure function of the data, not of the arrival order.
The watermark never goes backwards. Memory is bounded: at most `max_items` are held; beyond
that the oldest items are released early (counted in `forced`).
"""
from __future__ import annotations

import heapq
from typing import Any, Hashable

import attrs


@attrs.define(slots=True)
class ReorderBuffer:
    lateness_us: int
    idle_us: int = 30_000_000
    max_items: int = 2_000_000
    watermark_us: int | None = None
    forced: int = 0
    idle_arrival_ms: int = 5_000
    _heap: list = attrs.field(factory=list)
    _newest: dict[Hashable, int] = attrs.field(factory=dict)
    _arrival: dict[Hashable, int] = attrs.field(factory=dict)   # source -> its newest arrival (ms)
    _newest_arrival: int | None = None
    _pushed: int = 0

    @classmethod
    def from_seconds(cls, lateness_s: float, idle_s: float = 30.0, max_items: int = 2_000_000,
                     idle_arrival_s: float = 5.0) -> "ReorderBuffer":
        return cls(int(lateness_s * 1e6), int(idle_s * 1e6), max_items, idle_arrival_ms=int(idle_arrival_s * 1000))

    @property
    def newest_event_times(self) -> dict[Hashable, int]:
        """{source: newest event time (µs)} (for the service's per-side gauges)."""
        return dict(self._newest)

    def __len__(self) -> int:
        return len(self._heap)

    def is_late(self, time_us: int) -> bool:
        return self.watermark_us is not None and time_us <= self.watermark_us

    def push(self, source: Hashable | None, time_us: int, order_key: tuple, item: Any,
             arrival_ms: int | None = None) -> bool:
        """Buffer an item; False (item not buffered) when it is already behind the watermark.

        `source` None: the item does not advance any source's event time (e.g. hotlist updates
        stamped with their broker time). `arrival_ms`: the record's broker timestamp, which drives
        idleness. The watermark is advanced after every push.
        """
        if source is not None:
            if time_us > self._newest.get(source, -1 << 62):
                self._newest[source] = time_us
            if arrival_ms is not None:
                if arrival_ms > self._arrival.get(source, -1 << 62):
                    self._arrival[source] = arrival_ms
        if arrival_ms is not None and (self._newest_arrival is None or arrival_ms > self._newest_arrival):
            self._newest_arrival = arrival_ms
        late = self.is_late(time_us)
        if not late:
            self._pushed += 1   # last tie-break only (keys are unique in practice): never compare items
            heapq.heappush(self._heap, (time_us, order_key, self._pushed, item))
        self.watermark_us = self.current_watermark()
        return not late

    def current_watermark(self) -> int | None:
        """The watermark the pushes so far give (never behind the one already reached)."""
        if not self._newest:
            return self.watermark_us
        if self._newest_arrival is not None and self._arrival:
            since = self._newest_arrival - self.idle_arrival_ms
            # a source never seen with an arrival time is judged on event time (below)
            active = [t for s, t in self._newest.items() if self._arrival.get(s, since) >= since]
        else:
            newest = max(self._newest.values())
            active = [t for t in self._newest.values() if newest - t <= self.idle_us]
        candidate = min(active) - self.lateness_us if active else None
        if self._newest_arrival is not None:
            # Transport bound: a record arrives at most `lateness` after its event time (the ICD's
            # delivery delays), so once a record arrived at A, every source's data up to A - lateness is
            # in, whether or not the source has sent anything lately (sparse or silent sources then
            # hold nothing back). What arrives later than that is late, as under the event-time rule.
            by_arrival = self._newest_arrival * 1000 - self.lateness_us
            candidate = by_arrival if candidate is None else max(candidate, by_arrival)
        if candidate is None:
            return self.watermark_us
        if self.watermark_us is None or candidate > self.watermark_us:
            return candidate
        return self.watermark_us

    def held(self) -> list[Any]:
        """The items still held (not released), in (time, key) order; they stay held."""
        return [entry[3] for entry in sorted(self._heap, key=lambda e: e[:3])]

    def release(self) -> list[Any]:
        """Items at or before the watermark, in (time, key) order."""
        self.watermark_us = self.current_watermark()
        out = []
        heap = self._heap
        wm = self.watermark_us
        while heap and (wm is not None and heap[0][0] <= wm):
            out.append(heapq.heappop(heap)[3])
        while len(heap) > self.max_items:
            time_us, _, _, item = heapq.heappop(heap)
            out.append(item)
            self.watermark_us = max(self.watermark_us or time_us, time_us)
            self.forced += 1
        return out

    def flush(self) -> list[Any]:
        """Everything still held (end of input / idle); the watermark moves to the newest item."""
        out = []
        while self._heap:
            time_us, _, _, item = heapq.heappop(self._heap)
            out.append(item)
            if self.watermark_us is None or time_us > self.watermark_us:
                self.watermark_us = time_us
        return out
