"""Alarm latency and F1 per incident type: today's decision rules beside the previous ones, same run.

    .venv/bin/python benchmarks/bench_latency.py [--nights 101,102,103] [--minutes 45] [--skip-shared]
        [--nights-dir DIR] [--variants now,previous] [--cache]

For the sample, the hard sample (../shared/scenarios) and a few of the project's own hard nights
(`borderfuse simulate --hard --seed N`), replays each capture twice and scores both with the ICD
scorer (../shared/tools/score_incidents.py): with the rules and settings in force now, and with the
decision rules of the main branch before issue 9 (a 12 s allowed lateness, a fixed 25 m side margin,
a 3–30 s hold for the class, no class follow-up; what is code stays on in both: the hotlist fast
path, the arrival-time watermark with its transport bound, the look-ahead on held observations, the
immediate decisions). Alarm latency is decided_at - true event time (median / p95 / max per
type). Not a test: the figures depend on the nights, not on the machine.

`--nights-dir DIR` adds nights already simulated (every subfolder of DIR holding a
capture.jsonl.gz and a truth.json, in name order; `--nights ''` then simulates none). `--cache` passes
replay's decoded-observation cache (the first run of a capture writes it, later ones skip decoding).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
SCORER = SHARED / "tools" / "score_incidents.py"
PREVIOUS_RULES = {  # the [crossing] values of main before issue 9; the other sections are unchanged
    "side_margin_m": 25.0, "side_probability": 0.51, "class_min_hold_s": 3.0, "class_max_hold_s": 30.0,
    "follow_class_s": 0.0,
}
PREVIOUS_LATENESS_S = "12"


def load_scorer():
    spec = importlib.util.spec_from_file_location("score_incidents", SCORER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def previous_rules_file(folder: Path) -> Path:
    text = (REPO / "fusion" / "rules.toml").read_text()
    lines = []
    for line in text.splitlines():
        key = line.split("=", 1)[0].strip()
        lines.append(f"{key} = {PREVIOUS_RULES[key]}" if key in PREVIOUS_RULES and "=" in line else line)
    path = folder / "previous-rules.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def replay(capture: Path, out: Path, rules: Path | None, lateness: str | None, cache: bool = False) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BORDERFUSE_")}
    if lateness is not None:
        env["BORDERFUSE_FUSION__ALLOWED_LATENESS_S"] = lateness
    cmd = [sys.executable, "-m", "borderfuse", "replay", str(capture), "--out", str(out), "--quiet"]
    if rules is not None:
        cmd += ["--rules", str(rules)]
    if cache:
        cmd.append("--cache")
    started = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, capture_output=True, text=True)
    return time.perf_counter() - started


def score(scorer, truth: Path, incidents: Path) -> dict:
    preds, _bad, withdrawn = scorer.load_predictions(incidents)
    result = scorer.score(json.loads(truth.read_text()), preds)
    result["withdrawn"] = len(withdrawn)
    return result


def row(name: str, variant: str, r: dict) -> str:
    lat = r.get("alarm_latency") or {}
    cells = []
    for kind in ("hotlist_vehicle", "drone_crossing", "border_crossing", "loitering", "all"):
        v = lat.get(kind)
        cells.append(f"{v['median_s']:>5.1f}/{v['p95_s']:>5.1f}" if v else "    -/    -")
    fp = sum(v["fp"] + v["dup"] for v in r["per_type"].values())
    fn = sum(v["fn"] for v in r["per_type"].values())
    return f"{name:<14} {variant:<9} F1={r['f1']:.3f} fp={fp:<2} fn={fn:<2} wd={r['withdrawn']:<2} " + " ".join(cells)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nights", default="101,102,103", help="seeds of the project's own hard nights ('' for none)")
    ap.add_argument("--minutes", type=float, default=45.0, help="length of each own night")
    ap.add_argument("--skip-shared", action="store_true", help="only the project's own nights")
    ap.add_argument("--nights-dir", type=Path, help="also every subfolder of this folder that holds a "
                    "capture.jsonl.gz and a truth.json (nights simulated before)")
    ap.add_argument("--variants", default="now,previous", help="which rules to replay with: now, previous or both")
    ap.add_argument("--cache", action="store_true", help="use replay's decoded-observation cache")
    args = ap.parse_args()
    scorer = load_scorer()
    work = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    previous = previous_rules_file(work)
    cases: list[tuple[str, Path, Path]] = []
    if not args.skip_shared:
        for name in ("sample", "hard"):
            folder = SHARED / "scenarios" / name
            cases.append((name, folder / "capture.jsonl.gz", folder / "truth.json"))
    for seed in [s for s in args.nights.split(",") if s.strip()]:
        cap, truth = work / f"hard-{seed}.jsonl.gz", work / f"hard-{seed}.truth.json"
        made = subprocess.run([sys.executable, "-m", "borderfuse", "simulate", "--hard", "--seed", seed,
                               "--minutes", str(args.minutes), "--out", str(cap), "--truth", str(truth)],
                              capture_output=True, text=True)
        if made.returncode != 0:
            print(f"simulate --hard --seed {seed} failed: {made.stderr.strip()[-300:]}", file=sys.stderr)
            continue
        cases.append((f"own-hard-{seed}", cap, truth))
    if args.nights_dir is not None:
        for folder in sorted(p for p in args.nights_dir.iterdir() if p.is_dir()):
            if (folder / "capture.jsonl.gz").is_file() and (folder / "truth.json").is_file():
                cases.append((f"night-{folder.name}", folder / "capture.jsonl.gz", folder / "truth.json"))
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - {"now", "previous"})
    if unknown or not variants:
        ap.error(f"--variants: expected now and/or previous, got {args.variants!r}")
    print("latency median/p95 s:        hotlist      drone        crossing     loitering    all")
    totals: dict[str, list] = {v: [] for v in variants}
    for name, capture, truth in cases:
        for variant, rules, lateness in (("now", None, None), ("previous", previous, PREVIOUS_LATENESS_S)):
            if variant not in totals:
                continue
            out = work / f"{name}-{variant}.jsonl"
            replay(capture, out, rules, lateness, args.cache)
            result = score(scorer, truth, out)
            totals[variant].append(result)
            print(row(name, variant, result), flush=True)
    for variant, results in totals.items():
        if results:
            mean_f1 = sum(r["f1"] for r in results) / len(results)
            print(f"{variant:<9} mean F1 {mean_f1:.3f} over {len(results)} nights, "
                  f"withdrawn {sum(r['withdrawn'] for r in results)}")
    print(f"(files in {work})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
