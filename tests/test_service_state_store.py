"""Snapshot bytes: round trip and clear errors on corrupt values."""
from __future__ import annotations

import pytest

from borderfuse.ingest.state_store import MAGIC, ServiceSnapshot, SnapshotError, decode_snapshot, encode_snapshot


def test_round_trip():
    snap = ServiceSnapshot(offsets={("pl.radar.plots", 0): 17, ("shared.hotlist", 0): 3},
                           pipeline_state=b"\x00state" * 1000, sequence=9, records_processed=1234,
                           needs_flush=True)
    back = decode_snapshot(encode_snapshot(snap))
    assert back == snap


def test_state_is_compressed():
    snap = ServiceSnapshot(offsets={}, pipeline_state=b"a" * 100_000)
    assert len(encode_snapshot(snap)) < 2_000


@pytest.mark.parametrize("data, message", [
    (b"", "bad magic"),
    (b"XXXX" + b"\x00" * 8, "bad magic"),
    (MAGIC + b"\x00\x00\x00\x05{bad}", "corrupt"),
    (MAGIC + b"\x00\x00\x00\x02{}", "corrupt"),  # header lacks offsets
])
def test_corrupt_values_raise_snapshot_error(data, message):
    with pytest.raises(SnapshotError, match=message):
        decode_snapshot(data)
