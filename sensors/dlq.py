"""Dead-letter headers: the original key and value go to `<topic>.dlq` unchanged, with these."""
from __future__ import annotations

from borderfuse.sensors.base import DecodeError, RawRecord

MAX_MESSAGE_BYTES = 1024  # error messages already cut long values; this bounds the header anyway


def dead_letter_topic(topic: str) -> str:
    return f"{topic}.dlq"


def dead_letter_headers(record: RawRecord, error: DecodeError) -> list[tuple[str, bytes]]:
    """Kafka headers saying why `record` is a dead letter and where it came from."""
    message = error.reason.encode("utf-8", "replace")[:MAX_MESSAGE_BYTES]
    return [
        ("dlq.error.type", error.kind.encode()),
        ("dlq.error.message", message),
        ("dlq.source.topic", record.topic.encode("utf-8", "replace")),
        ("dlq.source.partition", str(record.partition).encode()),
        ("dlq.source.offset", str(record.offset).encode()),
    ]
