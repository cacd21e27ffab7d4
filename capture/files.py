"""Capture files (ICD): one JSON object per line, in arrival order, optionally gzip-compressed:
`topic`, `partition`, `offset`, `timestamp_ms` (broker append time), `key` and `value`
(base64 of the raw bytes, or null).

Reading has two modes. `strict=True` raises `CaptureFormatError` (file and line number) at the
first bad line. `strict=False` skips bad lines, counts them in `CaptureReader.bad_lines` and
hands each error to `on_bad_line` (the CLI tools print it): never a silent drop. Blank lines
hold no record and are ignored. `borderfuse publish` reads in skip mode unless `--strict`.
"""
from __future__ import annotations

import base64
import binascii
import gzip
import json
import zlib
from pathlib import Path
from typing import Callable, Iterable, Iterator

from borderfuse.sensors.base import RawRecord

FIELDS = ("topic", "partition", "offset", "timestamp_ms", "key", "value")


class CaptureFormatError(ValueError):
    """A capture line that is not a valid record; the message names the file and line number."""

    def __init__(self, path: Path | str, line_no: int, reason: str):
        super().__init__(f"{path}:{line_no}: {reason}")
        self.path = Path(path)
        self.line_no = line_no
        self.reason = reason


def _open(path: Path, mode: str):
    if path.name.endswith(".gz"):
        return gzip.open(path, mode)
    return open(path, mode)


def _int_field(obj: dict, name: str) -> int:
    value = obj[name]
    if type(value) is not int:  # bool is an int subclass; reject it too
        raise TypeError(f"field {name!r} must be an integer, got {type(value).__name__} {value!r:.40}")
    return value


def _bytes_field(obj: dict, name: str) -> bytes | None:
    value = obj[name]
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"field {name!r} must be base64 text or null, got {type(value).__name__}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"field {name!r} is not valid base64: {exc}") from exc


def parse_line(line: bytes | str, path: Path | str = "<capture>", line_no: int = 0) -> RawRecord:
    """One capture line -> RawRecord, or CaptureFormatError saying what is wrong and where."""
    try:
        obj = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CaptureFormatError(path, line_no, f"not JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise CaptureFormatError(path, line_no, f"not a JSON object but {type(obj).__name__}")
    missing = [f for f in FIELDS if f not in obj]
    if missing:
        raise CaptureFormatError(path, line_no, f"missing field(s) {', '.join(missing)}")
    try:
        topic = obj["topic"]
        if not isinstance(topic, str) or not topic:
            raise TypeError(f"field 'topic' must be a non-empty string, got {topic!r:.40}")
        return RawRecord(topic=topic, partition=_int_field(obj, "partition"), offset=_int_field(obj, "offset"),
                         timestamp_ms=_int_field(obj, "timestamp_ms"), key=_bytes_field(obj, "key"),
                         value=_bytes_field(obj, "value"))
    except (TypeError, ValueError) as exc:
        raise CaptureFormatError(path, line_no, str(exc)) from exc


class CaptureReader:
    """Iterate a capture's records. See the module doc for strict vs skip mode."""

    def __init__(self, path: Path | str, strict: bool = True,
                 on_bad_line: Callable[[CaptureFormatError], None] | None = None):
        self.path = Path(path)
        self.strict = strict
        self.on_bad_line = on_bad_line
        self.records = 0
        self.bad_lines = 0

    def __iter__(self) -> Iterator[RawRecord]:
        if not self.path.exists():
            raise FileNotFoundError(f"capture file {self.path} does not exist")
        line_no = 0
        try:
            with _open(self.path, "rb") as f:
                for line_no, line in enumerate(f, start=1):
                    if not line.strip():
                        continue
                    try:
                        record = parse_line(line, self.path, line_no)
                    except CaptureFormatError as exc:
                        if self.strict:
                            raise
                        self.bad_lines += 1
                        if self.on_bad_line is not None:
                            self.on_bad_line(exc)
                        continue
                    self.records += 1
                    yield record
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            # A cut-off or corrupt gzip stream cannot be skipped past: always fatal.
            raise CaptureFormatError(self.path, line_no + 1, f"corrupt or truncated gzip: {exc}") from exc


def read_capture(path: Path | str, strict: bool = True,
                 on_bad_line: Callable[[CaptureFormatError], None] | None = None) -> Iterator[RawRecord]:
    return iter(CaptureReader(path, strict, on_bad_line))


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def format_record(record: RawRecord) -> str:
    """One capture line (without newline), fields in the ICD's order."""
    return json.dumps({"topic": record.topic, "partition": record.partition, "offset": record.offset,
                       "timestamp_ms": record.timestamp_ms, "key": _b64(record.key),
                       "value": _b64(record.value)}, separators=(",", ":"))


class CaptureWriter:
    """Write records to a capture file (gzip when the name ends in .gz). Use as a context manager."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        opener = gzip.open if self.path.name.endswith(".gz") else open
        self._file = opener(self.path, "wt", encoding="ascii")  # json.dumps and base64 emit ASCII only
        self.records = 0

    def write(self, record: RawRecord) -> None:
        self._file.write(format_record(record) + "\n")
        self.records += 1

    def write_all(self, records: Iterable[RawRecord]) -> int:
        for record in records:
            self.write(record)
        return self.records

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "CaptureWriter":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
