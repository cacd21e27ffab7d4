"""One rule set over a decoded capture, and both rule sets of a what-if at once on the machine's cores.

Each side runs the live service's pipeline (`Pipeline.process_decoded`) over the cached batches in a
process of its own (spawned: nothing of the parent's state is shared), reporting how many records it
has done; the parent prints %, records/s and time left on stderr and collects each side's incident
lines and counters. With `tape`, a side replays the tracker tape of its `[tracker]` section when the cache
holds one (`borderfuse.whatif.tape_store`), else runs the tracker; the first side of each `[tracker]`
section records the tape for the next run.
"""
from __future__ import annotations

import multiprocessing
import os
import queue
import sys
import time
from pathlib import Path
from typing import Callable

import attrs

PROGRESS_EVERY_S = 0.5


class WhatIfError(Exception):
    """A side of the what-if failed; the message names the side and what went wrong."""


@attrs.frozen(slots=True)
class SideResult:
    name: str                      # "a" or "b"
    rules_file: str
    incident_lines: list           # every incident line (JSON dicts), updates included, in output order
    stats: dict                    # PipelineStats.as_dict()
    records: int
    elapsed_s: float
    tape: str = "off"              # the tracker tape: "read" (replayed), "record" (recorded), "off" (tracker ran)


def run_side(name: str, cache_dir: str, rules_file: str, settings, report: Callable[[str, int], None] | None = None,
             tape: str = "off") -> SideResult:
    """The pipeline with `rules_file` over the decoded cache at `cache_dir`; `tape`: "off" (run the tracker),
    "read" (replay the cache's tracker tape if there is one, else run the tracker), "record" (replay it if
    there is one, else run the tracker and record it)."""
    from borderfuse.whatif.tape_store import TapeSession
    from borderfuse.geo.geography import Geography
    from borderfuse.fusion.rules import load_rules
    from borderfuse.ingest.pipeline import Pipeline
    from borderfuse.whatif.cache import DecodedCache

    started = time.perf_counter()
    from borderfuse.ingest.plate_key import plate_pseudonymiser

    plates = plate_pseudonymiser(settings)
    cache = DecodedCache(cache_dir, plates)
    pipeline = Pipeline(Geography.load(settings.icd.geo_dir), load_rules(rules_file), settings.icd.schemas_dir,
                        plates=plates, allowed_lateness_s=settings.fusion.allowed_lateness_s,
                        duplicate_window_s=settings.fusion.duplicate_window_s)
    session = TapeSession(pipeline, cache_dir, record=tape == "record") if tape != "off" else None
    lines: list[dict] = []
    done = 0
    last = started
    for batch in cache.batches():
        result = pipeline.process_decoded(batch)
        lines += [inc.to_json_dict() for inc in result.incidents]
        done += batch.records
        now = time.perf_counter()
        if report is not None and now - last >= PROGRESS_EVERY_S:
            last = now
            report(name, done)
    lines += [inc.to_json_dict() for inc in pipeline.flush().incidents]
    if session is not None:
        session.finish(flushed=True)
    if report is not None:
        report(name, done)
    return SideResult(name, str(rules_file), lines, pipeline.stats.as_dict(), done, time.perf_counter() - started,
                      session.mode if session is not None else "off")


def _worker(name: str, cache_dir: str, rules_file: str, settings, out, tape: str = "off") -> None:
    try:
        result = run_side(name, cache_dir, rules_file, settings, lambda side, n: out.put(("progress", side, n)), tape)
        out.put(("done", name, result))
    except BaseException as exc:   # reported to the parent, which exits non-zero with it
        out.put(("error", name, f"{type(exc).__name__}: {exc}"))


class Progress:
    """`diff: 42% 61,000 records/s, 1m05s left` on stderr, at most every `every_s` seconds."""

    def __init__(self, total: int, label: str = "diff", every_s: float = 2.0, stream=None, enabled: bool = True):
        self.total = max(total, 1)
        self.label = label
        self.every_s = every_s
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.started = time.perf_counter()
        self._last = 0.0

    def line(self, done: int, now: float | None = None) -> str:
        now = time.perf_counter() if now is None else now
        elapsed = max(now - self.started, 1e-9)
        rate = done / elapsed
        left = (self.total - done) / rate if rate > 0 else float("inf")
        left_text = "?" if left == float("inf") else f"{int(left // 60)}m{int(left % 60):02d}s"
        return f"{self.label}: {100.0 * done / self.total:3.0f}% {rate:,.0f} records/s, {left_text} left"

    def update(self, done: int, force: bool = False) -> None:
        now = time.perf_counter()
        if self.enabled and (force or now - self._last >= self.every_s):
            self._last = now
            print(self.line(done, now), file=self.stream, flush=True)


def tape_modes(rules: dict[str, Path | str]) -> dict[str, str]:
    """Per side, how it uses the tracker tape: the first side of each `[tracker]` section may record it, the
    others with the same section only read it (one recording per tape; sides run at the same time)."""
    from borderfuse.fusion.rules import load_rules
    seen, modes = set(), {}
    for name, rules_file in rules.items():
        tracker = load_rules(rules_file).tracker
        modes[name] = "read" if tracker in seen else "record"
        seen.add(tracker)
    return modes


def run_both(cache_dir: Path | str, rules: dict[str, Path | str], settings, *, jobs: int | None = None,
             total_records: int, quiet: bool = False, tape: bool = True) -> dict[str, SideResult]:
    """Run every named rule set over the cache, `jobs` processes at once (default: the cores, at most one
    per side); progress counts the records of all sides together. `tape`: use and record tracker tapes
    (`tape_modes`); False runs the tracker on every side."""
    jobs = min(len(rules), jobs or os.cpu_count() or 1)
    modes = tape_modes(rules) if tape else {name: "off" for name in rules}
    progress = Progress(total_records * len(rules), enabled=not quiet)
    done: dict[str, int] = {name: 0 for name in rules}
    results: dict[str, SideResult] = {}
    if jobs <= 1:
        def report(side: str, n: int) -> None:
            done[side] = n
            progress.update(sum(done.values()))
        for name, rules_file in rules.items():
            results[name] = run_side(name, str(cache_dir), str(rules_file), settings, report, modes[name])
        return results
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(name, str(cache_dir), str(rules_file), settings, out, modes[name]),
                         name=f"borderfuse-diff-{name}", daemon=True) for name, rules_file in rules.items()]
    for p in procs:
        p.start()
    try:
        while len(results) < len(rules):
            try:
                kind, side, payload = out.get(timeout=1.0)
            except queue.Empty:
                dead = [p for p in procs if not p.is_alive() and p.exitcode not in (0, None)]
                if dead:
                    raise WhatIfError(f"side {dead[0].name[-1]} died (exit code {dead[0].exitcode})")
                continue
            if kind == "progress":
                done[side] = payload
                progress.update(sum(done.values()))
            elif kind == "done":
                results[side] = payload
                done[side] = payload.records
            else:
                raise WhatIfError(f"side {side} ({rules[side]}): {payload}")
    finally:
        for p in procs:
            if p.is_alive() and len(results) < len(rules):
                p.terminate()
            p.join(timeout=10)
    progress.update(sum(done.values()), force=True)
    return results
