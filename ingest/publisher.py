"""The service's transactional producer: incidents, dead letters, the state snapshot and the
consumed offsets go out in one Kafka transaction (see docs/delivery.md)."""
from __future__ import annotations

import time
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

# Snapshots can be a few MB; the state topic allows 64 MB per record (state_store.STATE_TOPIC_CONFIG).
MAX_REQUEST_BYTES = 64 * 1024 * 1024
# kafka-python backs off reconnecting up to 30 s by default: after an outage of that order the service
# found the returned broker up to 30 s late (recovery 10-64 s). One second keeps recovery prompt.
RECONNECT_BACKOFF_MAX_MS = 1000
POLL_STEP_MS = 200   # how often a transactional wait looks for a reason to give up early


class PublishError(RuntimeError):
    """The transaction could not be opened, filled or committed; the service rolls back and retries."""

    def __init__(self, message: str, reason: str = "publish_failed"):
        super().__init__(message)
        self.reason = reason  # short stable code for the rollback metric


def _never_bump_inside_a_transaction(manager) -> None:
    """kafka-python 3.0 answers OutOfOrderSequence / UnknownProducerId / InvalidProducerEpoch on a
    produce by bumping the producer epoch (KIP-360) on its own and going back to READY. For a
    transactional producer that bump makes the coordinator abort the open transaction, so the
    records it had already acknowledged vanish while later sends, the offsets and the commit may
    go on in a new one: incidents lost with their input offsets committed. KIP-98 wants the
    application to abort and re-initialise instead (the Java client makes these errors abortable),
    which is what the service does on any PublishError. So classify them as abortable here."""
    classify = manager.classify_batch_error

    def classify_batch_error(error, batch, log_start_offset=-1):
        outcome = classify(error, batch, log_start_offset=log_start_offset)
        if outcome == manager.ERROR_CLASS_NEEDS_EPOCH_BUMP:
            return manager.ERROR_CLASS_ABORTABLE
        return outcome

    manager.classify_batch_error = classify_batch_error


