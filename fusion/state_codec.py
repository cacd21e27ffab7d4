"""The fusion state as plain values, field by field, and back: what the snapshot on `borderfuse.state` holds.

No pickle and no class lookup by name: a fixed schema (below) says, for every object of the state, which
project type it is and what each of its fields holds. Encoding walks the schema and yields only None, bool,
int, float, str, bytes and lists (what msgpack carries, `ingest.state_envelope` packs them); decoding walks
the same schema over untrusted values, checks every type, length and dtype, and builds nothing but the
project's own types (attrs classes through their validating constructors). Anything else raises
`StateCodecError` naming the field path, e.g. `engine.tracker.tracks[3].class_weight: ...`.

Numpy arrays travel as [dtype, shape, bytes] with the dtype from `ARRAY_DTYPES`. Objects that carry
configuration (the geography, the rules) are not encoded: their state fields are restored into the
instances a freshly built pipeline already holds (`restore_into`). A new attribute on a state type must be
added here; tests/test_state_codec.py fails until it is (the schemas are compared with the live objects).
"""
from __future__ import annotations

import collections

import numpy as np

from borderfuse.fusion.crossing import CrossingCandidate, _SideState
from borderfuse.fusion.engine import FusionEngine, HotlistItem
from borderfuse.fusion.hotlist import Passage
from borderfuse.fusion.loitering import _Dwell
from borderfuse.fusion.reorder import ReorderBuffer
from borderfuse.fusion.state_kinds import (ARRAY_DTYPES, BOOL, BYTES, FLOAT, INT, STR, Array, Kind, Map, Obj,  # noqa: F401
                                           OneOf, Opt, Record, Seq, StateCodecError, Tup, dec_fields,
                                           restore_into, schema_digest)
from borderfuse.fusion.tracker import Track
from borderfuse.fusion.types import Incident, TrackReport
from borderfuse.sensors.base import Observation
from borderfuse.sensors.hotlist import HotlistEntry, HotlistUpdate

OPT_STR, OPT_INT, OPT_FLOAT = Opt(STR), Opt(INT), Opt(FLOAT)
STR_SET = Seq(STR, set)
XY = Tup(FLOAT, FLOAT)

OBSERVATION = Obj(Observation, [
    ("time_us", INT), ("side", STR), ("sensor_id", STR), ("sensor_kind", STR), ("xy", Opt(Array("<f8", 1))),
    ("cov", Array("<f8", 2)), ("velocity", Opt(Array("<f8", 1))), ("cls", OPT_STR), ("confidence", OPT_FLOAT),
    ("local_id", OPT_STR), ("status", OPT_STR), ("plate", OPT_STR), ("country", OPT_STR), ("direction", OPT_STR),
    ("topic", STR), ("partition", INT), ("offset", INT)])
HOTLIST_ENTRY = Obj(HotlistEntry, [("plate_as_listed", STR), ("reason", STR), ("list", STR), ("added_us", INT)])
HOTLIST_UPDATE = Obj(HotlistUpdate, [("key", STR), ("country", STR), ("plate", STR), ("entry", Opt(HOTLIST_ENTRY))])
HOTLIST_ITEM = Obj(HotlistItem, [("time_us", INT), ("update", HOTLIST_UPDATE)])
# What the reorder buffer, the settling heap and the engine hold: an observation or a hotlist update.
ITEM = OneOf(OBSERVATION, HOTLIST_ITEM)
ORDER_KEY = Tup(STR, STR, INT, INT)           # (sensor id or "", topic, partition, offset)
SOURCE = Tup(STR, INT)                        # (topic, partition)

REORDER = Obj(ReorderBuffer, [
    ("lateness_us", INT), ("idle_us", INT), ("max_items", INT), ("watermark_us", OPT_INT), ("forced", INT),
    ("idle_arrival_ms", INT), ("_heap", Seq(Tup(INT, ORDER_KEY, INT, ITEM))), ("_newest", Map(SOURCE, INT)),
    ("_arrival", Map(SOURCE, INT)), ("_newest_arrival", OPT_INT), ("_pushed", INT)])



