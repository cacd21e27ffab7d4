"""`borderfuse replay CAPTURE --out incidents.jsonl`: the live pipeline over a capture file, offline."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from borderfuse.sensors.dlq import dead_letter_topic

CHUNK = 2000


def register(sub):
    p = sub.add_parser(
        "replay", help="run the fusion pipeline over a capture file and write its incidents",
        description="Run the same pipeline as the live service over a capture (.jsonl or .jsonl.gz, arrival "
        "order), deterministically: the same capture, rules and plate key give byte-identical output. Progress on stderr; "
        "a summary at the end (records, dead letters, duplicates, late, tracks, incidents per type and sector, "
        "records/s). Plates appear only in hotlist_vehicle incidents; the pipeline holds keyed pseudonyms "
        "([privacy] plate_key_file, made at the default place when missing); --dlq keeps the raw records.")
    p.add_argument("capture", metavar="CAPTURE", help="capture file (.jsonl or .jsonl.gz)")
    p.add_argument("--out", required=True, metavar="FILE",
                   help="incidents, one JSON object per line (ICD contract fields first; updates reuse the id)")
    p.add_argument("--dlq", metavar="FILE", help="dead letters: capture-format lines plus error_type, "
                   "error_message and dlq_topic")
    p.add_argument("--rules", metavar="FILE", help="rules TOML (default: fusion.rules_file of the settings)")
    p.add_argument("--tracks", metavar="FILE", help="confirmed track updates, one JSON object per line")
    p.add_argument("--quiet", action="store_true", help="no progress lines, only the summary")
    p.add_argument("--as-live", action="store_true",
                   help="stop where the live service stands once it has consumed the same records: no "
                   "end-of-input decisions (by default the end of the capture releases everything still "
                   "held and decides crossings waiting for their class)")
    p.add_argument("--cache", action="store_true", help="use the decoded-observation cache beside the capture "
                   "(or ~/.cache/borderfuse/decoded when its folder is read-only): the first run decodes and "
                   "writes it, later runs of the same capture and decoder skip decoding; same output. The "
                   "tracker's work is cached too (a tracker tape in the cache, keyed by the rules' [tracker] "
                   "section, the pipeline settings and the fusion code): a later run with any other decision "
                   "rules but the same [tracker] replays it instead of tracking again; same output")
    p.add_argument("--no-tape", action="store_true", help="with --cache: run the tracker even when a tracker "
                   "tape exists, and record none")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from borderfuse.fusion.rules import RulesError
    from borderfuse.capture.files import CaptureFormatError, format_record, read_capture
    from borderfuse.ingest.pipeline import Pipeline
    from borderfuse.fusion.tape import TapeError

    try:
        pipeline = Pipeline.from_settings(args.settings, rules_file=args.rules, collect_tracks=bool(args.tracks))
    except (RulesError, OSError, ValueError) as exc:
        print(f"borderfuse replay: {exc}", file=sys.stderr)
        return 2
    out = open(args.out, "w", encoding="utf-8")
    dlq = open(args.dlq, "w", encoding="utf-8") if args.dlq else None
    tracks = open(args.tracks, "w", encoding="utf-8") if args.tracks else None
    started = time.perf_counter()
    n = 0
    last_progress = started

    def emit(result):
        for inc in result.incidents:
            out.write(json.dumps(inc.to_json_dict(), separators=(",", ":")) + "\n")
        if dlq is not None:
            for record, error in result.dead_letters:
                doc = json.loads(format_record(record))
                doc.update(error_type=error.kind, error_message=error.reason, dlq_topic=dead_letter_topic(record.topic))
                dlq.write(json.dumps(doc, separators=(",", ":")) + "\n")
        if tracks is not None:
            for rep in pipeline.take_track_reports():
                tracks.write(json.dumps(rep.to_json_dict(), separators=(",", ":")) + "\n")

    tape = None
    try:
        if args.cache:
            from borderfuse.whatif.cache import CacheKey, decoded_batches
            from borderfuse.whatif.tape_store import open_tape
            key = CacheKey.of(args.capture, args.settings, CHUNK)
            log = (lambda m: print(m, file=sys.stderr, flush=True))
            if not args.no_tape:
                tape = open_tape(pipeline, key.directory(), record=not args.as_live, log=log)
            batches = decoded_batches(args.capture, pipeline, args.settings, chunk=CHUNK, key=key)
        else:
            batches = map(pipeline.decode, _chunks(read_capture(args.capture)))
        for batch in batches:
            emit(pipeline.process_decoded(batch))
            n += batch.records
            now = time.perf_counter()
            if not args.quiet and now - last_progress >= 5.0:
                last_progress = now
                print(f"replay: {n} records, {n / (now - started):.0f} records/s, "
                      f"{pipeline.active_tracks} tracks", file=sys.stderr)
        if not args.as_live:
            emit(pipeline.flush())
        if tape is not None:
            tape.finish(flushed=not args.as_live)
    except (CaptureFormatError, FileNotFoundError, TapeError) as exc:
        print(f"borderfuse replay: {exc}", file=sys.stderr)
        return 2
    finally:
        out.close()
        if dlq is not None:
            dlq.close()
        if tracks is not None:
            tracks.close()
    elapsed = time.perf_counter() - started
    _summary(pipeline, n, elapsed)
    return 0


def _chunks(records):
    chunk = []
    for record in records:
        chunk.append(record)
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _summary(pipeline, n: int, elapsed: float) -> None:
    s = pipeline.stats
    e = pipeline.engine.stats
    p = print
    p(f"records: {n} ({', '.join(f'{t}={c}' for t, c in sorted(s.records.items()))})", file=sys.stderr)
    p(f"dead letters: {sum(s.dead_letters.values())}"
      + "".join(f"\n  {t} {r}: {c}" for (t, r), c in sorted(s.dead_letters.items())), file=sys.stderr)
    p(f"duplicates: {sum(s.duplicates.values())}", file=sys.stderr)
    p(f"late: {sum(s.late.values())} {dict(sorted(s.late.items()))}", file=sys.stderr)
    p(f"tracks: started {pipeline.engine.tracker.started} confirmed {pipeline.engine.tracker.confirmed_total} "
      f"merged {e['tracks_merged']}", file=sys.stderr)
    p(f"incidents: {sum(s.incidents.values())} (+{s.incident_updates} updates)"
      + "".join(f"\n  {t} {sec}: {c}" for (t, sec), c in sorted(s.incidents.items())), file=sys.stderr)
    held = {k: v for k, v in sorted(e.items()) if k.startswith(("crossing_", "loitering_", "hotlist_"))}
    if held:
        p(f"not raised: {held}", file=sys.stderr)
    p(f"time: {elapsed:.1f} s, {n / elapsed if elapsed else 0:.0f} records/s", file=sys.stderr)
