"""What the decoded-observation cache saves: a replay decoding the capture (cold, writing the cache) against
one reading the cache (warm), and `borderfuse diff` of two rule sets with a warm cache (not a test).

    python benchmarks/bench_whatif.py [--capture FILE] [--jobs 2]

Prints wall and CPU seconds and records/s of each, the warm/cold ratio, and the machine's load average
(other work on the cores shows in the wall times; CPU seconds are the steadier figure).
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

SAMPLE = Path(__file__).resolve().parent.parent.parent / "shared" / "scenarios" / "sample" / "capture.jsonl.gz"
CHUNK = 2000


def _cpu() -> float:
    self_, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return self_.ru_utime + self_.ru_stime + children.ru_utime + children.ru_stime


def _replay(capture: Path, settings, cache_dir: Path) -> tuple[float, float, int]:
    wall, cpu = time.perf_counter(), _cpu()
    pipeline = Pipeline.from_settings(settings)
    n = 0
    for batch in decoded_batches(capture, pipeline, settings, chunk=CHUNK, cache_dir=cache_dir, log=lambda m: None):
        pipeline.process_decoded(batch)
        n += batch.records
    pipeline.flush()
    return time.perf_counter() - wall, _cpu() - cpu, n


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
        cold = _replay(a.capture, settings, cache_dir)
        warm = _replay(a.capture, settings, cache_dir)
        b_rules = cache_dir / "b.toml"
        b_rules.write_text(DEFAULT_RULES_FILE.read_text().replace("[loitering]\nenabled = true",
                                                                   "[loitering]\nenabled = false"))
        wall, cpu = time.perf_counter(), _cpu()
        run_both(CacheKey.of(a.capture, settings, CHUNK).directory(cache_dir), {"a": DEFAULT_RULES_FILE, "b": b_rules},
                 settings, jobs=a.jobs, total_records=cold[2], quiet=True)
        diff = (time.perf_counter() - wall, _cpu() - cpu, 2 * cold[2])
        shutil.rmtree(cache_dir, ignore_errors=True)
    for name, (w, c, n) in (("replay cold (decode + write cache)", cold), ("replay warm (cache)", warm),
                            (f"diff warm, 2 sides, {a.jobs} jobs", diff)):
        print(f"{name:>36}: wall {w:7.1f} s  cpu {c:7.1f} s  {n / w:9,.0f} records/s")
    print(f"warm vs cold: {cold[0] / warm[0]:.2f}x faster (wall), {cold[1] / warm[1]:.2f}x (cpu)")
    print(f"diff vs one warm replay: {diff[0] / warm[0]:.2f}x the wall time for twice the work")
    print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
