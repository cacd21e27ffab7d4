"""What the what-if caches save, measured in one run (not a test):
- replay cold: decoding the capture, tracking, writing the decoded cache and the tracker tape;
- replay warm, decoded cache only (the tracker runs again) and warm with the tracker tape;
- `borderfuse diff` of two rule sets (B: loitering off) with a warm cache, without and with the tape.

    python benchmarks/bench_whatif.py [--capture FILE] [--jobs 2]

Prints wall and CPU seconds and records/s of each, the warm/cold ratios, whether every warm run gave the cold
run's incident lines, and the machine's load average (other work on the cores shows in the wall times; CPU
seconds are the steadier figure).
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from borderfuse.fusion.rules import DEFAULT_RULES_FILE
from borderfuse.ingest.pipeline import Pipeline
from borderfuse.ingest.settings import load_settings
from borderfuse.whatif.cache import CacheKey, decoded_batches
from borderfuse.whatif.runner import run_both
from borderfuse.whatif.tape_store import TapeSession

SAMPLE = Path(__file__).resolve().parent.parent.parent / "shared" / "scenarios" / "sample" / "capture.jsonl.gz"
CHUNK = 2000


def _cpu() -> float:
    self_, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return self_.ru_utime + self_.ru_stime + children.ru_utime + children.ru_stime


def _replay(capture: Path, settings, cache_dir: Path, tape: bool) -> tuple[float, float, int, list]:
    """(wall s, CPU s, records, incident lines) of a replay through the cache (and the tracker tape)."""
    wall, cpu = time.perf_counter(), _cpu()
    pipeline = Pipeline.from_settings(settings)
    key = CacheKey.of(capture, settings, CHUNK)
    session = TapeSession(pipeline, key.directory(cache_dir)) if tape else None
    n, lines = 0, []
    for batch in decoded_batches(capture, pipeline, settings, chunk=CHUNK, cache_dir=cache_dir, log=lambda m: None,
                                 key=key):
        lines += [inc.to_json_dict() for inc in pipeline.process_decoded(batch).incidents]
        n += batch.records
    lines += [inc.to_json_dict() for inc in pipeline.flush().incidents]
    if session is not None:
        session.finish(flushed=True)
    return time.perf_counter() - wall, _cpu() - cpu, n, lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--capture", type=Path, default=SAMPLE, help="capture file (default: the sample night)")
    ap.add_argument("--jobs", type=int, default=2, help="processes for the diff's two sides (default 2)")
    a = ap.parse_args()
    if not a.capture.is_file():
        sys.exit(f"capture {a.capture} not found")
    settings = load_settings(None)
    with tempfile.TemporaryDirectory(prefix="borderfuse-bench-whatif-") as tmp:
        cache_dir = Path(tmp)
        print(f"load average before: {os.getloadavg()}")
        cold = _replay(a.capture, settings, cache_dir, tape=True)
        warm_cache = _replay(a.capture, settings, cache_dir, tape=False)
        warm_tape = _replay(a.capture, settings, cache_dir, tape=True)
        b_rules = cache_dir / "b.toml"
        b_rules.write_text(DEFAULT_RULES_FILE.read_text().replace("[loitering]\nenabled = true",
                                                                   "[loitering]\nenabled = false"))
        diffs = {}
        for tape in (False, True):
            wall, cpu = time.perf_counter(), _cpu()
            sides = run_both(CacheKey.of(a.capture, settings, CHUNK).directory(cache_dir),
                             {"a": DEFAULT_RULES_FILE, "b": b_rules}, settings, jobs=a.jobs, total_records=cold[2],
                             quiet=True, tape=tape)
            diffs[tape] = (time.perf_counter() - wall, _cpu() - cpu, 2 * cold[2], sides["a"].incident_lines)
        shutil.rmtree(cache_dir, ignore_errors=True)
    rows = (("replay cold (decode, track, write caches)", cold), ("replay warm, decoded cache only", warm_cache),
            ("replay warm, decoded cache + tape", warm_tape),
            (f"diff warm, cache only, {a.jobs} jobs", diffs[False]),
            (f"diff warm, cache + tape, {a.jobs} jobs", diffs[True]))
    for name, (w, c, n, _) in rows:
        print(f"{name:>42}: wall {w:7.1f} s  cpu {c:7.1f} s  {n / w:9,.0f} records/s")
    same = all(r[3] == cold[3] for _, r in rows)
    print(f"incident lines of every warm run == the cold run's: {'yes' if same else 'NO'}")
    for name, run in (("decoded cache only", warm_cache), ("decoded cache + tape", warm_tape)):
        print(f"replay warm ({name}) vs cold: {cold[0] / run[0]:.2f}x faster (wall), {cold[1] / run[1]:.2f}x (cpu)")
    print(f"diff with the tape vs without: {diffs[False][0] / diffs[True][0]:.2f}x faster (wall), "
          f"{diffs[False][1] / diffs[True][1]:.2f}x (cpu)")
    print(f"load average after: {os.getloadavg()}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