class _DuplicatesState(Record):
    """DuplicateFilter: its `_order` deque of (broker ms, 16-byte digest) travels as an int64 array and one
    bytes string of digests; `_last_seen` is not sent, it is exactly "digest -> ms of its last entry in
    `_order`" (the filter adds to both at once and deletes from `_last_seen` only what `_order` drops).
    Sending both doubled the snapshot's largest, incompressible part."""

    __slots__ = ()
    DIGEST = 16
    _WIRE = [("window_ms", INT), ("max_entries", INT), ("order_ms", Array("<i8", 1)), ("order_digests", BYTES),
             ("_newest_ms", INT), ("duplicates", INT), ("duplicates_by_topic", Map(STR, INT, collections.Counter))]

    def enc(self, value):
        order = value._order
        digests = b"".join(d for _, d in order)
        if len(digests) != self.DIGEST * len(order):
            raise StateCodecError("_order", f"digests must be {self.DIGEST} bytes each")
        fields = {**{n: getattr(value, n) for n, _ in self._WIRE if hasattr(value, n)},
                  "order_ms": np.fromiter((t for t, _ in order), dtype=np.int64, count=len(order)),
                  "order_digests": digests}
        return Record("DuplicateFilter", self._WIRE).enc(fields)

    def dec(self, value):
        fields = dec_fields(self._WIRE, value, self.label)
        times, digests = fields.pop("order_ms"), fields.pop("order_digests")
        if len(digests) != self.DIGEST * len(times):
            raise StateCodecError("order_digests", f"{len(digests)} bytes for {len(times)} entries of {self.DIGEST}")
        size = self.DIGEST
        order = collections.deque((int(t), digests[i * size:(i + 1) * size]) for i, t in enumerate(times.tolist()))
        fields["_order"] = order
        fields["_last_seen"] = {d: t for t, d in order}
        return fields


DUPLICATES = _DuplicatesState("DuplicateFilter", [
    ("window_ms", INT), ("max_entries", INT), ("_last_seen", Map(BYTES, INT)),
    ("_order", Seq(Tup(INT, BYTES), collections.deque)), ("_newest_ms", INT), ("duplicates", INT),
    ("duplicates_by_topic", Map(STR, INT, collections.Counter))])

TRACK = Obj(Track, [
    ("id", STR), ("created_us", INT), ("hits", INT), ("confirmed", BOOL), ("confirmed_us", OPT_INT),
    ("sources", STR_SET), ("class_weight", Array("<f8", 1)), ("plate", OPT_STR), ("country", OPT_STR)])
TRACKER = Record("Tracker", [
    ("x", Array("<f8", 2)), ("P", Array("<f8", 3)), ("t_us", Array("<i8", 1)), ("recent_scans", Array("<i8", 2)),
    ("_scan_no", INT), ("tracks", Seq(TRACK)), ("_index", Map(STR, INT)),
    ("_hints", Map(Tup(STR, STR), Tup(STR, INT))), ("_next_id", INT), ("confirmed_total", INT),
    ("near_misses", INT)])

CROSSINGS = Record("CrossingDetector", [
    ("_state", Map(STR, Obj(_SideState, [("side", OPT_STR), ("path", Seq(Tup(INT, FLOAT, FLOAT)))])))])
LOITERING = Record("LoiteringDetector", [
    ("_state", Map(STR, Obj(_Dwell, [("samples", Seq(Tup(INT, FLOAT, FLOAT, BOOL), collections.deque)),
                                     ("raised_center", Opt(XY)), ("judged_oldest_us", OPT_INT)]))),
    ("_count", Map(STR, INT, collections.Counter))])
HOTLIST = Record("HotlistMatcher", [
    ("entries", Map(STR, HOTLIST_ENTRY)),
    ("_open", Map(STR, Obj(Passage, [("incident_id", STR), ("first_us", INT), ("last_us", INT),
                                     ("direction", OPT_STR), ("sources", STR_SET), ("track_id", OPT_STR),
                                     ("seq", INT), ("first_xy", Opt(XY))])))])

INCIDENT = Obj(Incident, [
    ("incident_id", STR), ("type", STR), ("sector", STR), ("time_us", INT), ("lat", FLOAT), ("lon", FLOAT),
    ("track_id", OPT_STR), ("sources", Seq(STR, tuple)), ("severity", STR), ("summary", STR), ("cls", OPT_STR),
    ("plate", OPT_STR), ("country", OPT_STR), ("seq", INT), ("decided_at_us", OPT_INT), ("status", STR)])
