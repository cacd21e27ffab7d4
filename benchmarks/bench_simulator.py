"""Simulator speed: a crowded 300-target, 10-minute capture (target: well under a minute).

    /work/venv/bin/python benchmarks/bench_simulator.py [--targets 300] [--minutes 10]

Prints records/s and simulated seconds per wall second, and the ratio to a baseline measured in
the same run: the default 25-target scenario over the same minutes (so the ratio shows how the
cost scales with the number of targets).
"""
import argparse
import tempfile
from pathlib import Path

from borderfuse.simulator import ScenarioConfig, write_capture


def run(targets: int, minutes: float, out: Path):
    s = write_capture(out / f"bench{targets}.jsonl.gz", ScenarioConfig(seed=3, targets=targets, minutes=minutes),
                      out / f"truth{targets}.json")
    print(f"{targets:4d} targets, {minutes:g} min: {s.records} records in {s.seconds:.1f} s = "
          f"{s.records_per_s:,.0f} records/s, {s.simulated_s / s.seconds:.0f}x real time, "
          f"{len(s.truth['incidents'])} truth incidents")
    return s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--targets", type=int, default=300)
    ap.add_argument("--minutes", type=float, default=10.0)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = run(25, a.minutes, Path(tmp))
        big = run(a.targets, a.minutes, Path(tmp))
    print(f"ratio: {big.records / base.records:.1f}x the records in {big.seconds / base.seconds:.1f}x the time; "
          f"records/s {big.records_per_s / base.records_per_s:.2f}x the baseline's; "
          f"{big.seconds:.1f} s vs the 60 s budget")


if __name__ == "__main__":
    main()
