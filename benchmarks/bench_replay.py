"""Replay throughput: the full pipeline vs decode only, on the same capture in the same run.

    python benchmarks/bench_replay.py [--crowded-targets 300] [--crowded-minutes 3] [--crowded FILE]

Captures: the recorded sample night, and a crowded night (>= 300 targets at once) written by the
simulator (`borderfuse simulate --out`) into a temporary directory unless --crowded names one.
Records are read into memory first, so both rates measure processing, not gzip and JSON lines.
Prints records/s of decode only (dedup + decode_batch) and of the whole pipeline, and their ratio.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from borderfuse.capture.files import read_capture  # noqa: E402
from borderfuse.ingest.pipeline import Pipeline  # noqa: E402
from borderfuse.ingest.settings import Settings  # noqa: E402
from borderfuse.sensors.dedup import DuplicateFilter  # noqa: E402

SAMPLE = REPO.parent / "shared" / "scenarios" / "sample" / "capture.jsonl.gz"
CHUNK = 2000


def decode_only(records, pipeline) -> float:
    dedup = DuplicateFilter(Settings().fusion.duplicate_window_s)
    started = time.perf_counter()
    for i in range(0, len(records), CHUNK):
        fresh = [r for r in records[i:i + CHUNK] if not dedup.is_duplicate(r) and r.topic != "shared.hotlist"]
        pipeline.decoder.decode_batch(fresh)
    return time.perf_counter() - started


def full(records) -> tuple[float, Pipeline]:
    pipeline = Pipeline.from_settings(Settings())
    started = time.perf_counter()
    for i in range(0, len(records), CHUNK):
        pipeline.process_batch(records[i:i + CHUNK])
    pipeline.flush()
    return time.perf_counter() - started, pipeline


def bench(name: str, path: Path) -> None:
    records = list(read_capture(path))
    t_full, pipeline = full(records)
    t_dec = decode_only(records, pipeline)
    n = len(records)
    tracker = pipeline.engine.tracker
    print(f"{name:>8s}: {n} records | decode only {n / t_dec:8.0f} rec/s ({t_dec:5.1f} s) | "
          f"replay {n / t_full:8.0f} rec/s ({t_full:5.1f} s) | replay/decode time {t_full / t_dec:4.2f}x | "
          f"tracks started {tracker.started} confirmed {tracker.confirmed_total} | "
          f"incidents {sum(pipeline.stats.incidents.values())}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--crowded", type=Path, help="an existing crowded capture (skip simulating one)")
    ap.add_argument("--crowded-targets", type=int, default=300)
    ap.add_argument("--crowded-minutes", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=21)
    a = ap.parse_args()
    if SAMPLE.exists():
        bench("sample", SAMPLE)
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
        crowded = a.crowded
        if crowded is None:
            crowded = Path(tmp) / "crowded.jsonl.gz"
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "borderfuse.ingest.cli", "simulate", "--out", str(crowded), "--seed",
                            str(a.seed), "--minutes", str(a.crowded_minutes), "--targets", str(a.crowded_targets)],
                           check=True, cwd=REPO)
            print(f"(simulated {a.crowded_targets} targets x {a.crowded_minutes} min in "
                  f"{time.perf_counter() - started:.0f} s)", flush=True)
        bench("crowded", crowded)
    return 0


if __name__ == "__main__":
    sys.exit(main())
