"""fusion.state_codec: schemas complete against the live objects, round trips (hypothesis), and crafted
values refused with StateCodecError naming the field path, never anything else."""
from __future__ import annotations

from pathlib import Path

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from borderfuse.fusion import state_codec as sc
from borderfuse.fusion.engine import HotlistItem
from borderfuse.sensors.base import CLASSES, SENSOR_KINDS, SIDES, Observation
from borderfuse.sensors.hotlist import HotlistEntry, HotlistUpdate

SAMPLE = Path(__file__).resolve().parent.parent.parent / "shared" / "scenarios" / "sample" / "capture.jsonl.gz"
needs_sample = pytest.mark.skipif(not SAMPLE.exists(), reason="sample scenario not present")


def wire(values):
    """What the envelope does to plain values: msgpack and back."""
    return msgpack.unpackb(msgpack.packb(values, use_bin_type=True), raw=False, strict_map_key=True)


@pytest.fixture(scope="module")
def small_pipeline():
    """A pipeline after the sample's first 6000 records: tracks, held items, hotlist, dwell timers."""
    from borderfuse.capture.files import read_capture
    from borderfuse.ingest.pipeline import Pipeline
    from borderfuse.ingest.settings import Settings

    records = []
    for record in read_capture(SAMPLE):
        records.append(record)
        if len(records) == 6000:
            break
    pipeline = Pipeline.from_settings(Settings(), collect_tracks=True)
    pipeline.process_batch(records)
    return pipeline


@needs_sample
def test_state_schemas_name_every_attribute_of_the_live_objects(small_pipeline):
    """A new attribute on a state type is lost state until the codec names it: this fails first."""
    engine = small_pipeline.engine
    assert len(engine.tracker) and engine.hotlist.entries and small_pipeline.reorder._heap, "a state worth checking"
    cases = [(engine, sc.ENGINE, set(sc.ENGINE_CONFIG_FIELDS)), (small_pipeline.duplicates, sc.DUPLICATES, set())]
    cases += [(getattr(engine, name), {"tracker": sc.TRACKER, "crossings": sc.CROSSINGS, "loitering": sc.LOITERING,
                                       "hotlist": sc.HOTLIST}[name], set(config))
              for name, config in sc.NESTED_CONFIG_FIELDS.items()]
    for obj, schema, config in cases:
        assert set(vars(obj)) == {n for n, _ in schema.fields} | config, type(obj).__name__


@needs_sample
def test_engine_round_trip_through_msgpack_is_exact(small_pipeline):
    from borderfuse.fusion.engine import FusionEngine

    engine = small_pipeline.engine
    encoded = wire(sc.encode_engine(engine))
    fresh = FusionEngine(engine.geography, engine.rules, collect_tracks=True)
    sc.decode_engine_into(fresh, encoded)
    assert wire(sc.encode_engine(fresh)) == encoded
    # the engine shares each track's sources set with `_track_sources`; a merge grows it in place
    shared = [tid for tid, s in engine._track_sources.items() if engine.tracker.get(tid) is not None
              and engine.tracker.get(tid).sources is s]
    assert shared and all(fresh._track_sources[t] is fresh.tracker.get(t).sources for t in shared)


# ------------------------------------------------------------------ hypothesis: small states

finite = st.floats(-1e7, 1e7, allow_nan=False)
names = st.text("abcXYZ-_.0123456789:", min_size=1, max_size=12)
vec2 = st.tuples(finite, finite).map(np.array)

observations = st.builds(
    Observation, time_us=st.integers(0, 2 ** 62), side=st.sampled_from(SIDES), sensor_id=names,
    sensor_kind=st.sampled_from(SENSOR_KINDS), xy=st.one_of(st.none(), vec2),
    cov=st.tuples(finite, finite, finite, finite).map(lambda c: np.array(c).reshape(2, 2)),
    velocity=st.one_of(st.none(), vec2), cls=st.one_of(st.none(), st.sampled_from(CLASSES)),
    confidence=st.one_of(st.none(), finite), local_id=st.one_of(st.none(), names),
    status=st.one_of(st.none(), names), plate=st.one_of(st.none(), names), country=st.one_of(st.none(), names),
    direction=st.one_of(st.none(), st.sampled_from(["DE->PL", "PL->DE"])), topic=names,
    partition=st.integers(0, 50), offset=st.integers(-1, 2 ** 40))
entries = st.builds(HotlistEntry, names, names, names, st.integers(0, 2 ** 62))
hotlist_items = st.builds(HotlistItem, st.integers(0, 2 ** 62),
                          st.builds(HotlistUpdate, names, names, names, st.one_of(st.none(), entries)))
items = st.one_of(observations, hotlist_items)
order_keys = st.tuples(names, names, st.integers(0, 50), st.integers(0, 2 ** 40))
heap_entries = st.lists(st.tuples(st.integers(0, 2 ** 62), order_keys, st.integers(0, 2 ** 40), items), max_size=5)
HEAP = sc.Seq(sc.Tup(sc.INT, sc.ORDER_KEY, sc.INT, sc.ITEM))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(heap_entries)
def test_reorder_heap_entries_round_trip(entries):
    encoded = wire(HEAP.enc(entries))
    back = HEAP.dec(encoded)
    assert wire(HEAP.enc(back)) == encoded
    for (t, key, n, item), (t2, key2, n2, item2) in zip(entries, back):
        assert (t, key, n, type(item)) == (t2, key2, n2, type(item2))
        if isinstance(item, Observation):
            assert np.array_equal(item.cov, item2.cov) and not item2.cov.flags.writeable


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 200_000), st.sampled_from([b"a", b"b", b"c", b"d"])), max_size=40),
       st.lists(st.tuples(st.integers(0, 200_000), st.sampled_from([b"a", b"b", b"e"])), max_size=10))
