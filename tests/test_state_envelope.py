"""The state envelope: header checks, bounded inflation, plain msgpack only (no extension types)."""
from __future__ import annotations

import struct
import zlib

import msgpack
import pytest

from borderfuse.ingest.state_envelope import (FORMAT_VERSION, KIND_PIPELINE, KIND_SERVICE, MAGIC, StateFormatError,
                                              open_sealed, seal)

_HEAD = struct.Struct(">4sBBHBII")


def _raw(body: bytes, *, fmt=FORMAT_VERSION, kind=KIND_SERVICE, version=1, flags=0, length=None, crc=None) -> bytes:
    return _HEAD.pack(MAGIC, fmt, kind, version, flags, len(body) if length is None else length,
                      zlib.crc32(body) if crc is None else crc) + body


@pytest.mark.parametrize("compress", [None, 1, 9])
def test_round_trip(compress):
    values = {"a": [1, 2.5, "x", b"\x00\xff", None, True, [[-(1 << 62)]]]}
    assert open_sealed(seal(KIND_SERVICE, 1, values, compress), KIND_SERVICE, 1, "here") == values


@pytest.mark.parametrize("data, message", [
    (_raw(msgpack.packb([1]), fmt=FORMAT_VERSION + 1), "envelope format version 2 is unknown"),
    (_raw(msgpack.packb([1]), version=9), "schema version 9 is unknown"),
    (_raw(msgpack.packb([1]), kind=KIND_PIPELINE), "holds a pipeline state, expected a service snapshot"),
    (_raw(msgpack.packb([1]), kind=77), "holds a kind 77"),
    (_raw(msgpack.packb([1]), flags=0x80), "unknown flags"),
    (_raw(msgpack.packb([1]), length=0xFFFFFFFF), "body is 2 bytes, its header says 4294967295"),
    (_raw(msgpack.packb([1]), crc=1), "CRC-32"),
    (_raw(msgpack.packb([1]))[:10], "truncated"),
    (_raw(b"\xdb\xff\xff\xff\xffabc"), "not valid msgpack"),                   # a 4 GB string, 3 bytes given
    (_raw(b"\xdd\xff\xff\xff\xff"), "not valid msgpack"),                      # a 4-billion-item list
    (_raw(b"\x91" * 100_000 + b"\xc0"), "not valid msgpack"),                  # nested 100 000 deep
    (_raw(msgpack.packb(msgpack.ExtType(1, b"obj"))), "extension type 1 is not allowed"),
    (_raw(msgpack.packb([1]) + b"\x00"), "not valid msgpack"),                  # trailing bytes
    (_raw(b"not zlib", flags=1), "does not inflate"),
    (_raw(zlib.compress(msgpack.packb([1]))[:-4], flags=1), "inflates beyond .* or is incomplete"),
    (_raw(msgpack.packb({1: 2})), "not valid msgpack"),                        # only str map keys
])
def test_crafted_envelopes_are_refused(data, message):
    with pytest.raises(StateFormatError, match=message) as info:
        open_sealed(data, KIND_SERVICE, 1, "borderfuse.state key b'g'")
    assert str(info.value).startswith("borderfuse.state key b'g': ")


def test_inflation_is_bounded(monkeypatch):
    import borderfuse.ingest.state_envelope as envelope

    monkeypatch.setattr(envelope, "MAX_BODY_BYTES", 1 << 20)
    bomb = _raw(zlib.compress(b"\x00" * (8 << 20), 9), flags=1)      # 8 MB of zeros in ~8 kB
    assert len(bomb) < 20_000
    with pytest.raises(StateFormatError, match="inflates beyond 1048576 bytes"):
        open_sealed(bomb, KIND_SERVICE, 1, "here")


def test_not_bytes_is_refused():
    with pytest.raises(StateFormatError, match="is str, not bytes"):
        open_sealed("BFS2", KIND_SERVICE, 1, "here")
