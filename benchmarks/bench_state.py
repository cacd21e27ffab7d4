"""The fusion-state snapshot, old (pickle) vs new (msgpack, explicit fields): size, encode and decode time.

    python benchmarks/bench_state.py [--capture FILE] [--repeat 5] [--points 0.5,1.0]

The state is the pipeline's after the whole capture (the sample night by default), without the
end-of-input flush (the live service never takes it): what the service writes to `borderfuse.state`;
and at the other --points (shares of the capture), e.g. the middle of the night, when more is held.
Old = what the previous version did (pickle of the state, then zlib level 1 around it in the service
snapshot); the pickle is only *written and read back here*, from this process's own bytes, to measure it.
New = `Pipeline.snapshot()` inside `encode_snapshot`, and `decode_snapshot` + `Pipeline.restore`.
Prints the best of --repeat runs of each, and new/old ratios.
"""
from __future__ import annotations

import argparse
import pickle
import sys
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from borderfuse.capture.files import read_capture  # noqa: E402
from borderfuse.ingest.pipeline import Pipeline  # noqa: E402
from borderfuse.ingest.settings import Settings  # noqa: E402
from borderfuse.ingest.state_store import ServiceSnapshot, decode_snapshot, encode_snapshot  # noqa: E402

SAMPLE = REPO.parent / "shared" / "scenarios" / "sample" / "capture.jsonl.gz"
CHUNK = 2000


def old_encode(pipeline: Pipeline) -> bytes:
    """The previous Pipeline.snapshot() + encode_snapshot: pickle (geography detached), zlib level 1."""
    engine = pipeline.engine
    detectors = (engine.crossings, engine.loitering)
    for d in detectors:
        d.geography = None
    try:
        engine_state = {k: v for k, v in vars(engine).items() if k not in ("geography", "rules")}
        state = (2, pipeline.duplicates, pipeline.reorder, pipeline.stats, engine_state, pipeline._next_slice_us,
                 pipeline._settling, pipeline._newest_arrival_ms)
        return zlib.compress(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL), 1)
    finally:
        for d in detectors:
            d.geography = pipeline.geography


def old_decode(data: bytes) -> None:
    pickle.loads(zlib.decompress(data))   # our own bytes from old_encode above, never read from a topic


def new_encode(pipeline: Pipeline) -> bytes:
    return encode_snapshot(ServiceSnapshot(offsets={("pl.radar.plots", 0): 1}, pipeline_state=pipeline.snapshot()))


def new_decode(data: bytes) -> None:
    Pipeline.from_settings(Settings(), collect_tracks=True).restore(decode_snapshot(data).pipeline_state)


def best(fn, arg, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        out = fn(arg)
        times.append(time.perf_counter() - started)
    return min(times), out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capture", type=Path, default=SAMPLE)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--points", default="0.5,1.0", help="shares of the capture at which to measure")
    args = parser.parse_args()
    if not args.capture.is_file():
        print(f"bench_state: capture {args.capture} not found", file=sys.stderr)
        return 2
    records = list(read_capture(args.capture))
    pipeline, done = Pipeline.from_settings(Settings(), collect_tracks=True), 0
    for point in sorted(float(p) for p in args.points.split(",")):
        upto = int(len(records) * point)
        for i in range(done, upto, CHUNK):
            pipeline.process_batch(records[i:min(i + CHUNK, upto)])
            pipeline.take_track_reports()   # the service takes them every batch
        done = upto
        measure(pipeline, f"{upto} of {len(records)} records of {args.capture.name}", args.repeat)
    return 0


def measure(pipeline: Pipeline, where: str, repeat: int) -> None:
    engine = pipeline.engine
    print(f"state after {where}: {len(engine.tracker)} tracks, "
          f"{len(pipeline.reorder)} items in the reorder buffer, {len(pipeline.duplicates)} duplicate fingerprints, "
          f"{len(engine.hotlist.entries)} hotlist entries")
    # A fresh pipeline's restore (geography, rules) is in the new decode time; time it alone as well.
    t_build, _ = best(lambda _: Pipeline.from_settings(Settings(), collect_tracks=True), None, repeat)
    t_old_enc, old = best(old_encode, pipeline, repeat)
    t_old_dec, _ = best(old_decode, old, repeat)
    t_new_enc, new = best(new_encode, pipeline, repeat)
    t_new_dec, _ = best(new_decode, new, repeat)
    t_new_dec_state = t_new_dec - t_build
    print(f"{'':>14s} {'bytes':>11s} {'encode ms':>10s} {'decode ms':>10s}")
    print(f"{'old (pickle)':>14s} {len(old):>11d} {t_old_enc * 1e3:>10.1f} {t_old_dec * 1e3:>10.1f}")
    print(f"{'new (msgpack)':>14s} {len(new):>11d} {t_new_enc * 1e3:>10.1f} {t_new_dec_state * 1e3:>10.1f}"
          f"   (+{t_build * 1e3:.0f} ms to build the fresh pipeline it restores into)")
    print(f"{'new / old':>14s} {len(new) / len(old):>11.2f} {t_new_enc / t_old_enc:>10.2f} "
          f"{t_new_dec_state / t_old_dec:>10.2f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
