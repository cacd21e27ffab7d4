"""`borderfuse decode CAPTURE`: decode a capture file without Kafka.

Drops byte-identical duplicates, decodes every sensor record and hotlist record, and prints
per-topic counts, every dead letter (topic, offset, reason), duplicates and records/s.
`--out` writes the observations as JSON lines (plates as keyed pseudonyms, "<key id>:<hex>", as
the service holds them: see [privacy] in the settings), `--dlq` the dead letters as capture lines on
`<topic>.dlq` (key and value unchanged) with their dead-letter headers.
"""
from __future__ import annotations

import base64
import collections
import gzip
import json
import sys
import time
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path

from borderfuse.capture.files import CaptureFormatError, CaptureReader
from borderfuse.sensors.base import DecodeError, Observation, RawRecord
from borderfuse.sensors.dedup import DuplicateFilter
from borderfuse.sensors.dlq import dead_letter_headers, dead_letter_topic
from borderfuse.sensors.hotlist import decode_hotlist


def register(sub):
    p = sub.add_parser(
        "decode", help="decode a capture file: per-topic counts, dead letters, duplicates (no Kafka)",
        description=__doc__.split("\n\n", 1)[1])
    p.add_argument("capture", metavar="CAPTURE", type=Path, help="capture file (.jsonl or .jsonl.gz)")
    p.add_argument("--out", metavar="FILE", type=Path, help="write observations here as JSON lines (.gz: gzipped; "
                   "plates as keyed pseudonyms)")
    p.add_argument("--dlq", metavar="FILE", type=Path,
                   help="write dead letters here as capture lines on <topic>.dlq with a 'headers' object")
    p.add_argument("--batch", metavar="N", type=int, default=2000,
                   help="records projected per batch (default 2000)")
    p.set_defaults(func=_run)


def _iso(time_us: int) -> str:
    return datetime.fromtimestamp(time_us / 1e6, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def observation_json(obs: Observation) -> dict:
    return {
        "time": _iso(obs.time_us), "time_us": obs.time_us, "side": obs.side, "sensor_id": obs.sensor_id,
        "sensor_kind": obs.sensor_kind, "x": float(obs.xy[0]), "y": float(obs.xy[1]), "cov": obs.cov.tolist(),
        "velocity": None if obs.velocity is None else obs.velocity.tolist(), "cls": obs.cls,
        "confidence": obs.confidence, "local_id": obs.local_id, "status": obs.status, "plate": obs.plate,
        "country": obs.country, "direction": obs.direction,
        "topic": obs.topic, "partition": obs.partition, "offset": obs.offset,
    }


def dead_letter_json(record: RawRecord, error: DecodeError) -> dict:
    b64 = lambda raw: None if raw is None else base64.b64encode(raw).decode()  # noqa: E731
    return {"topic": dead_letter_topic(record.topic), "partition": record.partition, "offset": record.offset,
            "timestamp_ms": record.timestamp_ms, "key": b64(record.key), "value": b64(record.value),
            "headers": {name: value.decode("utf-8", "replace") for name, value in dead_letter_headers(record, error)}}


def _open_out(stack: ExitStack, path: Path | None):
    if path is None:
        return None
    return stack.enter_context(gzip.open(path, "wt") if path.name.endswith(".gz") else open(path, "w"))


def _run(args) -> int:
    if args.batch <= 0:
        print("borderfuse decode: --batch must be > 0", file=sys.stderr)
        return 2
    # imported here: pyproj and shapely are slow to import and every other command's --help would pay
    from borderfuse.geo.geography import Geography
    from borderfuse.ingest.plate_key import plate_pseudonymiser
    from borderfuse.privacy.plates import PlateKeyError
    from borderfuse.sensors.decode import RecordDecoder
    from borderfuse.sensors.topics import HOTLIST_TOPIC

    icd = args.settings.icd
    try:
        plates = plate_pseudonymiser(args.settings)
    except PlateKeyError as exc:
        print(f"borderfuse decode: {exc}", file=sys.stderr)
        return 2
    decoder = RecordDecoder(Geography.load(icd.geo_dir), icd.schemas_dir, plates)
    dedup = DuplicateFilter(args.settings.fusion.duplicate_window_s)
    counts = collections.defaultdict(collections.Counter)
    dead_letters: list[tuple[RawRecord, DecodeError]] = []
    reader = CaptureReader(args.capture, strict=False,
                           on_bad_line=lambda exc: print(f"skipped bad capture line: {exc}", file=sys.stderr))
    started = time.perf_counter()
    with ExitStack() as stack:
        out, dlq = _open_out(stack, args.out), _open_out(stack, args.dlq)

        def flush(batch: list[RawRecord]) -> None:
            observations, dead = decoder.decode_batch(batch)
            for obs in observations:
                counts[obs.topic]["observations"] += 1
                if out:
                    out.write(json.dumps(observation_json(obs)) + "\n")
            _dead(dead)

        def _dead(dead: list[tuple[RawRecord, DecodeError]]) -> None:
            for record, error in dead:
                counts[record.topic]["dead letters"] += 1
                dead_letters.append((record, error))
                if dlq:
                    dlq.write(json.dumps(dead_letter_json(record, error)) + "\n")

        batch: list[RawRecord] = []
        try:
            for record in reader:
                counts[record.topic]["records"] += 1
                if dedup.is_duplicate(record):
                    counts[record.topic]["duplicates"] += 1
                elif record.topic == HOTLIST_TOPIC:
                    try:
                        decode_hotlist(record, plates)
                        counts[record.topic]["hotlist updates"] += 1
                    except DecodeError as exc:
                        _dead([(record, exc)])
                else:
                    batch.append(record)
                    if len(batch) >= args.batch:
                        flush(batch)
                        batch = []
            flush(batch)
        except (CaptureFormatError, FileNotFoundError) as exc:
            print(f"borderfuse decode: {exc}", file=sys.stderr)
            return 1
    elapsed = time.perf_counter() - started
    _report(counts, dead_letters, reader, dedup, elapsed)
    return 0


def _report(counts, dead_letters, reader, dedup, elapsed) -> None:
    columns = ("records", "observations", "hotlist updates", "duplicates", "dead letters")
    print(f"{'topic':<24}" + "".join(f"{c:>16}" for c in columns))
    for topic in sorted(counts):
        print(f"{topic:<24}" + "".join(f"{counts[topic][c]:>16}" for c in columns))
    total = collections.Counter()
    for c in counts.values():
        total.update(c)
    print(f"{'total':<24}" + "".join(f"{total[c]:>16}" for c in columns))
    print(f"\ndead letters: {len(dead_letters)}")
    for record, error in sorted(dead_letters, key=lambda p: (p[0].topic, p[0].partition, p[0].offset)):
        print(f"  {record.topic}[{record.partition}]@{record.offset}  {error.kind}: {error.reason}")
    print(f"duplicates dropped: {dedup.duplicates}; bad capture lines skipped: {reader.bad_lines}")
    rate = reader.records / elapsed if elapsed > 0 else float("inf")
    print(f"{reader.records} records in {elapsed:.2f} s: {rate:,.0f} records/s")
