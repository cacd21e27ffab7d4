"""Score the pipeline on simulated nights of other seeds (not a test).

For each seed: `borderfuse simulate --out --truth`, `borderfuse replay`, then the ICD scorer
(`../shared/tools/score_incidents.py`). Prints one line per seed and the mean F1, so a rule or
tracker change can be judged on more than the one recorded sample night. `--rules FILE` scores that
rules file (validated first); without it, the settings' `fusion.rules_file` (default `fusion/rules.toml`).

    python benchmarks/eval_scenarios.py [--rules FILE] [--seeds 1,2,3] [--minutes 30] [--sample]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCORER = REPO.parent / "shared" / "tools" / "score_incidents.py"
SAMPLE = REPO.parent / "shared" / "scenarios" / "sample"


def _run(*args: str) -> None:
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}")


def score(capture: Path, truth: Path, workdir: Path, rules: Path | None = None) -> dict:
    incidents = workdir / f"{capture.stem}.incidents.jsonl"
    _run(sys.executable, "-m", "borderfuse.ingest.cli", "replay", str(capture), "--out", str(incidents),
         *(["--rules", str(rules)] if rules is not None else []))
    out = subprocess.run([sys.executable, str(SCORER), str(truth), str(incidents), "--json"],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def _line(name: str, r: dict) -> str:
    per = " ".join(f"{t[:8]}={v['tp']}/{v['tp'] + v['fn']}+{v['fp']}fp{v['dup']}d" for t, v in r["per_type"].items())
    return (f"{name:>10s} F1={r['f1']:.3f} P={r['precision']:.3f} R={r['recall']:.3f} "
            f"wrong_sector={r['wrong_sector']} both_sides={r['both_sides_fused']} "
            f"delay={r['median_delay_s']}s err={r['median_error_m']}m  {per}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="1,2,3", help="comma-separated simulator seeds (default 1,2,3)")
    ap.add_argument("--minutes", type=float, default=30.0, help="simulated minutes per seed (default 30)")
    ap.add_argument("--sample", action="store_true", help="also score the recorded sample night")
    ap.add_argument("--verbose", action="store_true", help="print missed incidents and false alarms")
    ap.add_argument("--rules", metavar="FILE", type=Path,
                    help="rules TOML to score (default: the settings' fusion.rules_file, i.e. fusion/rules.toml)")
    a = ap.parse_args()
    if not SCORER.exists():
        sys.exit(f"scorer not found at {SCORER}: ../shared must be beside the repository")
    if a.rules is not None:
        from borderfuse.fusion.rules import RulesError, load_rules
        try:   # refused before any simulation: the error names file, section and key
            load_rules(a.rules)
        except RulesError as exc:
            sys.exit(f"eval_scenarios: {exc}")
        a.rules = a.rules.resolve()
    print(f"rules: {a.rules if a.rules is not None else 'the settings fusion.rules_file (default fusion/rules.toml)'}",
          flush=True)
    f1s = []
    with tempfile.TemporaryDirectory(prefix="borderfuse-eval-") as tmp:
        work = Path(tmp)
        runs = []
        if a.sample:
            runs.append(("sample", SAMPLE / "capture.jsonl.gz", SAMPLE / "truth.json"))
        for seed in (int(s) for s in a.seeds.split(",") if s):
            cap, truth = work / f"seed{seed}.jsonl.gz", work / f"seed{seed}.truth.json"
            _run(sys.executable, "-m", "borderfuse.ingest.cli", "simulate", "--out", str(cap), "--truth", str(truth),
                 "--seed", str(seed), "--minutes", str(a.minutes))
            runs.append((f"seed {seed}", cap, truth))
        for name, cap, truth in runs:
            r = score(cap, truth, work, a.rules)
            f1s.append(r["f1"])
            print(_line(name, r), flush=True)
            if a.verbose:
                for m in r["missed"]:
                    print("    missed", m)
                for fa in r["false_alarms"]:
                    print("    false alarm", fa)
    print(f"mean F1 over {len(f1s)} night(s): {sum(f1s) / len(f1s):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