class TransactionalPublisher:
    """A KafkaProducer with a fixed `transactional_id`: a new instance fences the old one
    (a killed service's open transaction is aborted by the restarted one's init_transactions)."""

    def __init__(self, bootstrap: str, transactional_id: str, client_id: str, max_block_ms: int = 30000,
                 transaction_timeout_ms: int = 60000, step_timeout_s: float = 45.0, security: dict | None = None):
        self.transactional_id = transactional_id
        self.step_timeout_s = step_timeout_s
        self._producer = KafkaProducer(
            bootstrap_servers=bootstrap, client_id=client_id, transactional_id=transactional_id,
            enable_idempotence=True, acks="all", linger_ms=5, max_block_ms=max_block_ms,
            max_request_size=MAX_REQUEST_BYTES, transaction_timeout_ms=transaction_timeout_ms,
            # The producer retries within delivery_timeout; past it the service rolls back and starts over,
    # which is cheaper than waiting on a batch kafka-python may not resend after a broker restart.
            retry_backoff_ms=200, request_timeout_ms=5000, delivery_timeout_ms=12000,
            reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS, **(security or {}))
        self.in_transaction = False
        self._pending: list[Any] = []
        self._epoch = None  # the producer id and epoch the open transaction began under
        _never_bump_inside_a_transaction(self._producer._transaction_manager)

    def init(self) -> None:
        """Fence older producers with this transactional id and abort their open transaction."""
        try:
            self._producer.init_transactions()
        except KafkaError as exc:
            raise PublishError(f"init_transactions({self.transactional_id!r}) failed: {exc!r}", "init_failed") from exc

    def begin(self) -> None:
        if not self.in_transaction:
            try:
                self._producer.begin_transaction()
            except KafkaError as exc:
                raise PublishError(f"begin_transaction failed: {exc!r}", "begin_failed") from exc
            self.in_transaction = True
            self._epoch = self._current_epoch()

    def _current_epoch(self):
        pid = self._producer._transaction_manager.producer_id_and_epoch
        return (pid.producer_id, pid.epoch)

    def _check_epoch(self, when: str) -> None:
        """The transaction must end under the producer id and epoch it began with: anything else
        means the coordinator already aborted part of it (see _never_bump_inside_a_transaction)."""
        if self._current_epoch() != self._epoch:
            raise PublishError(f"producer epoch changed {when} ({self._epoch} -> {self._current_epoch()}): "
                               f"the broker aborted part of the transaction", "epoch_changed")

    def send(self, topic: str, key: bytes | None, value: bytes | None,
             headers: list[tuple[str, bytes]] | None = None) -> None:
        self.begin()
        try:
            self._pending.append(self._producer.send(topic, key=key, value=value, headers=headers))
        except KafkaError as exc:
            raise PublishError(f"sending to {topic} failed: {exc!r}", "send_failed") from exc

    def commit(self, offsets: dict, group_metadata: Any) -> int:
        """Flush, add `offsets` ({TopicPartition: OffsetAndMetadata}) and commit; returns records sent.

        Every wait is bounded by `step_timeout_s`: kafka-python's own commit_transaction() and
        send_offsets_to_transaction() wait for ever, and a request lost in a broker restart would
        stall the service silently. A timeout raises PublishError; the service then drops this
        producer and recovers from the last committed snapshot (the new producer's
        init_transactions settles whatever this transaction became).
        """
        self.begin()
        sent = len(self._pending)
        manager = self._producer._transaction_manager
        try:
            if offsets:
                self._await(manager.send_offsets_to_transaction(offsets, group_metadata), "adding the offsets")
            self._producer.flush(timeout=self.step_timeout_s)  # raises KafkaTimeoutError when it cannot
            for future in self._pending:
                if not future.is_done:
                    raise PublishError(f"records not acknowledged within {self.step_timeout_s:.0f} s", "ack_timeout")
                if future.failed():
                    raise PublishError(f"a record of the transaction was not acknowledged: {future.exception!r}",
                                       "not_acknowledged")
            self._check_epoch("before the commit")
            self._await(manager.begin_commit(), "committing the transaction")
            self._check_epoch("during the commit")
        except KafkaError as exc:
            raise PublishError(f"committing the transaction failed: {exc!r}", "commit_failed") from exc
        finally:
            self._pending.clear()
        self.in_transaction = False
        return sent

    def _await(self, result, what: str) -> None:
        """Wait for a transactional step, but no longer than the transaction is known to be doomed: a
        record whose delivery failed (a batch expired across a broker restart) or an error state of the
        transaction manager ends the wait at once. Waiting out the step timeout there cost up to 45 s of
        recovery (kafka-python's request for the step may never complete after such an error)."""
        self._producer._sender.wakeup()
        deadline = time.monotonic() + self.step_timeout_s
        while not result.wait(timeout_ms=POLL_STEP_MS):
            failed = next((f for f in self._pending if f.is_done and f.failed()), None)
            if failed is not None:
                raise PublishError(f"{what}: a record of the transaction was not acknowledged: {failed.exception!r}",
                                   "not_acknowledged")
            manager = self._producer._transaction_manager
            if manager.has_error():
                raise PublishError(f"{what}: the transaction failed: {manager.last_error!r}", "transaction_error")
            if time.monotonic() > deadline:
                raise PublishError(f"{what} did not complete within {self.step_timeout_s:.0f} s", "timeout")

    def abort(self) -> None:
        """Abort the open transaction if the producer still can (bounded wait); failing here is
        not fatal: the next init_transactions of the same id aborts it anyway."""
        self._pending.clear()
        if self.in_transaction:
            self.in_transaction = False
            try:
                self._await(self._producer._transaction_manager.begin_abort(), "aborting the transaction")
            except Exception:  # noqa: BLE001 - any failure just means "fenced on restart"
                pass

    def close(self, timeout_s: float = 5.0) -> None:
        try:
            self._producer.close(timeout=timeout_s)
        except (KafkaError, Exception):  # noqa: BLE001 - closing a broken producer must not mask the cause
            pass
