"""Reading the decoded-observation cache (see `borderfuse.whatif.cache` for its layout and key)."""
from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import Iterator

import numpy as np

from borderfuse.fusion.engine import HotlistItem
from borderfuse.ingest.pipeline import DecodedBatch
from borderfuse.sensors.base import CLASSES, SENSOR_KINDS, SIDES, DecodeError, Observation

CACHE_FORMAT = 1


class CacheError(Exception):
    """A cache directory that cannot be read or written (damaged, another format); the message says which."""


def _error_classes() -> dict[str, type[DecodeError]]:
    found, todo = {}, [DecodeError]
    while todo:
        cls = todo.pop()
        found.setdefault(cls.kind, cls)
        todo.extend(cls.__subclasses__())
    return found


class DecodedCache:
    """A written cache directory, its columns memory-mapped."""

    def __init__(self, directory: Path | str, plates=None):
        """`plates`: the PlatePseudonymiser the cache was written with (its hotlist records are decoded
        again on reading); needed by `batches()`, refused when it is another key than the cache's."""
        self.directory = Path(directory)
        self.plates = plates
        try:
            self.meta = json.loads((self.directory / "meta.json").read_text(encoding="utf-8"))
            if self.meta.get("format") != CACHE_FORMAT:
                raise CacheError(f"decoded cache {self.directory}: format {self.meta.get('format')}, "
                                 f"expected {CACHE_FORMAT}")
            self._batches = json.loads((self.directory / "batches.json").read_text(encoding="utf-8"))
            self._cols = {p.stem: np.load(p, mmap_mode="r", allow_pickle=False)
                          for p in self.directory.glob("*.npy") if p.stem != "strings"}
            self._strings = np.load(self.directory / "strings.npy", allow_pickle=False).tolist() + [None]
        except (OSError, ValueError, KeyError) as exc:
            raise CacheError(f"decoded cache {self.directory} cannot be read: {exc}") from exc
        if plates is not None and self.meta.get("plate_key") != plates.fingerprint:
            raise CacheError(f"decoded cache {self.directory} holds pseudonyms of another plate key "
                             f"({self.meta.get('plate_key') or 'none'}, not {plates.fingerprint})")
        if len(self._batches) != self.meta["batches"] or len(self._cols.get("time_us", ())) != self.meta["observations"]:
            raise CacheError(f"decoded cache {self.directory} is incomplete")

    @property
    def records(self) -> int:
        return self.meta["records"]

    def __len__(self) -> int:
        return len(self._batches)

    def batches(self) -> Iterator[DecodedBatch]:
        from borderfuse.capture.files import parse_line
        from borderfuse.sensors.hotlist import decode_hotlist
        errors = _error_classes()
        if self.plates is None and any(b["hotlist"] for b in self._batches):
            raise CacheError(f"decoded cache {self.directory}: reading its hotlist needs the plate pseudonymiser")
        start = 0
        for b in self._batches:
            end = start + b["observations"]
            observations = self._observations(start, end)
            arrival = self._cols["arrival_ms"][start:end].tolist()
            start = end
            entries = [(ms, (o.sensor_id, o.topic, o.partition, o.offset), o) for ms, o in zip(arrival, observations)]
            for position, arrival_ms, key, time_us, line in b["hotlist"]:   # ascending positions
                entries.insert(position, (arrival_ms, tuple(key), HotlistItem(time_us, decode_hotlist(parse_line(line), self.plates))))
            dead = []
            for line, kind, reason, field, topic, partition, offset in b["dead"]:
                exc = errors.get(kind, DecodeError)(reason, topic=topic, partition=partition, offset=offset,
                                                    field=field)
                if exc.kind != kind:
                    exc.kind = kind
                dead.append((parse_line(line), exc))
            yield DecodedBatch(b["records"], collections.Counter(dict(b["topics"])),
                               collections.Counter(dict(b["duplicates"])), entries, dead)

    def _observations(self, start: int, end: int) -> list[Observation]:
        """Observations of rows start:end without re-running validators or converters: they were
        validated when decoded, and building ~10^6 of them is most of a warm replay's overhead."""
        if end == start:
            return []
        c = {name: np.array(col[start:end]) for name, col in self._cols.items()}
        for name in ("xy", "cov", "velocity"):
            c[name].setflags(write=False)   # as Observation's converter leaves them
        s = self._strings
        out = []
        new = Observation.__new__
        put = object.__setattr__
        columns = zip(c["time_us"].tolist(), c["side"].tolist(), c["sensor_id"].tolist(),
                      c["sensor_kind"].tolist(), c["has_xy"].tolist(), c["xy"], c["cov"], c["has_velocity"].tolist(),
                      c["velocity"], c["cls"].tolist(), c["confidence"].tolist(), c["local_id"].tolist(),
                      c["status"].tolist(), c["plate"].tolist(), c["country"].tolist(), c["direction"].tolist(),
                      c["topic"].tolist(), c["partition"].tolist(), c["offset"].tolist())
        for (t, side, sensor, kind, has_xy, xy, cov, has_v, v, cls, conf, local, status, plate, country,
             direction, topic, partition, offset) in columns:
            o = new(Observation)
            put(o, "time_us", t)
            put(o, "side", SIDES[side])
            put(o, "sensor_id", s[sensor])
            put(o, "sensor_kind", SENSOR_KINDS[kind])
            put(o, "xy", xy if has_xy else None)
            put(o, "cov", cov)
            put(o, "velocity", v if has_v else None)
            put(o, "cls", None if cls < 0 else CLASSES[cls])
            put(o, "confidence", None if conf != conf else conf)
            put(o, "local_id", s[local])
            put(o, "status", s[status])
            put(o, "plate", s[plate])
            put(o, "country", s[country])
            put(o, "direction", s[direction])
            put(o, "topic", s[topic])
            put(o, "partition", partition)
            put(o, "offset", offset)
            out.append(o)
        return out
