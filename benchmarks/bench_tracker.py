"""Tracker time per scan vs number of live tracks.

    python benchmarks/bench_tracker.py [--sizes 10,30,100,300,1000]

For each size N: N targets spread over the area, established as confirmed tracks, then timed:
a full scan (one sensor reporting all N targets: N detections against N tracks, gating + GNN +
update), the track maintenance after it (merge + prune, once a second in the engine) and a
single-detection scan (one plot against N tracks, the PL radar case). The baseline is N=10 in the
same run. Gating and merging go through KD-trees, so the cost per track should stay about flat as
N grows (it grows with the tracks and detections near each other, not with N^2).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from borderfuse.fusion.tracker import Tracker  # noqa: E402
from borderfuse.sensors.base import Observation  # noqa: E402

T0 = 1_795_298_400_000_000


def scan(t_s: float, xy: np.ndarray, sensor="DE-R1") -> list[Observation]:
    cov = np.eye(2) * 225.0
    return [Observation(time_us=T0 + int(t_s * 1e6), side="DE", sensor_id=sensor, sensor_kind="radar", xy=p, cov=cov,
                        local_id=f"T{i}", status="confirmed") for i, p in enumerate(xy)]


def bench(n: int, rng: np.random.Generator, repeats: int) -> tuple[float, float, float]:
    start = rng.uniform(0, 20000, (n, 2))
    vel = rng.normal(0, 1.5, (n, 2))
    tracker = Tracker()
    for k in range(6):
        tracker.process_scan(scan(k, start + vel * k + rng.normal(0, 10, (n, 2))))
    assert tracker.confirmed_count() == n, (tracker.confirmed_count(), n)
    scans = [scan(6 + k, start + vel * (6 + k) + rng.normal(0, 10, (n, 2))) for k in range(repeats)]
    full = maintain = 0.0
    for s in scans:
        t = time.perf_counter()
        tracker.process_scan(s)
        t1 = time.perf_counter()
        tracker.merge(s[0].time_us)
        tracker.prune(s[0].time_us)
        full, maintain = full + (t1 - t) / repeats, maintain + (time.perf_counter() - t1) / repeats
    singles = [scan(6 + repeats + 0.01 * k, (start[k % n] + vel[k % n] * (6 + repeats))[None]) for k in range(200)]
    t = time.perf_counter()
    for s in singles:
        tracker.process_scan(s)
    single = (time.perf_counter() - t) / len(singles)
    return full, maintain, single


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10,30,100,300,1000,2000",
                    help="numbers of tracks (default 10,30,100,300,1000,2000)")
    a = ap.parse_args()
    rng = np.random.default_rng(1)
    base = None
    print(f"{'tracks':>7s} {'full scan ms':>13s} {'us/track':>9s} {'merge+prune ms':>15s} {'1-det scan ms':>14s} "
          f"{'x baseline':>11s} {'us/track x baseline':>20s}")
    for n in (int(s) for s in a.sizes.split(",")):
        full, maintain, single = bench(n, rng, repeats=max(3, 3000 // n))
        base = base or (full, n)
        print(f"{n:7d} {full * 1e3:13.3f} {full / n * 1e6:9.1f} {maintain * 1e3:15.3f} {single * 1e3:14.3f} "
              f"{full / base[0]:11.1f} {(full / n) / (base[0] / base[1]):20.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
