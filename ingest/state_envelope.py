"""The bytes around a state document: magic, format version, what it is, schema version, lengths, checksum.

    offset  size  field
    0       4     MAGIC b"BFS2"
    4       1     envelope format version (FORMAT_VERSION)
    5       1     content kind (KIND_SERVICE: the service snapshot, KIND_PIPELINE: the pipeline state)
    6       2     schema version of that content, big-endian
    8       1     flags (bit 0: the body is zlib-compressed)
    9       4     body length, big-endian (must be exactly what follows)
    13      4     CRC-32 of the body
    17      ...   body: msgpack of plain values (no ext types), optionally zlib-compressed

Nothing here can run code or build objects: the body unpacks to None/bool/int/float/str/bytes/lists/maps,
and the content's schema (fusion.state_codec, ingest.state_store) judges those. The previous format
(MAGIC b"BFS1": a JSON header and a zlib-compressed *pickle*) is recognised and refused, never unpickled.
Every failure raises `StateFormatError` saying what and where.
"""
from __future__ import annotations

import struct
import zlib

import msgpack

MAGIC = b"BFS2"
PICKLE_MAGIC = b"BFS1"          # the previous service snapshot: JSON header + zlib(pickle), pipeline version 2
FORMAT_VERSION = 1
KIND_SERVICE, KIND_PIPELINE = 1, 2
KIND_NAMES = {KIND_SERVICE: "service snapshot", KIND_PIPELINE: "pipeline state"}
FLAG_ZLIB = 1
_HEAD = struct.Struct(">4sBBHBII")
# The state topic's largest record is 64 MB; an unpacked body may be a few times its compressed size.
MAX_BODY_BYTES = 512 * 1024 * 1024


class StateFormatError(ValueError):
    """A state value is not one this version can restore (crafted, corrupt, another version); one line."""


def seal(kind: int, schema_version: int, values, compress: int | None = None) -> bytes:
    """Plain values -> envelope bytes (`compress`: a zlib level, None = stored)."""
    body = msgpack.packb(values, use_bin_type=True, strict_types=False)
    flags = 0
    if compress is not None:
        body, flags = zlib.compress(body, compress), FLAG_ZLIB
    return _HEAD.pack(MAGIC, FORMAT_VERSION, kind, schema_version, flags, len(body), zlib.crc32(body)) + body


def open_sealed(data: bytes, kind: int, schema_version: int, where: str):
    """Envelope bytes -> plain values, after checking every header field; StateFormatError otherwise."""
    what = KIND_NAMES[kind]
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise StateFormatError(f"{where}: {what} is {type(data).__name__}, not bytes")
    data = bytes(data)
    if data[:4] == PICKLE_MAGIC or data[:1] == b"\x80":
        raise StateFormatError(f"{where}: {what} is in the previous, pickle-based format (snapshot version 2): "
                               f"refused, it is never unpickled")
    if len(data) < _HEAD.size:
        raise StateFormatError(f"{where}: {what} is truncated: {len(data)} bytes, the header alone is {_HEAD.size}")
    magic, fmt, got_kind, version, flags, length, crc = _HEAD.unpack_from(data)
    if magic != MAGIC:
        raise StateFormatError(f"{where}: not a borderfuse state value (magic {magic!r}, expected {MAGIC!r})")
    if fmt != FORMAT_VERSION:
        raise StateFormatError(f"{where}: envelope format version {fmt} is unknown (this version reads {FORMAT_VERSION})")
    if got_kind != kind:
        raise StateFormatError(f"{where}: holds a {KIND_NAMES.get(got_kind, f'kind {got_kind}')}, expected a {what}")
    if version != schema_version:
        raise StateFormatError(f"{where}: {what} schema version {version} is unknown (this version reads {schema_version})")
    if flags & ~FLAG_ZLIB:
        raise StateFormatError(f"{where}: unknown flags {flags:#04x}")
    body = data[_HEAD.size:]
    if len(body) != length:
        raise StateFormatError(f"{where}: {what} body is {len(body)} bytes, its header says {length} (truncated or padded)")
    if zlib.crc32(body) != crc:
        raise StateFormatError(f"{where}: {what} body fails its CRC-32 check (corrupt)")
    if flags & FLAG_ZLIB:
        inflater = zlib.decompressobj()
        try:
            body = inflater.decompress(body, MAX_BODY_BYTES)
        except zlib.error as exc:
            raise StateFormatError(f"{where}: {what} body does not inflate: {exc}") from None
        if inflater.unconsumed_tail or not inflater.eof:
            raise StateFormatError(f"{where}: {what} body inflates beyond {MAX_BODY_BYTES} bytes or is incomplete")
    try:
        return msgpack.unpackb(body, raw=False, use_list=True, strict_map_key=True, timestamp=0,
                               ext_hook=_refuse_ext)
    except (ValueError, TypeError, OverflowError, msgpack.UnpackException) as exc:
        raise StateFormatError(f"{where}: {what} body is not valid msgpack: {type(exc).__name__}: {exc}") from None


def _refuse_ext(code: int, data: bytes):
    raise ValueError(f"msgpack extension type {code} is not allowed")
