"""Capture files: round trip (plain and gzip), every bad-line case with its line number, both modes."""
from __future__ import annotations

import base64
import gzip
import json

import pytest
from hypothesis import given, settings, strategies as st

from borderfuse.capture.files import CaptureFormatError, CaptureReader, CaptureWriter, format_record, parse_line, read_capture
from borderfuse.sensors.base import RawRecord

GOOD = {"topic": "pl.radar.plots", "partition": 0, "offset": 7, "timestamp_ms": 1795298340000,
        "key": base64.b64encode(b"PL-R1").decode(), "value": base64.b64encode(b"\x00\x00\x00\x00e\x01").decode()}

records = st.builds(
    RawRecord,
    topic=st.sampled_from(["pl.radar.plots", "de.anpr.reads", "shared.hotlist"]),
    partition=st.integers(0, 5), offset=st.integers(0, 2**40), timestamp_ms=st.integers(0, 2**42),
    key=st.none() | st.binary(max_size=40), value=st.none() | st.binary(max_size=300),
)


@pytest.mark.parametrize("name", ["cap.jsonl", "cap.jsonl.gz"])
@settings(max_examples=25, deadline=None)
@given(batch=st.lists(records, max_size=20))
def test_round_trip_is_exact(tmp_path_factory, name, batch):
    path = tmp_path_factory.mktemp("cap") / name
    with CaptureWriter(path) as writer:
        writer.write_all(batch)
    assert list(read_capture(path)) == batch
    if name.endswith(".gz"):
        with gzip.open(path, "rb") as f:
            assert f.read(2) in (b"", b'{"')


def test_line_format_matches_the_icd_field_order():
    record = parse_line(json.dumps(GOOD))
    assert record == RawRecord("pl.radar.plots", 0, 7, 1795298340000, b"PL-R1", b"\x00\x00\x00\x00e\x01")
    assert list(json.loads(format_record(record))) == ["topic", "partition", "offset", "timestamp_ms", "key", "value"]
    assert parse_line(format_record(record)) == record


BAD_LINES = [
    ("not JSON", "{\"topic\": ", "not JSON"),
    ("not an object", "[1, 2]", "not a JSON object"),
    ("missing field", json.dumps({k: v for k, v in GOOD.items() if k != "timestamp_ms"}), "missing field(s) timestamp_ms"),
    ("bad base64 value", json.dumps({**GOOD, "value": "@@not base64@@"}), "'value' is not valid base64"),
    ("bad base64 key", json.dumps({**GOOD, "key": "abc"}), "'key' is not valid base64"),
    ("string offset", json.dumps({**GOOD, "offset": "7"}), "'offset' must be an integer"),
    ("bool partition", json.dumps({**GOOD, "partition": True}), "'partition' must be an integer"),
    ("numeric value", json.dumps({**GOOD, "value": 12}), "'value' must be base64 text or null"),
    ("empty topic", json.dumps({**GOOD, "topic": ""}), "'topic' must be a non-empty string"),
    ("not UTF-8", b"\xff\xfe{}", "not JSON"),
]


def _write_lines(path, lines):
    with open(path, "wb") as f:
        for line in lines:
            f.write((line if isinstance(line, bytes) else line.encode()) + b"\n")


@pytest.mark.parametrize("case, bad, message", BAD_LINES, ids=[c[0] for c in BAD_LINES])
def test_strict_mode_names_file_and_line(tmp_path, case, bad, message):
    path = tmp_path / "cap.jsonl"
    _write_lines(path, [json.dumps(GOOD), "", bad, json.dumps(GOOD)])  # the bad one is line 3
    reader = CaptureReader(path, strict=True)
    with pytest.raises(CaptureFormatError) as info:
        list(reader)
    assert info.value.line_no == 3
    assert str(info.value).startswith(f"{path}:3: ")
    assert message in str(info.value)
    assert reader.records == 1


@pytest.mark.parametrize("case, bad, message", BAD_LINES, ids=[c[0] for c in BAD_LINES])
def test_skip_mode_counts_and_reports_every_bad_line(tmp_path, case, bad, message):
    path = tmp_path / "cap.jsonl.gz"
    with gzip.open(path, "wb") as f:
        f.write(b"\n".join(x if isinstance(x, bytes) else x.encode() for x in [bad, json.dumps(GOOD), bad]) + b"\n")
    reported: list[CaptureFormatError] = []
    reader = CaptureReader(path, strict=False, on_bad_line=reported.append)
    assert [r.offset for r in reader] == [7]
    assert (reader.records, reader.bad_lines) == (1, 2)
    assert [e.line_no for e in reported] == [1, 3]
    assert all(message in str(e) for e in reported)


def test_truncated_gzip_is_fatal_even_in_skip_mode(tmp_path):
    path = tmp_path / "cap.jsonl.gz"
    blob = gzip.compress(("\n".join([json.dumps(GOOD)] * 200) + "\n").encode())
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(CaptureFormatError, match="corrupt or truncated gzip"):
        list(CaptureReader(path, strict=False))


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="capture file .*nope.jsonl does not exist"):
        list(read_capture(tmp_path / "nope.jsonl"))


def test_sample_capture_reads_clean(sample_capture):
    reader = CaptureReader(sample_capture, strict=True)
    topics = {r.topic for r in reader}
    assert reader.records == 90_317 and reader.bad_lines == 0
    assert "shared.hotlist" in topics and len(topics) == 9
