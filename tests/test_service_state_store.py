"""The service snapshot's bytes: round trip, and every crafted or foreign value refused with a clear error."""
from __future__ import annotations

import pickle
import zlib

import pytest

from borderfuse.ingest.state_envelope import KIND_PIPELINE, KIND_SERVICE, seal
from borderfuse.ingest.state_store import (SERVICE_SCHEMA_VERSION, ServiceSnapshot, SnapshotError, SnapshotRefused,
                                           decode_snapshot, encode_snapshot)
from old_snapshots import old_service_snapshot


def _snapshot() -> ServiceSnapshot:
    return ServiceSnapshot(offsets={("pl.radar.plots", 0): 17, ("shared.hotlist", 0): 3},
                           pipeline_state=b"\x00state" * 1000, sequence=9, records_processed=1234,
                           needs_flush=True, rules_toml="[tracker]\n", rules_version="v7")


def _doc(**change) -> dict:
    doc = {"offsets": [["pl.radar.plots", 0, 17]], "pipeline_state": b"x", "sequence": 1, "records_processed": 2,
           "needs_flush": False, "created_unix_s": 1.5, "rules_toml": "", "rules_version": ""}
    doc.update(change)
    return {k: v for k, v in doc.items() if v is not _DROP}


_DROP = object()


def test_round_trip():
    snap = _snapshot()
    assert decode_snapshot(encode_snapshot(snap)) == snap


def test_state_is_compressed_when_asked():
    snap = ServiceSnapshot(offsets={}, pipeline_state=b"a" * 100_000)
    assert len(encode_snapshot(snap, level=1)) < 2_000 < len(encode_snapshot(snap))
    assert decode_snapshot(encode_snapshot(snap, level=1)) == snap


@pytest.mark.parametrize("doc, message", [
    (_doc(sequence="9"), "field sequence is str, expected int"),
    (_doc(sequence=True), "field sequence is bool, expected int"),
    (_doc(needs_flush=1), "field needs_flush is int, expected bool"),
    (_doc(pipeline_state="text"), "field pipeline_state is str, expected bytes"),
    (_doc(offsets={"a": 1}), "field offsets is dict, expected list"),
    (_doc(offsets=[["t", 0]]), r"offsets\[0\] is not \[topic, partition >= 0, offset >= 0\]"),
    (_doc(offsets=[["t", 0, -5]]), r"offsets\[0\]"),
    (_doc(offsets=[["t", 0, 1], [1, 0, 1]]), r"offsets\[1\]"),
    (_doc(records_processed=-1), "may not be negative"),
    (_doc(rules_toml=_DROP), "fields are .* expected"),
    (_doc(extra="x"), "fields are .* expected"),
    ([1, 2, 3], "fields are list"),
])
def test_crafted_fields_are_refused_naming_the_field(doc, message):
    with pytest.raises(SnapshotRefused, match=message):
        decode_snapshot(seal(KIND_SERVICE, SERVICE_SCHEMA_VERSION, doc), "state key b'g'")


@pytest.mark.parametrize("data, message", [
    (b"", "truncated"),
    (b"XXXX" + b"\x00" * 20, "not a borderfuse state value"),
    (seal(KIND_SERVICE, SERVICE_SCHEMA_VERSION + 1, _doc()), "schema version 2 is unknown"),
    (seal(KIND_PIPELINE, 3, [1]), "holds a pipeline state, expected a service snapshot"),
    (seal(KIND_SERVICE, SERVICE_SCHEMA_VERSION, _doc())[:-3], "truncated or padded"),
    (pickle.dumps({"offsets": []}), "previous, pickle-based format"),
])
def test_foreign_values_are_refused(data, message):
    with pytest.raises(SnapshotRefused, match=message) as info:
        decode_snapshot(data, "borderfuse.state key b'g'")
    assert isinstance(info.value, SnapshotError)   # SnapshotRefused is a SnapshotError (never a crash)
    assert "borderfuse.state key b'g'" in str(info.value)


def test_previous_pickle_snapshot_is_refused_and_never_unpickled(tmp_path):
    control = tmp_path / "control"
    data = old_service_snapshot(control)
    # the control: this payload does create its marker when unpickled (the refusal below is meaningful)
    pickle.loads(zlib.decompress(data[8 + int.from_bytes(data[4:8], "big"):]))
    assert control.exists()
    marker = tmp_path / "marker"
    with pytest.raises(SnapshotRefused, match="pickle-based format .* never unpickled"):
        decode_snapshot(old_service_snapshot(marker))
    assert not marker.exists()