CANDIDATE = Obj(CrossingCandidate, [
    ("track_id", STR), ("time_us", INT), ("x", FLOAT), ("y", FLOAT), ("at_crossing_point", BOOL),
    ("from_side", STR), ("to_side", STR)])
TRACK_REPORT = Obj(TrackReport, [
    ("track_id", STR), ("time_us", INT), ("lat", FLOAT), ("lon", FLOAT), ("x", FLOAT), ("y", FLOAT),
    ("vx", FLOAT), ("vy", FLOAT), ("sigma_m", FLOAT), ("cls", STR), ("sources", Seq(STR, tuple))])

# FusionEngine's own fields; `_track_sources` values are None where they are the track's own set (the
# engine shares that set object with the track, and a merge grows it in place: the sharing is restored).
ENGINE = Record("FusionEngine", [
    ("tracker", TRACKER), ("crossings", CROSSINGS), ("loitering", LOITERING), ("hotlist", HOTLIST),
    ("collect_tracks", BOOL), ("track_reports", Seq(TRACK_REPORT)), ("stats", Map(STR, INT, collections.Counter)),
    ("_pending", Seq(ITEM)), ("_held", Seq(CANDIDATE)), ("_raised", Seq(Tup(STR, INT, FLOAT, FLOAT, STR))),
    ("_last_class", Map(STR, STR)), ("_last_confirmed", Map(STR, BOOL)), ("_track_sources", Map(STR, Opt(STR_SET))),
    ("_next_maintain", OPT_INT), ("_crossing_no", Map(STR, INT, collections.Counter)),
    ("_following", Map(STR, Tup(INCIDENT, CANDIDATE, INT)))])
# What a FusionEngine holds that is configuration, rebuilt from the settings and rules, not state.
ENGINE_CONFIG_FIELDS = {"geography": (), "rules": ()}
NESTED_CONFIG_FIELDS = {"tracker": ("config",), "crossings": ("geography", "params"),
                        "loitering": ("geography", "rule", "max_sigma"), "hotlist": ("rule",)}


def encode_engine(engine: FusionEngine) -> list:
    """The engine's state as plain values (the schema ENGINE)."""
    fields = {n: getattr(engine, n) for n, _ in ENGINE.fields}
    tracks = {t.id: t.sources for t in engine.tracker.tracks}
    fields["_track_sources"] = {tid: None if tracks.get(tid) is s else s for tid, s in engine._track_sources.items()}
    return ENGINE.enc(fields)


def decode_engine_into(engine: FusionEngine, value) -> None:
    """Restore `encode_engine`'s values into `engine` (freshly built with its geography and rules)."""
    fields = ENGINE.dec(value)
    tracker = fields["tracker"]
    tracks = {t.id: t for t in tracker["tracks"]}
    shared = {}
    for tid, sources in fields["_track_sources"].items():
        if sources is None:
            if tid not in tracks:
                raise StateCodecError(f"_track_sources[{tid!r}]", "shares the sources of a track that is not there")
            sources = tracks[tid].sources
        shared[tid] = sources
    fields["_track_sources"] = shared
    _check_tracker(tracker)
    for name in ("tracker", "crossings", "loitering", "hotlist"):
        restore_into(getattr(engine, name), fields.pop(name))
    restore_into(engine, fields)


def _check_tracker(tracker: dict) -> None:
    """The tracker's arrays and track list must agree (the filter indexes them together)."""
    n = len(tracker["tracks"])
    shapes = {"x": (n, 4), "P": (n, 4, 4), "t_us": (n,)}
    for name, shape in shapes.items():
        if tracker[name].shape != shape:
            raise StateCodecError(f"tracker.{name}", f"shape {tracker[name].shape} for {n} tracks, expected {shape}")
    if tracker["recent_scans"].shape[0] != n:
        raise StateCodecError("tracker.recent_scans", f"{tracker['recent_scans'].shape[0]} rows for {n} tracks")
    if tracker["_index"] != {t.id: i for i, t in enumerate(tracker["tracks"])}:
        raise StateCodecError("tracker._index", "does not index the track list")
