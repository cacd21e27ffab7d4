"""The console under load: ~300 live tracks at 1 Hz in headless Chromium.

    python benchmarks/bench_console.py [--minutes 10] [--targets 300] [--capture FILE] [--window-s 60]

A crowded night (the simulator with --targets, written to a temporary capture unless --capture names
one) is replayed by `borderfuse console --capture ... --speed 1` (the service's pipeline in-process,
no broker), so confirmed tracks reach the page at 1 update/s each through the real push stream (after
a login through the real page: the stream is filtered per user's sectors, here a supervisor's four).
The page records, per push event, the time from the server writing it to the next painted frame
after the page applied it (push -> drawn). Printed per window: tracks drawn, track updates/s,
lag p50/p95/max of track events, the JS heap and the renderer processes' RSS; at the end the p95
of the first and last windows (growth), memory at start and end, and the baseline: the same lag for
the one-line clock events of the same page in the same run (push + paint cost without track work).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=10.0, help="measured minutes (default 10)")
    p.add_argument("--warmup-s", type=float, default=150.0, help="unmeasured start: tracks confirm (default 150)")
    p.add_argument("--targets", type=int, default=300, help="simulated targets at once (default 300)")
    p.add_argument("--capture", metavar="FILE", help="use this capture instead of simulating one")
    p.add_argument("--window-s", type=float, default=60.0, help="report every this many seconds (default 60)")
    p.add_argument("--port", type=int, default=0, help="console port (default: a free one)")
    return p.parse_args()


def renderer_rss_mb(profile_dir: str) -> float:
    """Resident memory of every Chromium process of this profile (browser, renderers, GPU, utility)."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"chromium" not in cmdline or (profile_dir.encode() not in cmdline and b"--type=" not in cmdline):
                continue
            if b"--type=" in cmdline and not _child_of_profile(int(pid), profile_dir):
                continue
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (OSError, ValueError):
            continue
    return total / 1024


def _child_of_profile(pid: int, profile_dir: str) -> bool:
    for _ in range(5):
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            if profile_dir.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                return True
        except (OSError, ValueError, IndexError):
            return False
    return False


def percentiles(values) -> tuple[float, float, float]:
    if not len(values):
        return float("nan"), float("nan"), float("nan")
    arr = np.asarray(values, float)
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 95)), float(arr.max())


def main() -> int:
    args = parse_args()
    from borderfuse.devbroker.processes import free_port
    from test_console_browser import log_in, new_browser, users_env, wait_for

    work = Path(tempfile.mkdtemp(prefix="bench-console-"))
    capture = Path(args.capture) if args.capture else work / "crowded.jsonl.gz"
    # a users file of its own (a supervisor: every sector), logged in through the real page below
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("BORDERFUSE_")}, **users_env(work)}
    cli = [sys.executable, "-m", "borderfuse.ingest.cli"]
    if not args.capture:
        minutes = (args.warmup_s / 60) + args.minutes + 1
        print(f"simulating {args.targets} targets for {minutes:.1f} min -> {capture} ...", file=sys.stderr)
        subprocess.run([*cli, "simulate", "--out", str(capture), "--targets", str(args.targets),
                        "--minutes", f"{minutes:.2f}"], check=True, env=env, cwd=REPO, stdout=subprocess.DEVNULL)
    port = args.port or free_port()
    log = open(work / "console.log", "wb")
    console = subprocess.Popen([*cli, "console", "--capture", str(capture), "--speed", "1", "--port", str(port)],
                               env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=log)
    profile = str(work / "chromium")
    driver = None
    try:
        wait_for(lambda: b"console: http" in (work / "console.log").read_bytes(), 60, "the console")
        driver = new_browser(Path(profile))
        log_in(driver, f"http://127.0.0.1:{port}/")
        wait_for(lambda: driver.execute_script("return window.__console.ready"), 30, "the page")
        print(f"warm-up {args.warmup_s:.0f} s ...", file=sys.stderr)
        time.sleep(args.warmup_s)
        take = """const c = window.__console; const out = {lags: c.lags.splice(0), clock: c.clockLags.splice(0),
                   tracks: c.drawnTracks, updates: c.trackUpdates, errors: c.errors.length,
                   heap: performance.memory ? performance.memory.usedJSHeapSize : null}; return out;"""
        first = driver.execute_script(take)
        rows, all_lags, all_clock = [], [], []
        start_rss, start_heap = renderer_rss_mb(profile), first["heap"] / 2**20
        print(f"{'t (s)':>6} {'tracks':>6} {'upd/s':>6} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7} {'heap MB':>8} "
              f"{'RSS MB':>7}")
        print(f"{0:>6} {first['tracks']:>6} {'':>6} {'':>7} {'':>7} {'':>7} {start_heap:>8.1f} {start_rss:>7.0f}")
        started, last_updates = time.monotonic(), first["updates"]
        while time.monotonic() - started < args.minutes * 60:
            time.sleep(args.window_s)
            if console.poll() is not None:
                raise SystemExit(f"the console exited: {(work / 'console.log').read_text()[-2000:]}")
            got = driver.execute_script(take)
            p50, p95, worst = percentiles(got["lags"])
            rss, heap = renderer_rss_mb(profile), (got["heap"] or 0) / 2**20
            rate = (got["updates"] - last_updates) / args.window_s
            last_updates = got["updates"]
            rows.append((p95, heap, rss))
            all_lags += got["lags"]
            all_clock += got["clock"]
            print(f"{time.monotonic() - started:>6.0f} {got['tracks']:>6} {rate:>6.0f} {p50:>7.0f} {p95:>7.0f} "
                  f"{worst:>7.0f} {heap:>8.1f} {rss:>7.0f}", flush=True)
        p50, p95, worst = percentiles(all_lags)
        b50, b95, bworst = percentiles(all_clock)
        print(f"\ntrack events push->drawn over {args.minutes:g} min: p50 {p50:.0f} ms, p95 {p95:.0f} ms, "
              f"max {worst:.0f} ms ({len(all_lags)} events)")
        print(f"baseline (clock events, same page and run): p50 {b50:.0f} ms, p95 {b95:.0f} ms, max {bworst:.0f} ms "
              f"-> track p95 / baseline p95 = {p95 / b95 if b95 else float('nan'):.2f}")
        print(f"p95 first window {rows[0][0]:.0f} ms, last window {rows[-1][0]:.0f} ms "
              f"(ratio {rows[-1][0] / rows[0][0] if rows[0][0] else float('nan'):.2f})")
        print(f"memory: JS heap {start_heap:.1f} -> {rows[-1][1]:.1f} MB, Chromium RSS {start_rss:.0f} -> "
              f"{rows[-1][2]:.0f} MB")
    finally:
        if driver is not None:
            driver.quit()
        console.terminate()
        console.wait(30)
        log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
