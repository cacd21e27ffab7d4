"""Decode + projection throughput per feed, one core: batched projection vs per-point.

        .venv/bin/python benchmarks/bench_decode.py [CAPTURE] [--records N]

Takes up to N records per topic from the capture (default: the sample scenario; without it,
synthetic records from tests/sensor_records.py), decodes them with `RecordDecoder.decode_batch` in
batches of 2000 (one pyproj/geodesic call per geometry kind and batch) and with
`RecordDecoder.decode` one record at a time (one projection call per point), and prints
records/s for both and their ratio. Not a test: figures depend on the machine.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core

import argparse
import collections
import itertools
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # the synthetic record builders are test helpers

from borderfuse.geo.geography import Geography  # noqa: E402
from borderfuse.sensors.base import DecodeError  # noqa: E402
from borderfuse.sensors.decode import RecordDecoder  # noqa: E402
from sensor_records import GEO_DIR, SCHEMAS_DIR, valid_records  # noqa: E402

SAMPLE = REPO.parent / "shared" / "scenarios" / "sample" / "capture.jsonl.gz"
BATCH = 2000


def load_records(capture: Path | None, per_topic: int, topics) -> dict[str, list]:
    by_topic = collections.defaultdict(list)
    if capture is not None and capture.exists():
        from borderfuse.capture.files import CaptureReader
        for record in CaptureReader(capture):
            if record.topic in topics and len(by_topic[record.topic]) < per_topic:
                by_topic[record.topic].append(record)
    for record in valid_records().values():  # feeds the capture lacks: repeat the synthetic record
        if len(by_topic[record.topic]) < 50:
            by_topic[record.topic] = list(itertools.islice(itertools.cycle([record]), per_topic))
    return by_topic


def time_batched(decoder: RecordDecoder, records: list) -> float:
    started = time.perf_counter()
    for i in range(0, len(records), BATCH):
        decoder.decode_batch(records[i:i + BATCH])
    return time.perf_counter() - started


def time_per_point(decoder: RecordDecoder, records: list) -> float:
    started = time.perf_counter()
    for record in records:
        try:
            decoder.decode(record)
        except DecodeError:
            pass
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("capture", nargs="?", type=Path, default=SAMPLE)
    parser.add_argument("--records", type=int, default=10_000, help="records per topic (default 10000)")
    args = parser.parse_args()
    decoder = RecordDecoder(Geography.load(GEO_DIR), SCHEMAS_DIR)
    by_topic = load_records(args.capture, args.records, set(decoder.topics))
    print(f"{'feed':<24}{'records':>9}{'batched rec/s':>16}{'per-point rec/s':>18}{'ratio':>8}")
    totals = [0, 0.0, 0.0]
    for topic in sorted(by_topic):
        records = by_topic[topic]
        time_batched(decoder, records[:200])  # warm caches
        batched = min(time_batched(decoder, records) for _ in range(3))
        per_point = min(time_per_point(decoder, records) for _ in range(3))
        totals[0] += len(records)
        totals[1] += batched
        totals[2] += per_point
        print(f"{topic:<24}{len(records):>9}{len(records) / batched:>16,.0f}{len(records) / per_point:>18,.0f}"
              f"{per_point / batched:>8.2f}")
    n, batched, per_point = totals
    print(f"{'all feeds':<24}{n:>9}{n / batched:>16,.0f}{n / per_point:>18,.0f}{per_point / batched:>8.2f}")


if __name__ == "__main__":
    main()
