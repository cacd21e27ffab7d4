"""Reorder buffer: per-source watermark, idle sources, late items, order independent of arrival."""
import random

import pytest

from borderfuse.fusion.reorder import ReorderBuffer

S = 1_000_000


def test_release_waits_for_the_slowest_active_source():
    buf = ReorderBuffer(lateness_us=2 * S)
    buf.push("a", 10 * S, ("a",), "a10")
    buf.push("b", 5 * S, ("b",), "b5")
    assert buf.release() == []                     # watermark = min(10, 5) - 2 = 3 s
    buf.push("b", 11 * S, ("b",), "b11")
    assert buf.release() == ["b5"]                 # watermark = 10 - 2 = 8 s
    assert buf.watermark_us == 8 * S


def test_idle_source_does_not_stall_the_others():
    buf = ReorderBuffer(lateness_us=2 * S, idle_us=30 * S)
    buf.push("anpr", 1 * S, ("anpr",), "read")
    buf.push("radar", 50 * S, ("radar",), "plot")
    assert buf.release() == ["read"]               # anpr is 49 s behind: ignored, watermark 48 s


@pytest.mark.parametrize("time_s, late", [(7, True), (8, True), (9, False)])
def test_items_at_or_behind_the_watermark_are_refused(time_s, late):
    buf = ReorderBuffer(lateness_us=2 * S)
    buf.push("a", 10 * S, ("a",), "x")
    buf.release()
    assert buf.push("a", time_s * S, ("a", time_s), "y") is (not late)
    assert buf.is_late(time_s * S) is late


def test_released_order_does_not_depend_on_arrival_order():
    items = [(t * 100_000, f"s{t % 3}") for t in range(200)]

    def run(order):
        buf = ReorderBuffer(lateness_us=3 * S)
        out = []
        for t, src in order:
            assert buf.push(src, t, (src, t), (t, src))
            out += buf.release()
        return out + buf.flush()

    shuffled = sorted(items, key=lambda it: it[0] + random.Random(it[0]).uniform(0, 2 * S))
    assert run(shuffled) == run(items) == sorted(items)


def test_flush_moves_the_watermark_and_later_items_are_late():
    buf = ReorderBuffer(lateness_us=2 * S)
    buf.push("a", 10 * S, ("a",), "x")
    assert buf.flush() == ["x"]
    assert not buf.push("a", 9 * S, ("a",), "y")