def test_duplicate_filter_sent_without_last_seen_restores_exactly(before, after):
    """`_last_seen` is rebuilt from `_order`: the restored filter holds the same and answers the same."""
    from borderfuse.sensors.base import RawRecord
    from borderfuse.sensors.dedup import DuplicateFilter

    original = DuplicateFilter(60.0, max_entries=8)
    for ts, value in before:
        original.is_duplicate(RawRecord("t", 0, 0, ts, None, value))
    restored = DuplicateFilter(1.0)
    sc.restore_into(restored, sc.DUPLICATES.dec(wire(sc.DUPLICATES.enc(original))))
    assert (restored._last_seen, restored._order, restored.window_ms, restored.max_entries) == \
        (original._last_seen, original._order, original.window_ms, original.max_entries)
    for ts, value in after:
        record = RawRecord("t", 0, 0, ts, None, value)
        assert restored.is_duplicate(record) == original.is_duplicate(record)


# ------------------------------------------------------------------ crafted values

OBS = [0, "DE", "s", "radar", None, ["<f8", [2, 2], b"\x00" * 32], None, None, None, None, None, None, None, None,
       "t", 0, 1]


def _obs(**change) -> list:
    fields = [n for n, _ in sc.OBSERVATION.fields]
    out = list(OBS)
    for k, v in change.items():
        out[fields.index(k)] = v
    return out


@pytest.mark.parametrize("kind, value, path, message", [
    (sc.OBSERVATION, _obs(time_us="0"), "time_us", "expected int, got str"),
    (sc.OBSERVATION, _obs(side="FR"), "", "Observation refused its fields"),
    (sc.OBSERVATION, _obs(cov=["|O", [2, 2], b""]), "cov", "dtype '|O' is not one of"),
    (sc.OBSERVATION, _obs(cov=["<i8", [2, 2], b"\x00" * 32]), "cov", "dtype <i8 where the schema has <f8"),
    (sc.OBSERVATION, _obs(cov=["<f8", [2, 2], b"\x00" * 31]), "cov", "needs 32 bytes, got 31"),
    (sc.OBSERVATION, _obs(cov=["<f8", [1 << 40, 1 << 40], b""]), "cov", "too large"),
    (sc.OBSERVATION, _obs(cov=["<f8", [2, -2], b""]), "cov", "non-negative"),
    (sc.OBSERVATION, _obs(cov=["<f8", [4], b"\x00" * 32]), "cov", "is not 2 non-negative ints"),
    (sc.OBSERVATION, OBS[:-1], "", "Observation has 17 fields, got 16"),
    (sc.ITEM, [2, OBS], "", "expected \\[alternative 0..1, value\\]"),
    (sc.ITEM, ["os.system", OBS], "", "alternative"),
    (HEAP, [[0, ["a", "t", 0, 1], 3, [0, _obs(partition=None)]]], "[0][3].partition", "expected int, got NoneType"),
    (sc.DUPLICATES, [1, 2, ["<i8", [2], b"\x00" * 16], b"\x00" * 31, 0, 0, []], "order_digests",
     "31 bytes for 2 entries of 16"),
])
def test_crafted_values_raise_codec_errors_naming_the_path(kind, value, path, message):
    with pytest.raises(sc.StateCodecError, match=message) as info:
        kind.dec(value)
    assert info.value.path == path


@needs_sample
def test_crafted_tracker_is_refused_before_anything_is_restored(small_pipeline):
    from borderfuse.fusion.engine import FusionEngine

    engine = small_pipeline.engine
    encoded = wire(sc.encode_engine(engine))
    fields = [n for n, _ in sc.ENGINE.fields]
    tracker = encoded[fields.index("tracker")]
    tracker[0] = ["<f8", [0, 4], b""]                # x: no rows for the tracks the list holds
    fresh = FusionEngine(engine.geography, engine.rules)
    with pytest.raises(sc.StateCodecError, match=r"^tracker.x: shape \(0, 4\) for \d+ tracks"):
        sc.decode_engine_into(fresh, encoded)
    assert len(fresh.tracker) == 0


def _leaves(value, path=()):
    if isinstance(value, list):
        for i, v in enumerate(value):
            yield from _leaves(v, (*path, i))
    else:
        yield path


junk = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 63, 2 ** 64 - 1), st.floats(), st.text(max_size=5),
                 st.binary(max_size=40), st.lists(st.integers(), max_size=3))


@needs_sample
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_any_leaf_replaced_by_junk_restores_or_raises_codec_error(small_pipeline, data):
    """Fuzz: one value of a real encoded state replaced by junk, or a list cut short. The decoder either
    accepts it (it fits the schema) or raises StateCodecError; nothing else (no TypeError, no crash)."""
    from borderfuse.fusion.engine import FusionEngine

    engine = small_pipeline.engine
    encoded, leaves = _encoded_engine(small_pipeline)
    path = data.draw(st.sampled_from(leaves))
    parent = encoded
    for i in path[:-1]:
        parent = parent[i]
    kept = parent[path[-1]:]
    if data.draw(st.booleans()):
        parent[path[-1]] = data.draw(junk)
    else:
        del parent[path[-1]:]
    try:
        sc.decode_engine_into(FusionEngine(engine.geography, engine.rules), encoded)
    except sc.StateCodecError as exc:
        assert str(exc)
    finally:
        parent[path[-1]:] = kept       # the cached encoding is shared by every example


_ENCODED: dict = {}


def _encoded_engine(pipeline) -> tuple[list, list]:
    if id(pipeline) not in _ENCODED:
        encoded = wire(sc.encode_engine(pipeline.engine))
        _ENCODED[id(pipeline)] = encoded, list(_leaves(encoded))
    return _ENCODED[id(pipeline)]
