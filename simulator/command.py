"""`borderfuse simulate`: ICD-conformant feeds of both sides, to a capture file or live into Kafka."""
from __future__ import annotations

import signal
import sys
import threading
from datetime import datetime

from borderfuse.simulator import ScenarioConfig, SimulatorError, parse_mix, run_live, write_capture
from borderfuse.simulator.scenario import DEFAULT_MIX, MALFORMED_KINDS, TARGET_KINDS


def register(sub):
    p = sub.add_parser(
        "simulate", help="simulated DE/PL sensor feeds: a capture file (--out) or live into Kafka",
        description="Simulate a night on the border: people crossing, loitering and walking along it, "
        "vehicles over the two road bridges read by both sides' ANPR (some hotlisted), local traffic, drones "
        "and wildlife, seen by every sensor of the registry with its noise, rate and range, delivered with "
        "the ICD's delays, late records, duplicates and malformed records. With --out: write a capture "
        "file as fast as possible (event times from --start) and, with --truth, the ground truth for "
        "score_incidents.py. Without --out: produce into Kafka in real time, event times = now, until "
        "--minutes are over or Ctrl-C (the producer is flushed). Deterministic for a given --seed.")
    p.add_argument("--out", metavar="FILE", help="write a capture file (.jsonl or .jsonl.gz) instead of producing")
    p.add_argument("--truth", metavar="FILE", help="with --out: also write the ground truth JSON")
    p.add_argument("--bootstrap", metavar="HOST:PORT",
                   help="Kafka to produce into (default: settings kafka.bootstrap_servers); PL feeds go out as "
                   "principal pl-agency, DE feeds as de-agency, each hotlist entry as its country's agency "
                   "(passwords from kafka.credentials_file)")
    p.add_argument("--minutes", type=float, default=None,
                   help="simulated duration (default: 30 with --out; forever live)")
    p.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    p.add_argument("--targets", type=int, default=25,
                   help="targets present at once; each is replaced by a new one of its kind when it leaves "
                   "(default 25)")
    p.add_argument("--mix", metavar="KIND=W,...",
                   help=f"relative weights of target kinds ({', '.join(TARGET_KINDS)}); unnamed kinds get 0. "
                   f"Default {','.join(f'{k}={v}' for k, v in DEFAULT_MIX.items())}")
    p.add_argument("--hotlist-fraction", type=float, default=0.2, help="share of bridge vehicles on the hotlist")
    p.add_argument("--malformed-per-min", type=float, default=0.5,
                   help="malformed records per simulated minute, cycling through the kinds (default 0.5)")
    p.add_argument("--malformed-kinds", metavar="K1,K2",
                   help=f"only these malformed kinds (default all: {', '.join(MALFORMED_KINDS)})")
    p.add_argument("--hard", action="store_true",
                   help="a hard night, of the kind of shared/scenarios/hard: the ordinary traffic thinned out "
                   "(each --targets slot sets out once at a random time, rarely replaced) and, every 45 minutes "
                   "(or over the whole run if shorter), 3 turn-backs (loitering under the ICD), 6 walkers along the "
                   "line, a group of 3-4 crossing together (one incident), an off-road vehicle crossing, a drone "
                   "hovering then crossing and one flying along the line, animals grazing near the line in camera "
                   "view, a person crossing and coming back 10+ minutes later (two incidents), two people crossing "
                   "at once, a PL radar and a DE camera silent for 6-8 minutes with two crossings meanwhile, and "
                   "crowds moving 150-600 m from the line and farther away. The truth tags them (`stressor`), "
                   "lists their negatives and the outages")
    p.add_argument("--start", metavar="ISO8601", help="with --out: event time of the start "
                   "(default 2026-11-21T22:00:00Z); live always starts now")
    p.add_argument("--speed", type=float, default=1.0, help="live: simulated seconds per wall-clock second")
    p.set_defaults(func=_run)


def _config(args) -> ScenarioConfig:
    kwargs = dict(seed=args.seed, targets=args.targets, hotlist_fraction=args.hotlist_fraction,
                  malformed_per_min=args.malformed_per_min, geo_dir=args.settings.icd.geo_dir,
                  schemas_dir=args.settings.icd.schemas_dir, hard=args.hard)
    if args.mix:
        kwargs["mix"] = parse_mix(args.mix)
    if args.malformed_kinds:
        kwargs["malformed_kinds"] = tuple(k.strip() for k in args.malformed_kinds.split(",") if k.strip())
    if args.start:
        try:
            kwargs["start"] = datetime.fromisoformat(args.start.replace("Z", "+00:00"))
        except ValueError as exc:
            raise SimulatorError(f"--start {args.start!r} is not an ISO-8601 time") from exc
    kwargs["minutes"] = args.minutes if args.minutes is not None else (30.0 if args.out else None)
    return ScenarioConfig(**kwargs)


def _run(args) -> int:
    try:
        config = _config(args)
        if args.out:
            summary = write_capture(args.out, config, args.truth)
            print(f"simulate: wrote {summary.records} records ({config.minutes:g} simulated minutes, "
                  f"{len(summary.malformed)} malformed) to {args.out} in {summary.seconds:.1f}s "
                  f"({summary.records_per_s:.0f} records/s)"
                  + (f"; truth: {len(summary.truth['incidents'])} incidents -> {args.truth}" if args.truth else ""),
                  file=sys.stderr)
            return 0
        if args.truth:
            raise SimulatorError("--truth needs --out: a live run has no recording to be the truth of")
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        bootstrap = args.bootstrap or args.settings.kafka.bootstrap_servers
        from borderfuse.ingest.kafka_security import client_config

        run_live(bootstrap, config, stop, speed=args.speed,
                 security_for=lambda principal: client_config(args.settings.kafka, principal))
        return 0
    except (SimulatorError, OSError) as exc:
        print(f"borderfuse simulate: {exc}", file=sys.stderr)
        return 2
