"""Types shared by every decoder: the raw record in, the observation out, the typed errors.

A decoder turns one `RawRecord` (exactly what Kafka or a capture file holds) into zero or
more `Observation`s, or raises a `DecodeError` whose message says what was wrong and where.
The caller sends the record to `<topic>.dlq` with the error's `kind` and message as headers.
"""
from __future__ import annotations

import math
from typing import Protocol

import attrs
import numpy as np

SIDES = ("DE", "PL")
SENSOR_KINDS = ("radar", "camera", "uav", "anpr")
CLASSES = ("person", "vehicle", "animal", "drone", "unknown")


@attrs.frozen(slots=True)
class RawRecord:
    """One Kafka record as consumed or as recorded in a capture file."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int  # broker append time
    key: bytes | None
    value: bytes | None


def _finite(instance, attribute, value):
    if value is not None and not math.isfinite(value):
        raise ValueError(f"{attribute.name} must be finite, got {value!r}")


def _cov2(instance, attribute, value):
    if value.shape != (2, 2) or not np.isfinite(value).all():
        raise ValueError(f"{attribute.name} must be a finite 2x2 matrix")


def _vec2_or_none(instance, attribute, value):
    if value is not None and (value.shape != (2,) or not np.isfinite(value).all()):
        raise ValueError(f"{attribute.name} must be a finite 2-vector or None")


def _as_array(value):
    if value is None:
        return None
    arr = np.array(value, dtype=float)
    arr.setflags(write=False)
    return arr


@attrs.frozen(slots=True, eq=False)
class Observation:
    """One validated detection in the shared metric frame (see geo.frames.SHARED_CRS).

    `time_us` is UTC microseconds since the epoch. `xy` is (east, north) metres in the shared
    frame, `cov` its 2x2 covariance (m^2). `velocity` (east, north) m/s where the sensor
    gives one. `local_id` is the sensor's own object/track id (camera object, DE radar track),
    `status` the sensor's track status (DE radar: tentative/confirmed/lost).
    ANPR observations carry `plate` (normalised: upper case letters and digits) and
    `country` (ISO 3166-1 alpha-2, "" when unread) and `direction` ("DE->PL" / "PL->DE").
    """

    time_us: int
    side: str = attrs.field(validator=attrs.validators.in_(SIDES))
    sensor_id: str
    sensor_kind: str = attrs.field(validator=attrs.validators.in_(SENSOR_KINDS))
    xy: np.ndarray = attrs.field(converter=_as_array, validator=_vec2_or_none)
    cov: np.ndarray = attrs.field(converter=_as_array, validator=_cov2)
    velocity: np.ndarray | None = attrs.field(default=None, converter=_as_array, validator=_vec2_or_none)
    cls: str | None = attrs.field(default=None, validator=attrs.validators.optional(attrs.validators.in_(CLASSES)))
    confidence: float | None = attrs.field(default=None, validator=_finite)
    local_id: str | None = None
    status: str | None = None
    plate: str | None = None
    country: str | None = None
    direction: str | None = None
    # provenance
    topic: str = ""
    partition: int = -1
    offset: int = -1


class DecodeError(Exception):
    """A record that must go to the dead-letter topic. `kind` is a short stable reason code.

    `reason` says what was wrong (field name and value); `field` names the field when there is
    one. The location (topic, partition, offset) may be given at construction or added later by
    `locate(record)`; str(error) is the reason followed by the location.
    """

    kind = "decode_error"

    def __init__(self, message: str, *, topic: str | None = None, offset: int | None = None,
                 partition: int | None = None, field: str | None = None):
        super().__init__(message)
        self.reason = message
        self.field = field
        self.topic = topic
        self.partition = partition
        self.offset = offset

    def locate(self, record: "RawRecord") -> "DecodeError":
        """Attach the record's topic/partition/offset (unless already set); returns self."""
        if self.topic is None:
            self.topic, self.partition, self.offset = record.topic, record.partition, record.offset
        return self

    def __str__(self) -> str:
        if self.topic is None:
            return self.reason
        part = f"[{self.partition}]" if self.partition is not None else ""
        return f"{self.reason} ({self.topic}{part}@{self.offset})"


class FramingError(DecodeError):
    kind = "bad_framing"


class UnknownSchemaError(DecodeError):
    kind = "unknown_schema"


class MalformedError(DecodeError):
    """Body does not parse (truncated Avro, invalid JSON, not UTF-8, missing field, wrong type)."""

    kind = "malformed"


class ImpossibleValueError(DecodeError):
    """Parses, but a value is impossible per the ICD (non-finite, out of range, too far from site...)."""

    kind = "impossible_value"


class UnknownSensorError(DecodeError):
    kind = "unknown_sensor"


class BadTimestampError(DecodeError):
    kind = "bad_timestamp"


class OversizedFieldError(DecodeError):
    kind = "oversized_field"


class EmptyValueError(DecodeError):
    """A required value is empty or null (empty sensor id, empty plate, null record value...)."""

    kind = "empty_value"


class OutOfRangeError(DecodeError):
    """A value outside its schema's range (confidence outside 0..1, bearing outside 0..360, speed < 0...)."""

    kind = "out_of_range"


class UnknownTopicError(DecodeError):
    """A record from a topic no decoder handles."""

    kind = "unknown_topic"


class Decoder(Protocol):
    """Decodes the records of one topic."""

    topic: str

    def decode(self, record: RawRecord) -> list[Observation]:
        """Return the record's observations or raise DecodeError."""
        ...
