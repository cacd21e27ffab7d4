"""The cross-partition timestamp merge that feeds the pipeline in a deterministic order."""
from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from borderfuse.ingest.arrival_merge import ArrivalMerge
from borderfuse.sensors.base import RawRecord


def rec(topic, offset, ts):
    return RawRecord(topic, 0, offset, ts, b"k", b"v")


def test_release_interleaves_partitions_by_timestamp():
    merge = ArrivalMerge()
    merge.add([rec("a", 0, 10), rec("a", 1, 30)])
    merge.add([rec("b", 0, 20), rec("b", 1, 40)])
    out = merge.release(lagging=[], now_s=0.0)
    assert [(r.topic, r.timestamp_ms) for r in out] == [("a", 10), ("b", 20), ("a", 30), ("b", 40)]


def test_ties_are_broken_by_topic_partition_offset():
    merge = ArrivalMerge()
    merge.add([rec("b", 0, 5)])
    merge.add([rec("a", 7, 5), rec("a", 8, 5)])
    assert [(r.topic, r.offset) for r in merge.release([], 0.0)] == [("a", 7), ("a", 8), ("b", 0)]


def test_a_lagging_empty_partition_bounds_the_release_at_its_last_timestamp():
    merge = ArrivalMerge()
    merge.add([rec("a", 0, 10)])  # a: heard up to 10, buffer now drained below
    assert len(merge.release([], 0.0)) == 1
    merge.add([rec("b", 0, 5), rec("b", 1, 15)])
    out = merge.release(lagging=[("a", 0)], now_s=1.0)
    assert [r.timestamp_ms for r in out] == [5]  # 15 must wait: a may still deliver 11..14
    assert merge.buffered(("b", 0)) == 1


def test_a_silent_lagging_partition_blocks_however_long_it_lasts():
    """A broker outage: the merge waits (and says for how long) rather than reorder the input."""
    merge = ArrivalMerge()
    merge.add([rec("b", 0, 5)])
    assert merge.release(lagging=[("a", 0)], now_s=10.0) == []
    assert merge.release(lagging=[("a", 0)], now_s=10_000.0) == []
    assert merge.stalled_for(10_030.0) == pytest.approx(10_020.0)
    merge.add([rec("a", 0, 3)])
    assert [(r.topic, r.offset) for r in merge.release(lagging=[], now_s=10_031.0)] == [("a", 0), ("b", 0)]
    assert merge.stalled_for(10_032.0) == 0.0


def test_lagging_partition_blocks_only_records_ordering_after_its_next_one():
    merge = ArrivalMerge()
    merge.add([rec("a", 0, 50), rec("b", 0, 10)])
    assert [r.topic for r in merge.release(lagging=[("a", 0)], now_s=0.0)] == ["b", "a"]
    merge.add([rec("a", 1, 60), rec("b", 1, 60)])
    assert [r.topic for r in merge.release(lagging=[("a", 0)], now_s=0.0)] == ["a"]  # a may send another 60


@pytest.mark.parametrize("limit", [1, 3, 100])
def test_limit_caps_one_release(limit):
    merge = ArrivalMerge()
    merge.add(rec("a", i, i) for i in range(10))
    assert len(merge.release([], 0.0, limit=limit)) == min(limit, 10)
    assert merge.buffered() == 10 - min(limit, 10)


def test_clear_forgets_everything():
    merge = ArrivalMerge()
    merge.add([rec("a", 0, 1)])
    merge.clear()
    assert merge.buffered() == 0 and merge.release([("a", 0)], 0.0) == []


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abcd"), st.integers(0, 50)), max_size=60), st.integers(1, 7),
       st.randoms(use_true_random=False))
def test_order_does_not_depend_on_how_records_arrive(items, chunk, rnd: random.Random):
    """Any split of the per-partition streams into polls gives the same released sequence."""
    streams: dict[str, list[RawRecord]] = {}
    for topic, dt in items:
        stream = streams.setdefault(topic, [])
        ts = (stream[-1].timestamp_ms if stream else 0) + dt  # per-partition timestamps never decrease
        stream.append(rec(topic, len(stream), ts))
    expected = sorted((r for s in streams.values() for r in s),
                      key=lambda r: (r.timestamp_ms, r.topic, r.partition, r.offset))
    merge = ArrivalMerge()
    cursors = {t: 0 for t in streams}
    out: list[RawRecord] = []
    while any(cursors[t] < len(streams[t]) for t in streams):
        topic = rnd.choice([t for t in streams if cursors[t] < len(streams[t])])
        merge.add(streams[topic][cursors[topic]:cursors[topic] + chunk])
        cursors[topic] += chunk
        lagging = [(t, 0) for t in streams if cursors[t] < len(streams[t])]
        out.extend(merge.release(lagging, now_s=0.0))
    out.extend(merge.release([], now_s=0.0))
    assert out == expected
