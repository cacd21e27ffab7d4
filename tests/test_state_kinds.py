"""fusion.state_kinds: the schema kinds round-trip exactly and refuse crafted values naming the path."""
from __future__ import annotations

import collections

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from borderfuse.fusion import state_kinds as sk

names = st.text("abcXYZ-_.0123456789:", min_size=1, max_size=12)
SOURCE = sk.Tup(sk.STR, sk.INT)
STR_SET = sk.Seq(sk.STR, set)


def wire(values):
    return msgpack.unpackb(msgpack.packb(values, use_bin_type=True), raw=False, strict_map_key=True)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.tuples(names, st.integers(0, 9)), st.integers(-2 ** 63, 2 ** 63 - 1), max_size=6),
       st.lists(st.tuples(st.integers(0, 2 ** 62), st.binary(max_size=16)), max_size=6),
       st.dictionaries(names, st.one_of(st.none(), st.sets(names, max_size=3)), max_size=4))
def test_maps_deques_and_sets_round_trip(newest, order, track_sources):
    cases = [(sk.Map(SOURCE, sk.INT), newest), (sk.Seq(sk.Tup(sk.INT, sk.BYTES), collections.deque),
                                                   collections.deque(order)),
             (sk.Map(sk.STR, sk.Opt(STR_SET)), track_sources),
             (sk.Map(sk.STR, sk.INT, collections.Counter), collections.Counter({k: len(k) for k in track_sources}))]
    for kind, value in cases:
        back = kind.dec(wire(kind.enc(value)))
        assert back == value and type(back) is type(value)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 6), st.sampled_from(["<f8", "<i8"]))
def test_arrays_round_trip_exactly(n, dtype):
    arr = (np.arange(n * 16) * 1.25 - 7).reshape(n, 4, 4).astype(dtype)
    back = sk.Array(dtype, 3).dec(wire(sk.Array(dtype, 3).enc(arr)))
    assert back.dtype == arr.dtype and back.shape == arr.shape and np.array_equal(back, arr) and back.flags.writeable


@pytest.mark.parametrize("kind, value, path, message", [
    (sk.Map(sk.STR, sk.INT), ["a", 1, "b"], "", "even number"),
    (sk.Map(sk.STR, sk.INT), ["a", 1, "a", 2], "", "duplicate key"),
    (sk.Map(sk.STR, sk.INT), ["a", 1, "b", 2.0], "['b']", "expected int, got float"),
    (sk.Map(SOURCE, sk.INT), [["t", 0, 9], 1], "[key 0]", "expected 2 items, got 3"),
    (sk.Seq(sk.STR, set), "abc", "", "expected a list"),
    (sk.INT, True, "", "expected int, got bool"),
    (sk.FLOAT, 1, "", "expected float, got int"),
    (sk.Opt(sk.STR), b"x", "", "expected str, got bytes"),
    (sk.Tup(sk.INT, sk.STR), [1, 2], "[1]", "expected str, got int"),
    (sk.Seq(sk.Seq(sk.INT)), [[1], [2, "x"]], "[1][1]", "expected int, got str"),
])
def test_crafted_values_raise_codec_errors_naming_the_path(kind, value, path, message):
    with pytest.raises(sk.StateCodecError, match=message) as info:
        kind.dec(value)
    assert info.value.path == path


def test_schema_must_name_every_attrs_field():
    import attrs

    @attrs.frozen
    class Two:
        a: int
        b: int

    with pytest.raises(TypeError, match="names \\['a'\\], the class has \\['a', 'b'\\]"):
        sk.Obj(Two, [("a", sk.INT)])
