"""Tracker tapes on disk, beside the decoded cache they were recorded from (`borderfuse.fusion.tape` for what
a tape is and why it is valid under any decision rules).

Layout: `<decoded cache dir>/tape-<key>/`, one `.npy` column per `TrackerTape` column and `meta.json` (format,
key, its parts, counts, CRC-32 of every column). Living inside the decoded cache, a tape goes when its cache is
rebuilt. The key is the SHA-256 of: the decoded cache's key (its directory name), the tracker config (the
rules' `[tracker]` section), the pipeline settings that shape the tracker's input (allowed lateness, idle
source times, reorder bound, arrival settle time, duplicate window), and the source of every module that
decides what the tracker is asked and answers (fusion tracker, kalman, association, merge, reorder, engine,
tape; ingest pipeline). Any change gives another key, so a stale tape is never read. Written to a temporary
sibling and renamed, so a reader never sees half a tape; read back memory-mapped after checking the CRCs, so a
damaged tape is refused (and recorded again) rather than replayed.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import zlib
from pathlib import Path
from typing import Callable

import attrs
import numpy as np

from borderfuse.fusion.tape import RecordingTracker, TapeError, TapeMismatch, TapeTracker, TrackerTape

__all__ = ["TapeError", "TapeMismatch", "TapeSession", "open_tape", "read_tape", "tape_directory", "write_tape"]

TAPE_FORMAT = 1
_SOURCES = {"borderfuse.fusion": ("tracker.py", "kalman.py", "association.py", "merge.py", "reorder.py", "engine.py",
                                  "tape.py"),
            "borderfuse.ingest": ("pipeline.py",)}


def source_fingerprint() -> str:
    import importlib
    digest = hashlib.sha256()
    for package, files in _SOURCES.items():
        folder = Path(importlib.import_module(package).__file__).parent
        for name in files:
            digest.update(f"{package}/{name}\0".encode() + (folder / name).read_bytes() + b"\0")
    return digest.hexdigest()


def key_parts(pipeline, decoded_dir: Path | str) -> dict:
    """What the tape of `pipeline` over the decoded cache `decoded_dir` depends on (see the module doc)."""
    reorder = pipeline.reorder
    return {"format": TAPE_FORMAT, "decoded_cache": Path(decoded_dir).name,
            "tracker": {k: repr(v) for k, v in attrs.asdict(pipeline.rules.tracker).items()},
            "pipeline": {"lateness_us": reorder.lateness_us, "idle_us": reorder.idle_us,
                         "idle_arrival_ms": reorder.idle_arrival_ms, "max_items": reorder.max_items,
                         "arrival_settle_ms": pipeline.arrival_settle_ms,
                         "duplicate_window_ms": pipeline.duplicates.window_ms},
            "sources": source_fingerprint()}


def tape_directory(pipeline, decoded_dir: Path | str) -> Path:
    parts = key_parts(pipeline, decoded_dir)
    key = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]
    return Path(decoded_dir) / f"tape-{key}"


def write_tape(tape: TrackerTape, directory: Path, parts: dict) -> Path:
    """Write atomically (temporary sibling, then rename); tapes of the same cache under an older source or
    format are removed (no key can reach them again)."""
    parent = directory.parent
    tmp = Path(tempfile.mkdtemp(prefix=directory.name + ".tmp-", dir=parent))
    try:
        crc = {}
        for name in TrackerTape.COLUMNS:
            column = np.ascontiguousarray(getattr(tape, name))
            np.save(tmp / f"{name}.npy", column)
            crc[name] = zlib.crc32(column.view(np.uint8).reshape(-1)) if column.size else 0
        meta = {"format": TAPE_FORMAT, "key": directory.name, "parts": parts, "calls": len(tape.calls),
                "rows": len(tape.row_track), "merge_pairs": len(tape.merge_pairs), "crc32": crc}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        if directory.exists():
            shutil.rmtree(directory)
        tmp.rename(directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in parent.glob("tape-*"):
        if old == directory or ".tmp-" in old.name or not old.is_dir():
            continue
        try:
            other = json.loads((old / "meta.json").read_text(encoding="utf-8"))["parts"]
        except (OSError, ValueError, KeyError, TypeError):
            other = None
        if other is None or other.get("sources") != parts["sources"] or other.get("format") != parts["format"]:
            shutil.rmtree(old, ignore_errors=True)
    return directory


def read_tape(directory: Path, parts: dict) -> TrackerTape:
    """The tape at `directory`, memory-mapped; TapeError when it is damaged, incomplete or of another key."""
    where = f"tracker tape {directory}"
    try:
        meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
        if meta.get("format") != TAPE_FORMAT or meta.get("parts") != parts:
            raise TapeError(f"{where}: written for another key or format")
        columns = {name: np.load(directory / f"{name}.npy", mmap_mode="r", allow_pickle=False)
                   for name in TrackerTape.COLUMNS}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise TapeError(f"{where} cannot be read: {exc}") from exc
    for name, column in columns.items():
        crc = zlib.crc32(np.ascontiguousarray(column).view(np.uint8).reshape(-1)) if column.size else 0
        if crc != meta["crc32"].get(name):
            raise TapeError(f"{where}: {name}.npy is damaged (CRC-32 {crc}, recorded {meta['crc32'].get(name)})")
    # plain ndarray views of the maps: the same pages, without np.memmap's overhead on each of a million slices
    tape = TrackerTape(**{name: np.asarray(column) for name, column in columns.items()})
    if (len(tape.calls), len(tape.row_track), len(tape.merge_pairs)) != (meta["calls"], meta["rows"],
                                                                        meta["merge_pairs"]):
        raise TapeError(f"{where} is incomplete")
    tape.validate(where)
    return tape


class TapeSession:
    """One run's use of the tape: replaying it (`mode` "read"), recording it ("record") or neither ("off")."""

    def __init__(self, pipeline, decoded_dir: Path | str, *, record: bool = True,
                 log: Callable[[str], None] = lambda m: None):
        self.pipeline = pipeline
        self.decoded_dir = Path(decoded_dir)
        self.log = log
        self.parts = key_parts(pipeline, decoded_dir)
        self.directory = tape_directory(pipeline, decoded_dir)
        engine = pipeline.engine
        if engine.tracker.started or pipeline.stats.records:
            raise TapeError("a tracker tape must be attached before the pipeline is fed")
        self.mode = "off"
        if (self.directory / "meta.json").is_file():
            try:
                tape = read_tape(self.directory, self.parts)
            except TapeError as exc:
                log(f"{exc}; running the tracker and recording the tape again")
            else:
                engine.tracker = TapeTracker(pipeline.rules.tracker, tape, f"tracker tape {self.directory}")
                self.mode = "read"
                log(f"tracker tape: {self.directory} ({len(tape.calls)} calls, tracking skipped)")
                return
        if record:
            engine.tracker = RecordingTracker(pipeline.rules.tracker)
            self.mode = "record"

    def finish(self, flushed: bool) -> None:
        """After the run. `flushed`: the run consumed its whole input (end-of-input flush), so a tape read must
        have been used to its last scan and a tape recorded is complete; an unflushed run writes no tape."""
        tracker = self.pipeline.engine.tracker
        if self.mode == "read" and flushed:
            tracker.check_finished()
        elif self.mode == "record" and flushed:
            if not (self.decoded_dir / "meta.json").is_file():
                self.log("tracker tape: not written (no decoded cache to keep it beside)")
                return
            tracker.run_out()
            try:
                written = write_tape(tracker.tape(), self.directory, self.parts)
            except OSError as exc:
                self.log(f"tracker tape: not written ({exc}); the next run tracks again")
                return
            self.log(f"tracker tape: wrote {written}")


def open_tape(pipeline, decoded_dir: Path | str, *, record: bool = True,
              log: Callable[[str], None] = lambda m: None) -> TapeSession:
    return TapeSession(pipeline, decoded_dir, record=record, log=log)
