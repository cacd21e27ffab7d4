"""Failed-login throttling for the console: password guessing gets a few tries, then waits.

Failures are counted per (user name, client address) and per client address over a sliding window.
A name is locked only for the address that failed with it, so somebody guessing from elsewhere cannot
lock a centre's operator out of their own console; an address that tries many names is stopped too.
A successful login clears that name's failures from that address. Pure: the clock is injected.
"""
from __future__ import annotations

import collections
import time
from typing import Callable

MAX_FAILURES_PER_USER = 5      # from one address, within the window
MAX_FAILURES_PER_ADDRESS = 20  # any names, within the window
WINDOW_S = 900.0
MAX_KEYS = 10_000              # bounded memory whatever is thrown at it: the oldest keys go first


class LoginThrottle:
    def __init__(self, max_per_user: int = MAX_FAILURES_PER_USER, max_per_address: int = MAX_FAILURES_PER_ADDRESS,
                 window_s: float = WINDOW_S, clock: Callable[[], float] = time.monotonic, max_keys: int = MAX_KEYS):
        if max_per_user < 1 or max_per_address < 1 or window_s <= 0 or max_keys < 2:
            raise ValueError("login throttle: limits and window must be positive")
        self.max_per_user, self.max_per_address = max_per_user, max_per_address
        self.window_s, self.clock, self.max_keys = window_s, clock, max_keys
        self._failures: collections.OrderedDict[tuple, collections.deque] = collections.OrderedDict()

    @staticmethod
    def _keys(user: str, address: str) -> tuple[tuple, tuple]:
        return ("user", user.casefold(), address), ("address", address)

    def _recent(self, key: tuple, now: float) -> collections.deque:
        times = self._failures.get(key)
        if times is None:
            return collections.deque()
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def wait_s(self, user: str, address: str) -> float:
        """Seconds before this name may try again from this address (0: it may try now)."""
        now = self.clock()
        wait = 0.0
        for key, limit in zip(self._keys(user, address), (self.max_per_user, self.max_per_address)):
            times = self._recent(key, now)
            if len(times) >= limit:   # free again when the failure `limit` back leaves the window
                wait = max(wait, times[-limit] + self.window_s - now)
        return wait

    def failed(self, user: str, address: str) -> None:
        now = self.clock()
        for key in self._keys(user, address):
            times = self._recent(key, now)
            times.append(now)
            self._failures[key] = times
            self._failures.move_to_end(key)
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    def succeeded(self, user: str, address: str) -> None:
        self._failures.pop(self._keys(user, address)[0], None)
