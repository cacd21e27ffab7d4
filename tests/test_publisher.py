"""The transactional publisher's bounded waits: a doomed transaction ends the wait at once (issue 8: a batch
that expired across a broker restart left kafka-python's step request hanging, and waiting out the 45 s step
timeout delayed recovery by up to 45 s)."""
from __future__ import annotations

import time

import attrs
import pytest

from borderfuse.ingest.publisher import PublishError, TransactionalPublisher


@attrs.define
class _Result:
    done_after_s: float | None      # None: never completes
    started: float = attrs.field(factory=time.monotonic)

    def wait(self, timeout_ms: int) -> bool:
        if self.done_after_s is not None and time.monotonic() - self.started >= self.done_after_s:
            return True
        time.sleep(timeout_ms / 1000)
        return False


@attrs.define
class _Future:
    is_done: bool
    exception: BaseException | None = None

    def failed(self) -> bool:
        return self.exception is not None


@attrs.define
class _Manager:
    error: BaseException | None = None

    def has_error(self) -> bool:
        return self.error is not None

    @property
    def last_error(self):
        return self.error


class _Sender:
    def wakeup(self) -> None:
        pass


@attrs.define
class _Producer:
    _transaction_manager: _Manager
    _sender: _Sender = attrs.field(factory=_Sender)


def _publisher(manager: _Manager, pending: list, step_timeout_s: float) -> TransactionalPublisher:
    publisher = object.__new__(TransactionalPublisher)   # no KafkaProducer: the wait logic alone
    publisher._producer = _Producer(manager)
    publisher._pending = pending
    publisher.step_timeout_s = step_timeout_s
    return publisher


@pytest.mark.parametrize("result, pending, manager, reason, max_s", [
    (_Result(None), [_Future(True, TimeoutError("Expiring 3 record(s)"))], _Manager(), "not_acknowledged", 1.0),
    (_Result(None), [_Future(False)], _Manager(RuntimeError("abortable")), "transaction_error", 1.0),
    (_Result(None), [_Future(False), _Future(True)], _Manager(), "timeout", 2.0),
    (_Result(0.3), [_Future(False)], _Manager(), None, 1.0),
], ids=["failed-record", "manager-error", "step-timeout", "completes"])
def test_a_doomed_transaction_ends_the_wait_at_once(result, pending, manager, reason, max_s):
    publisher = _publisher(manager, pending, step_timeout_s=1.0)
    started = time.monotonic()
    if reason is None:
        publisher._await(result, "committing the transaction")
    else:
        with pytest.raises(PublishError) as caught:
            publisher._await(result, "adding the offsets")
        assert caught.value.reason == reason
        assert str(caught.value).startswith("adding the offsets")
    assert time.monotonic() - started <= max_s
