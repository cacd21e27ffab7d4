"""`borderfuse console`: the patrol centres' web console, live over Kafka or replaying a capture."""
from __future__ import annotations

import signal
import sys
import threading


def register(sub):
    p = sub.add_parser(
        "console", help="web console: live map of tracks and incidents per sector, acknowledge/assign/resolve",
        description="Serve the patrol centres' web console. Live (default): reads the incident topics, "
        "tracks.<sector> and incidents.actions of the broker (kafka.bootstrap_servers, or --bootstrap) and "
        "writes operators' actions to incidents.actions; a restarted console rebuilds its state from the topics. "
        "Replay (--capture): runs the fusion pipeline over a capture file in-process, with no broker, at --speed "
        "times the capture's time, and shows it on the same page. The map is drawn from the ICD geography "
        "(icd.geo_dir) and needs no tile server. Prints the URL; Ctrl-C stops.")
    p.add_argument("--capture", metavar="FILE", help="replay this capture file (.jsonl or .jsonl.gz) instead of "
                   "reading Kafka")
    p.add_argument("--rules", metavar="FILE", help="replay only: rules TOML (default: fusion.rules_file)")
    p.add_argument("--speed", type=float, default=1.0, help="replay only: capture seconds per wall-clock second "
                   "(default 1)")
    p.add_argument("--bootstrap", metavar="HOST:PORT", help="live only: broker (default kafka.bootstrap_servers)")
    p.add_argument("--host", help="address to serve on (default: settings console.host, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to serve on (default: settings console.port, 8800)")
    p.add_argument("--basemap-url", metavar="URL", help="optional raster tile URL template "
                   "(e.g. https://tiles.example/{z}/{x}/{y}.png; default: settings console.basemap_url); without "
                   "one the map is vector layers only")
    p.add_argument("--console-id", metavar="NAME", help="name of this console in action records "
                   "(default host:port)")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from borderfuse.console.server import ConsoleError, start_console
    from borderfuse.ingest.commands.run import configure_logging

    if args.capture is None and (args.rules is not None or args.speed != 1.0):
        print("borderfuse console: --rules and --speed need --capture (replay mode)", file=sys.stderr)
        return 2
    if args.capture is not None and args.bootstrap is not None:
        print("borderfuse console: --bootstrap is for live mode; replay (--capture) needs no broker", file=sys.stderr)
        return 2
    if not args.speed > 0:
        print(f"borderfuse console: --speed must be > 0, got {args.speed}", file=sys.stderr)
        return 2
    configure_logging()
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        cfg = args.settings.console
        host = args.host or cfg.host
        port = cfg.port if args.port is None else args.port
        console = start_console(args.settings, host=host, port=port, capture=args.capture,
                                rules_file=args.rules, speed=args.speed, bootstrap=args.bootstrap,
                                basemap_url=args.basemap_url or cfg.basemap_url or None, console_id=args.console_id)
    except ConsoleError as exc:
        print(f"borderfuse console: {exc}", file=sys.stderr)
        return 2
    print(f"console: {console.url} ({console.mode}); Ctrl-C stops", file=sys.stderr, flush=True)
    replay_reported = False
    try:
        while not stop.wait(0.5):
            done = getattr(console.feed, "done", None)
            if done is not None and done.is_set() and not replay_reported:
                replay_reported = True
                error = console.feed.error
                print(f"console: {error}" if error else f"console: replay done: {console.feed.records} records, "
                      f"{console.feed.incidents} incidents; still serving", file=sys.stderr, flush=True)
    finally:
        console.stop()
    return 0
