"""`borderfuse diff CAPTURE A.toml B.toml`: what rule set B changes against A on recorded traffic."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

CHUNK = 2000


def register(sub):
    p = sub.add_parser(
        "diff", help="what a rule change does on recorded traffic: incidents gained, lost and changed",
        description="Run two rule sets over one capture and show what B changes against A: the incidents "
        "gained, lost and changed (time moved, place moved, sector, class, severity, sources) per type and "
        "sector, each with id, time, place and track; with --truth, each side's score and whether each "
        "difference is a hit, a duplicate or a false alarm. Both rules files are validated before any work. "
        "The capture is decoded once into a cache beside it (or under --cache-dir, or "
        "~/.cache/borderfuse/decoded when its folder is read-only), keyed by its content hash and the "
        "decoder's version; later what-ifs and `replay --cache` of it skip decoding. The tracker's work is "
        "cached too: the first run records a tracker tape in the cache (keyed by the rules' [tracker] section, "
        "the pipeline settings and the fusion code), and later runs of any decision rules with that [tracker] "
        "section replay it instead of tracking again (same output, a fraction of the time); a side whose "
        "[tracker] differs runs the tracker (and records its own tape). The two sides run in "
        "parallel processes. Progress (%, records/s, time left) on stderr; the table on stdout.")
    p.add_argument("capture", metavar="CAPTURE", help="capture file (.jsonl or .jsonl.gz)")
    p.add_argument("rules_a", metavar="A.toml", help="the rules in force (e.g. fusion/rules.toml)")
    p.add_argument("rules_b", metavar="B.toml", help="the candidate rules")
    p.add_argument("--truth", metavar="FILE", help="ground truth JSON (as score_incidents.py takes): score "
                   "both sides and mark each difference hit / duplicate / false alarm")
    p.add_argument("--json", metavar="FILE", help='write {"gained", "lost", "changed", "unchanged", "a", "b", '
                   '"rule_changes", "capture"} as JSON')
    p.add_argument("--html", metavar="FILE", help="write a self-contained HTML report with a map of the "
                   "differences over the sectors, border and crossing points")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="processes for the two sides (default: the machine's cores, at most 2; 1 = one after "
                   "the other in this process)")
    p.add_argument("--cache-dir", metavar="DIR", help="where the decoded cache goes (default: beside the capture)")
    p.add_argument("--no-tape", action="store_true", help="run the tracker on both sides even when a tracker "
                   "tape exists, and record none")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=_run)


def _fail(message: str) -> int:
    print(f"borderfuse diff: {message}", file=sys.stderr)
    return 2


def _run(args) -> int:
    from borderfuse.capture.files import CaptureFormatError
    from borderfuse.fusion.rules import RulesError, load_rules
    from borderfuse.whatif import compare, report
    from borderfuse.whatif.cache import CacheError, ensure_cache
    from borderfuse.whatif.runner import Progress, WhatIfError, run_both

    try:   # refused before any work: a bad file names file, section and key
        rules_a, rules_b = load_rules(args.rules_a), load_rules(args.rules_b)
    except RulesError as exc:
        return _fail(str(exc))
    truth = None
    if args.truth:
        try:
            truth = json.loads(Path(args.truth).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            return _fail(f"truth file {args.truth}: {exc}")
    if args.jobs is not None and args.jobs < 1:
        return _fail("--jobs must be >= 1")
    if not Path(args.capture).is_file():
        return _fail(f"capture file {args.capture} does not exist")
    log = (lambda m: None) if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    started = time.perf_counter()
    decode_progress = Progress(1, label="decode", enabled=not args.quiet)

    def on_decode(records: int, share: float) -> None:
        decode_progress.total = max(int(records / share), records, 1) if share > 0 else 1
        decode_progress.update(records, force=share >= 1.0)

    try:
        cache = ensure_cache(args.capture, args.settings, chunk=CHUNK, cache_dir=args.cache_dir, log=log,
                             progress=on_decode)
        decoded_s = time.perf_counter() - started
        results = run_both(cache.directory, {"a": args.rules_a, "b": args.rules_b}, args.settings,
                           jobs=args.jobs or min(2, _cores()), total_records=cache.records, quiet=args.quiet,
                           tape=not args.no_tape)
    except (CaptureFormatError, CacheError, WhatIfError, OSError) as exc:
        return _fail(str(exc))
    what = {"read": "replayed the tracker tape", "record": "ran the tracker and recorded its tape",
            "off": "ran the tracker"}
    log("tracker: " + "; ".join(f"side {k} {what[r.tape]}" for k, r in sorted(results.items())))
    views = {k: compare.incidents_from_lines(r.incident_lines) for k, r in results.items()}
    diff = compare.compare(views["a"], views["b"])
    sides = {k: report.Side(r.rules_file, views[k], r.stats, r.elapsed_s,
                            compare.score(truth, views[k]) if truth is not None else None)
             for k, r in results.items()}
    changes = report.rule_changes(rules_a, rules_b)
    print(report.terminal(diff, sides["a"], sides["b"], changes))
    try:
        if args.json:
            doc = report.to_json(diff, sides["a"], sides["b"], changes, str(args.capture))
            Path(args.json).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        if args.html:
            Path(args.html).write_text(report.to_html(diff, sides["a"], sides["b"], changes, str(args.capture),
                                                      args.settings.icd.geo_dir), encoding="utf-8")
    except OSError as exc:
        return _fail(f"cannot write the report: {exc}")
    total = time.perf_counter() - started
    log(f"time: {total:.1f} s ({decoded_s:.1f} s decoding or opening the cache, {cache.records} records, "
        f"{2 * cache.records / max(total - decoded_s, 1e-9):,.0f} records/s over both sides)")
    return 0


def _cores() -> int:
    import os
    return os.cpu_count() or 1
