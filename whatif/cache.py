"""The decoded-observation cache: a capture decoded once, fused many times.

Decoding (capture line parsing, Avro/JSON, validation, projection) is a fixed cost of every replay of a
capture, whatever the rules; the cache keeps its result so that later replays and what-ifs skip it.

Layout: a directory `<capture name>.decoded-<key>` beside the capture (or under `cache_dir`, or
`~/.cache/borderfuse/decoded/` when the capture's folder is read-only), holding
- one `.npy` column per `Observation` field (strings as codes into `strings.npy`, None as -1 / NaN / a mask),
  memory-mapped on load;
- `batches.json`: per batch of `chunk` records, what is not an observation: records and duplicates per
  topic, the hotlist records (capture lines) and the dead letters (capture line, kind, reason);
- `meta.json`: the key's parts, counts and the dead-letter counts per topic and reason.

The key is the SHA-256 of the capture's bytes and the decoder's fingerprint: `DECODER_VERSION`, the
source of `borderfuse.sensors` and `borderfuse.geo`, the ICD geography and schema files, the duplicate
window and the batch size. Any of them changing makes a new key, so a stale cache is never read.
The batch boundaries are kept because the pipeline's reorder buffer releases per batch: replaying the
cached batches gives output byte-identical to decoding the capture again.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Callable, Iterable, Iterator

import attrs
import numpy as np

from borderfuse.fusion.engine import HotlistItem
from borderfuse.ingest.pipeline import DecodedBatch
from borderfuse.sensors.topics import HOTLIST_TOPIC
from borderfuse.sensors.base import CLASSES, SENSOR_KINDS, SIDES, RawRecord
from borderfuse.whatif.cache_read import CACHE_FORMAT, CacheError, DecodedCache

__all__ = ["CacheError", "CacheKey", "CacheWriter", "DecodedCache", "decoded_batches", "ensure_cache"]

# Bump when decoding changes in a way the source fingerprint cannot see (e.g. a dependency's behaviour).
DECODER_VERSION = 2   # 2: plates are keyed pseudonyms (borderfuse.privacy.plates)
_HASH_BLOCK = 1 << 20
_STR_COLUMNS = ("sensor_id", "local_id", "status", "plate", "country", "direction", "topic")


def file_sha256(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _hash_tree(digest, root: Path, pattern: str) -> None:
    for path in sorted(root.rglob(pattern)):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")


def decoder_fingerprint(geo_dir: Path | str, schemas_dir: Path | str, duplicate_window_s: float, chunk: int,
                        plate_key: str = "") -> str:
    """Everything besides the capture that decides what decoding yields (`plate_key`: the plate
    pseudonymiser's fingerprint, never the key: another key gives other pseudonyms)."""
    import borderfuse.geo
    import borderfuse.sensors
    digest = hashlib.sha256(f"decoder {DECODER_VERSION} format {CACHE_FORMAT} chunk {chunk} "
                            f"duplicate_window_s {duplicate_window_s!r} plate_key {plate_key}\0".encode())
    for package in (borderfuse.sensors, borderfuse.geo):
        _hash_tree(digest, Path(package.__file__).parent, "*.py")
    _hash_tree(digest, Path(geo_dir), "*")
    _hash_tree(digest, Path(schemas_dir), "*")
    return digest.hexdigest()


@attrs.frozen(slots=True)
class CacheKey:
    capture: Path
    capture_sha256: str
    fingerprint: str
    chunk: int
    plate_key: str = ""   # PlatePseudonymiser.fingerprint of the key the cache's plates are pseudonyms of

    @classmethod
    def of(cls, capture: Path | str, settings, chunk: int) -> "CacheKey":
        capture = Path(capture)
        if not capture.is_file():
            raise FileNotFoundError(f"capture file {capture} does not exist")
        from borderfuse.ingest.plate_key import plate_pseudonymiser
        plate_key = plate_pseudonymiser(settings).fingerprint
        return cls(capture, file_sha256(capture),
                   decoder_fingerprint(settings.icd.geo_dir, settings.icd.schemas_dir,
                                       settings.fusion.duplicate_window_s, chunk, plate_key), chunk, plate_key)

    @property
    def digest(self) -> str:
        return hashlib.sha256(f"{self.capture_sha256}:{self.fingerprint}".encode()).hexdigest()[:20]

    def directory(self, cache_dir: Path | str | None = None) -> Path:
        """Beside the capture if its folder is writable, else under cache_dir or the user's cache."""
        name = f"{self.capture.name}.decoded-{self.digest}"
        if cache_dir is not None:
            return Path(cache_dir) / name
        folder = self.capture.resolve().parent
        # a folder marked read-only (no write bit at all) stays untouched even for root, who may write anyway
        if os.access(folder, os.W_OK) and folder.stat().st_mode & 0o222:
            return folder / name
        return Path.home() / ".cache" / "borderfuse" / "decoded" / name


# --- writing ---

def _line(record: RawRecord) -> str:
    from borderfuse.capture.files import format_record
    return format_record(record)


class CacheWriter:
    """Collects `DecodedBatch`es in arrival order, then writes the cache directory atomically."""

    def __init__(self, key: CacheKey, directory: Path):
        self.key = key
        self.directory = Path(directory)
        self._strings: dict[str, int] = {}
        self._columns: dict[str, list[np.ndarray]] = {}
        self._batches: list[dict] = []
        self.records = 0
        self.observations = 0

    def _codes(self, values: Iterable[str | None]) -> np.ndarray:
        table = self._strings
        return np.fromiter((-1 if v is None else table.setdefault(v, len(table)) for v in values), np.int32)

    def _add(self, name: str, array: np.ndarray) -> None:
        self._columns.setdefault(name, []).append(array)

    def add(self, batch: DecodedBatch, records: list[RawRecord]) -> None:
        """One batch and the records it was decoded from."""
        obs, hotlist = [], []
        arrival = []
        for position, (arrival_ms, key, item) in enumerate(batch.entries):
            if isinstance(item, HotlistItem):
                hotlist.append((position, arrival_ms, key, item))
                continue
            if key != (item.sensor_id, item.topic, item.partition, item.offset):
                raise CacheError(f"observation order key {key!r} is not (sensor_id, topic, partition, offset): "
                                 f"the pipeline changed; bump DECODER_VERSION and teach the cache the new key")
            obs.append(item)
            arrival.append(arrival_ms)
        n = len(obs)
        self._add("arrival_ms", np.array(arrival, np.int64))
        self._add("time_us", np.fromiter((o.time_us for o in obs), np.int64, n))
        self._add("side", np.fromiter((SIDES.index(o.side) for o in obs), np.int8, n))
        self._add("sensor_kind", np.fromiter((SENSOR_KINDS.index(o.sensor_kind) for o in obs), np.int8, n))
        self._add("cls", np.fromiter((-1 if o.cls is None else CLASSES.index(o.cls) for o in obs), np.int8, n))
        self._add("confidence", np.fromiter((np.nan if o.confidence is None else o.confidence for o in obs),
                                            np.float64, n))
        self._add("partition", np.fromiter((o.partition for o in obs), np.int32, n))
        self._add("offset", np.fromiter((o.offset for o in obs), np.int64, n))
        self._add("has_xy", np.fromiter((o.xy is not None for o in obs), np.bool_, n))
        self._add("xy", np.array([(np.nan, np.nan) if o.xy is None else o.xy for o in obs], np.float64).reshape(n, 2))
        self._add("cov", np.array([o.cov for o in obs], np.float64).reshape(n, 2, 2))
        self._add("has_velocity", np.fromiter((o.velocity is not None for o in obs), np.bool_, n))
        self._add("velocity", np.array([(np.nan, np.nan) if o.velocity is None else o.velocity for o in obs],
                                       np.float64).reshape(n, 2))
        for name in _STR_COLUMNS:
            self._add(name, self._codes(getattr(o, name) for o in obs))
        self._batches.append({
            "records": batch.records, "observations": n,
            "topics": [list(x) for x in batch.topic_counts.items()],
            "duplicates": [list(x) for x in batch.duplicate_counts.items()],
            "hotlist": [[position, arrival_ms, list(key), item.time_us, _line(record)]
                        for (position, arrival_ms, key, item), record in zip(hotlist, _hotlist_records(hotlist, records))],
            "dead": [[_line(record), exc.kind, exc.reason, exc.field, exc.topic, exc.partition, exc.offset]
                     for record, exc in batch.dead_letters],
        })
        self.records += batch.records
        self.observations += n

    def finish(self) -> Path:
        """Write to a temporary sibling, then rename: a reader never sees half a cache."""
        parent = self.directory.parent
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=self.directory.name + ".tmp-", dir=parent))
        try:
            for name, parts in self._columns.items():
                np.save(tmp / f"{name}.npy", np.concatenate(parts) if parts else np.zeros(0))
            np.save(tmp / "strings.npy", np.array(list(self._strings), dtype=np.str_))
            (tmp / "batches.json").write_text(json.dumps(self._batches, separators=(",", ":")), encoding="utf-8")
            dead = {}
            for b in self._batches:
                for d in b["dead"]:
                    topic = json.loads(d[0])["topic"]
                    dead[f"{topic}/{d[1]}"] = dead.get(f"{topic}/{d[1]}", 0) + 1
            meta = {"format": CACHE_FORMAT, "decoder_version": DECODER_VERSION, "capture": str(self.key.capture),
                    "capture_sha256": self.key.capture_sha256, "fingerprint": self.key.fingerprint,
                    "plate_key": self.key.plate_key,
                    "chunk": self.key.chunk, "records": self.records, "observations": self.observations,
                    "batches": len(self._batches), "dead_letters": dict(sorted(dead.items()))}
            (tmp / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
            if self.directory.exists():
                shutil.rmtree(self.directory)
            tmp.rename(self.directory)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        # one decoded copy per capture: older keys of the same capture are stale
        for old in parent.glob(f"{self.key.capture.name}.decoded-*"):
            if old != self.directory and old.is_dir() and ".tmp-" not in old.name:
                shutil.rmtree(old, ignore_errors=True)
        return self.directory


def _hotlist_records(hotlist: list, records: list[RawRecord]) -> list[RawRecord]:
    """The raw record of each hotlist entry (its order key is ("", topic, partition, offset)): the batch
    keeps the decoded update, the cache keeps the record and decodes it again on load (a handful a day)."""
    if not hotlist:
        return []
    by_position = {(r.topic, r.partition, r.offset): r for r in records if r.topic == HOTLIST_TOPIC}
    return [by_position[tuple(key[1:])] for _, _, key, _ in hotlist]


# --- the one entry point ---

def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def _records_with_position(capture: Path | str) -> Iterator[tuple[RawRecord, float]]:
    """The capture's records (strict, as `read_capture`) with the share of the file read so far, for progress."""
    import gzip
    import zlib
    from borderfuse.capture.files import CaptureFormatError, parse_line
    capture = Path(capture)
    if not capture.is_file():
        raise FileNotFoundError(f"capture file {capture} does not exist")
    line_no = 0
    with open(capture, "rb") as raw:
        total = max(os.fstat(raw.fileno()).st_size, 1)
        stream = gzip.GzipFile(fileobj=raw) if capture.name.endswith(".gz") else raw
        try:
            for line_no, line in enumerate(stream, start=1):
                if line.strip():
                    yield parse_line(line, capture, line_no), raw.tell() / total
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise CaptureFormatError(capture, line_no + 1, f"corrupt or truncated gzip: {exc}") from exc


def decoded_batches(capture: Path | str, pipeline, settings, *, chunk: int, cache_dir: Path | str | None = None,
                    log: Callable[[str], None] = _stderr,
                    progress: Callable[[int, float], None] | None = None,
                    key: CacheKey | None = None) -> Iterator[DecodedBatch]:
    """The capture's decoded batches of `chunk` records: from the cache when there is one for this capture
    and decoder, else decoded by `pipeline.decode` and written to the cache once all are read (a capture
    with a bad line raises before anything is written). `progress(records, share of the file)` while decoding;
    `key`: the capture's CacheKey when the caller has it already (hashing a day's capture takes a while)."""
    key = key if key is not None else CacheKey.of(capture, settings, chunk)
    directory = key.directory(cache_dir)
    if (directory / "meta.json").is_file():
        try:
            cache = DecodedCache(directory, pipeline.plates)
        except CacheError as exc:
            log(f"{exc}; decoding the capture again")
        else:
            log(f"decoded cache: {directory} ({cache.records} records, decoding skipped)")
            yield from cache.batches()
            return
    writer: CacheWriter | None = CacheWriter(key, directory)
    records: list[RawRecord] = []
    done = 0

    def keep(batch: DecodedBatch) -> None:
        nonlocal writer
        if writer is not None:
            try:
                writer.add(batch, records)
            except CacheError as exc:   # the output is unaffected; only the cache is given up
                log(f"decoded cache: not written ({exc})")
                writer = None

    for record, share in _records_with_position(capture):
        records.append(record)
        if len(records) >= chunk:
            batch = pipeline.decode(records)
            keep(batch)
            yield batch
            done += len(records)
            records = []
            if progress is not None:
                progress(done, share)
    if records:
        batch = pipeline.decode(records)
        keep(batch)
        yield batch
        done += len(records)
    if progress is not None:
        progress(done, 1.0)
    if writer is not None:
        try:
            log(f"decoded cache: wrote {writer.finish()}")
        except OSError as exc:
            log(f"decoded cache: not written ({exc}); the next run decodes again")


def ensure_cache(capture: Path | str, settings, *, chunk: int, cache_dir: Path | str | None = None,
                 log: Callable[[str], None] = _stderr,
                 progress: Callable[[int, float], None] | None = None) -> DecodedCache:
    """The capture's decoded cache, decoding it first when there is none (a what-if's first step)."""
    from borderfuse.geo.geography import Geography
    from borderfuse.fusion.rules import RuleSet
    from borderfuse.ingest.pipeline import Pipeline
    key = CacheKey.of(capture, settings, chunk)
    directory = key.directory(cache_dir)
    if (directory / "meta.json").is_file():
        try:
            cache = DecodedCache(directory)
            log(f"decoded cache: {directory} ({cache.records} records, decoding skipped)")
            return cache
        except CacheError as exc:
            log(f"{exc}; decoding the capture again")
    # decoding needs no rules: any rule set gives the same decoded batches
    from borderfuse.ingest.plate_key import plate_pseudonymiser
    decoder = Pipeline(Geography.load(settings.icd.geo_dir), RuleSet(), settings.icd.schemas_dir,
                       plates=plate_pseudonymiser(settings), allowed_lateness_s=settings.fusion.allowed_lateness_s,
                       duplicate_window_s=settings.fusion.duplicate_window_s)
    for _ in decoded_batches(capture, decoder, settings, chunk=chunk, cache_dir=cache_dir, log=log,
                             progress=progress):
        pass
    if not (directory / "meta.json").is_file():
        raise CacheError(f"decoded cache {directory} could not be written (see the message above)")
    return DecodedCache(directory)
