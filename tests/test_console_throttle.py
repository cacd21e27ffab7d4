"""Failed-login throttling (console/throttle.py), on an injected clock."""
from __future__ import annotations

import pytest

from borderfuse.console.throttle import LoginThrottle


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


def throttle(clock, **kw):
    return LoginThrottle(**{"max_per_user": 3, "max_per_address": 5, "window_s": 60.0, "clock": clock, **kw})


def test_a_name_waits_after_its_failures_from_one_address_until_the_window_lets_one_go(clock):
    t = throttle(clock)
    for i in range(3):
        assert t.wait_s("alice", "10.0.0.1") == 0
        t.failed("alice", "10.0.0.1")
        clock.now += 1
    assert t.wait_s("alice", "10.0.0.1") == pytest.approx(57.0)   # the first failure leaves at 1060
    assert t.wait_s("ALICE", "10.0.0.1") == pytest.approx(57.0)   # names compare without case
    clock.now = 1060.5
    assert t.wait_s("alice", "10.0.0.1") == 0


@pytest.mark.parametrize("user, address, locked", [
    ("alice", "10.0.0.1", True),     # the name that failed, from where it failed
    ("alice", "10.0.0.2", False),    # the real alice at her own console is not locked out by a guesser
    ("bob", "10.0.0.1", False),      # another name from the same address: under the address limit
])
def test_a_lock_is_per_name_and_address(clock, user, address, locked):
    t = throttle(clock)
    for _ in range(3):
        t.failed("alice", "10.0.0.1")
    assert (t.wait_s(user, address) > 0) is locked


def test_an_address_trying_many_names_is_stopped(clock):
    t = throttle(clock)
    for i in range(5):
        t.failed(f"user{i}", "10.0.0.9")
    assert t.wait_s("someone-else", "10.0.0.9") > 0
    assert t.wait_s("someone-else", "10.0.0.8") == 0


def test_a_success_clears_that_names_failures(clock):
    t = throttle(clock)
    for _ in range(2):
        t.failed("alice", "10.0.0.1")
    t.succeeded("alice", "10.0.0.1")
    t.failed("alice", "10.0.0.1")
    t.failed("alice", "10.0.0.1")
    assert t.wait_s("alice", "10.0.0.1") == 0


def test_memory_stays_bounded(clock):
    t = throttle(clock, max_keys=100, max_per_address=10**6)
    for i in range(10_000):
        t.failed(f"user{i}", f"10.0.{i % 250}.{i % 7}")
    assert len(t._failures) <= 100


@pytest.mark.parametrize("kw", [{"max_per_user": 0}, {"max_per_address": 0}, {"window_s": 0}, {"max_keys": 1}])
def test_nonsense_limits_are_refused(clock, kw):
    with pytest.raises(ValueError, match="login throttle"):
        throttle(clock, **kw)
