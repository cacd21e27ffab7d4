"""Reorder buffer: per-source watermark, idle sources, late items, order independent of arrival."""
import random

import pytest

from borderfuse.fusion.reorder import ReorderBuffer

S = 1_000_000


def test_release_waits_for_the_slowest_active_source():
    buf = ReorderBuffer(lateness_us=2 * S)
    buf.push("a", 10 * S, ("a",), "a10")           # watermark 8 s (a is the only source yet)
    assert buf.push("b", 9 * S, ("b",), "b9")      # min(10, 9) - 2 = 7: the watermark stays at 8
    buf.push("a", 14 * S, ("a",), "a14")
    assert buf.release() == []                     # min(14, 9) - 2 = 7 s: b holds a back
    buf.push("b", 13 * S, ("b",), "b13")
    assert buf.release() == ["b9", "a10"]          # min(14, 13) - 2 = 11 s
    assert buf.watermark_us == 11 * S


def test_the_watermark_moves_on_every_push_so_batching_cannot_change_what_is_late():
    pushes = [("a", 10), ("b", 9), ("a", 20), ("b", 12), ("a", 21), ("b", 8), ("b", 22), ("a", 15)]

    def late_items(batch):
        buf, late = ReorderBuffer(lateness_us=2 * S), []
        for i, (src, t) in enumerate(pushes):
            if not buf.push(src, t * S, (src, t), t):
                late.append((src, t))
            if (i + 1) % batch == 0:
                buf.release()
        return late

    assert late_items(1) == late_items(3) == late_items(100) == [("b", 8), ("a", 15)]


@pytest.mark.parametrize("read_s, arrivals_ms, released", [
    # anpr's last arrival is 6 s behind the newest: idle (5 s), the watermark follows the radar alone
    (1, (0, 6_000), ["read"]),
    # anpr arrived 4 s before the newest but its read (1 s) is older than the newest arrival minus the
    # lateness (6 - 2 = 4 s): nothing of it can be in flight any more, the read is released
    (1, (2_000, 6_000), ["read"]),
    # a read at 5 s is newer than that bound: held
    (5, (5_500, 6_000), []),
])
def test_idleness_is_judged_on_arrival_time(read_s, arrivals_ms, released):
    buf = ReorderBuffer(lateness_us=2 * S, idle_arrival_ms=5_000)
    buf.push("anpr", read_s * S, ("anpr",), "read", arrival_ms=arrivals_ms[0])
    buf.push("radar", 9 * S, ("radar",), "plot", arrival_ms=arrivals_ms[1])
    assert buf.release() == released


@pytest.mark.parametrize("arrival_s, watermark_s", [
    (4, 2),     # the event-time rule: min(newest per source) - lateness = 2 s; the arrival bound is the same
    (9, 7),     # a later arrival moves the watermark to arrival - lateness although no source is newer
    (30, 28),   # a silent source cannot hold it back: the transport bound covers every source
])
def test_the_watermark_follows_the_newest_arrival_minus_the_lateness(arrival_s, watermark_s):
    buf = ReorderBuffer(lateness_us=2 * S, idle_arrival_ms=60_000)
    buf.push("slow", 4 * S, ("slow",), "a", arrival_ms=4_000)
    buf.push("fast", 4 * S, ("fast",), "b", arrival_ms=arrival_s * 1000)
    assert buf.watermark_us == watermark_s * S
    assert buf.push("slow", (watermark_s + 1) * S, ("slow", 2), "c", arrival_ms=arrival_s * 1000)
    assert not buf.push("slow", watermark_s * S, ("slow", 3), "d", arrival_ms=arrival_s * 1000)


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
