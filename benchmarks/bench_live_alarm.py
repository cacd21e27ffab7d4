"""Live alarm delay on the real broker at the simulator's real-time load (issue 9).

    .venv/bin/python benchmarks/bench_live_alarm.py [--minutes 10] [--speed 1] [--targets 40]

Starts an authenticated dev broker (temporary data dir), creates topics and ACLs, runs the simulator live
(each agency as its own principal) and the fusion service in this process, and follows the committed
incidents read_committed, as a patrol centre would. For every incident line it takes

    visible - decided_at

where `visible` is the wall-clock time this reader received the committed record and `decided_at` the
broker time of the newest input record the pipeline had consumed when it decided (at speed 1 the
simulator's records carry the wall clock). It bounds the issue's (commit time - decided_at) from above:
a record becomes visible only after its transaction commits. Target: p99 <= 1.5 s. Figures depend on the
machine's load (printed); not a test.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import attrs
import numpy as np

from borderfuse.devbroker.broker import KafkaBroker
from borderfuse.devbroker.processes import free_port
from borderfuse.ingest.acls import provision
from borderfuse.ingest.incident_feed import follow_incidents
from borderfuse.ingest.kafka_security import ADMIN, client_config, dev_principals
from borderfuse.ingest.service import FusionService
from borderfuse.ingest.settings import load_settings
from borderfuse.ingest.topics import sector_topics
from borderfuse.simulator import ScenarioConfig, run_live


def _unix_s(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10.0, help="wall-clock minutes to run (default 10)")
    p.add_argument("--speed", type=float, default=1.0, help="simulator speed (default 1 = real time)")
    p.add_argument("--targets", type=int, default=40, help="targets at once (default 40, as the demo)")
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-live-alarm-"))
    settings = load_settings(environ={"BORDERFUSE_KAFKA__CREDENTIALS_FILE": str(work / "credentials.toml")})
    broker = KafkaBroker.from_settings(settings.broker, data_dir=work / "broker", port=free_port(),
                                       log=lambda s: print(s, file=sys.stderr), credentials_file=work / "credentials.toml",
                                       principals=dev_principals(sector_topics(settings.icd.geo_dir)))
    broker.start()
    stop = threading.Event()
    delays: list[tuple[str, int, float]] = []
    try:
        settings = attrs.evolve(settings, kafka=attrs.evolve(settings.kafka, bootstrap_servers=broker.bootstrap,
                                                             security_protocol=broker.security_protocol))
        provision(settings, broker.bootstrap)
        service = FusionService(settings)
        config = ScenarioConfig(seed=args.seed, minutes=None, start=None, targets=args.targets, start_stagger_s=0.0,
                                geo_dir=settings.icd.geo_dir, schemas_dir=settings.icd.schemas_dir)
        threads = [threading.Thread(target=service.run, args=(stop,), name="service"),
                   threading.Thread(target=lambda: run_live(broker.bootstrap, config, stop, speed=args.speed,
                                                            progress=None,
                                                            security_for=lambda who: client_config(settings.kafka, who)),
                                    name="simulator")]
        for thread in threads:
            thread.start()
        started = time.monotonic()
        deadline = started + args.minutes * 60
        for doc in follow_incidents(broker.bootstrap, service.sector_topic.values(),
                                    lambda: stop.is_set() or time.monotonic() >= deadline,
                                    client_id="bench-live-alarm", security=client_config(settings.kafka, ADMIN)):
            seen = time.time()
            if doc.get("decided_at"):
                delays.append((doc["type"], int(doc["seq"]), seen - _unix_s(doc["decided_at"])))
                print(f"{time.monotonic() - started:6.0f} s  {doc['type']:<16} seq {doc['seq']}  "
                      f"visible - decided_at = {delays[-1][2]:.2f} s", file=sys.stderr, flush=True)
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
        broker.stop()
    load = os.getloadavg()
    print(f"\nlive alarm delay, {args.minutes:g} min at {args.speed:g}x, {args.targets} targets; "
          f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} on {os.cpu_count()} cores")
    if not delays:
        print("no incidents: run longer (the first come a few simulated minutes in)")
        return 1
    values = np.array([d for _, _, d in delays])
    firsts = np.array([d for _, seq, d in delays if seq == 1])
    for name, v in (("every incident line", values), ("first reports (seq 1)", firsts)):
        if len(v):
            print(f"  {name:<22} n={len(v):4d}  median {np.median(v):.2f} s  p95 {np.percentile(v, 95):.2f} s  "
                  f"p99 {np.percentile(v, 99):.2f} s  max {v.max():.2f} s")
    p99 = float(np.percentile(values, 99))
    print(f"  target p99 <= 1.5 s: {'met' if p99 <= 1.5 else 'NOT met'} ({p99:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
