"""sensors.dedup.DuplicateFilter."""
import pytest

from borderfuse.sensors.base import RawRecord
from borderfuse.sensors.dedup import DuplicateFilter, fingerprint


def rec(ts_ms, value=b"v", key=b"k", topic="t", offset=0):
    return RawRecord(topic, 0, offset, ts_ms, key, value)


def test_byte_identical_within_window_is_a_duplicate_and_counted():
    f = DuplicateFilter(window_s=10)
    assert not f.is_duplicate(rec(1000, offset=1))
    assert f.is_duplicate(rec(5000, offset=2))  # another offset, same bytes
    assert f.duplicates == 1 and f.duplicates_by_topic["t"] == 1


@pytest.mark.parametrize("other", [rec(1000, value=b"w"), rec(1000, key=b"j"), rec(1000, topic="u"),
                                   rec(1000, key=None), rec(1000, value=None), rec(1000, key=b"", value=b"kv")])
def test_any_byte_difference_is_not_a_duplicate(other):
    f = DuplicateFilter(window_s=10)
    f.is_duplicate(rec(1000))
    assert not f.is_duplicate(other)


def test_field_boundaries_cannot_shift():
    assert fingerprint(rec(0, key=b"ab", value=b"c")) != fingerprint(rec(0, key=b"a", value=b"bc"))


def test_outside_window_is_not_a_duplicate_and_memory_is_bounded():
    f = DuplicateFilter(window_s=1)
    assert not f.is_duplicate(rec(0))
    assert not f.is_duplicate(rec(1001))  # 1.001 s later
    for i in range(10_000):
        f.is_duplicate(rec(2000 + i * 10, value=str(i).encode()))
    assert len(f) <= 101  # one second of records at 10 ms spacing


def test_max_entries_caps_memory():
    f = DuplicateFilter(window_s=3600, max_entries=100)
    for i in range(1000):
        f.is_duplicate(rec(i, value=str(i).encode()))
    assert len(f) <= 100
    assert f.is_duplicate(rec(1000, value=b"999"))  # the newest are kept


def test_bad_arguments():
    with pytest.raises(ValueError):
        DuplicateFilter(0)
