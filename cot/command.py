"""`borderfuse cot`: committed incidents (and optionally tracks) as Cursor-on-Target events to a TAK
server or multicast group, through pytak."""
from __future__ import annotations

import signal
import sys
import threading


def register(sub):
    p = sub.add_parser(
        "cot", help="send incidents (and optionally tracks) as Cursor-on-Target events to TAK",
        description="Follow the incident topics (read_committed) and send each incident, and each update of it "
        "(same CoT uid), as a CoT alarm event (type b-a-g) to a TAK server or multicast group through pytak. "
        "With --tracks, confirmed track updates from tracks.<sector> go out too, as atoms typed by class. "
        "Starts at the topics' end (new incidents only) unless --from-beginning. Ctrl-C stops.")
    p.add_argument("--url", default="udp+wo://239.2.3.1:6969", metavar="URL",
                   help="where to send: udp://HOST:PORT, udp+wo://239.2.3.1:6969 (ATAK multicast, the default), "
                   "tcp://HOST:PORT (TAK server streaming input, e.g. 8087), tls://HOST:PORT")
    p.add_argument("--tracks", action="store_true", help="also send confirmed track updates (<= 1/s per track)")
    p.add_argument("--sector", action="append", metavar="ID", help="only this sector (repeatable; default all)")
    p.add_argument("--from-beginning", action="store_true", help="send every incident still on the topics first")
    p.add_argument("--bootstrap", metavar="HOST:PORT", help="broker (default kafka.bootstrap_servers)")
    p.add_argument("--principal", metavar="NAME",
                   help="Kafka principal to read as (default: centre-<ID> with exactly one --sector, which may read "
                   "only its own sector; otherwise admin, which reads every sector: development only)")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from borderfuse.cot.bridge import CotBridge, CotBridgeError
    from borderfuse.cot.sender import CotSendError, check_url
    from borderfuse.ingest.commands.run import configure_logging
    from borderfuse.ingest.kafka_probe import reachable
    from borderfuse.ingest.topics import TopicsError, sector_topics
    from borderfuse.ingest.track_feed import track_topic

    settings = args.settings
    bootstrap = args.bootstrap or settings.kafka.bootstrap_servers
    prefix = settings.service.topic_prefix
    try:
        check_url(args.url)
        sectors = sector_topics(settings.icd.geo_dir)
    except (CotSendError, TopicsError) as exc:
        print(f"borderfuse cot: {exc}", file=sys.stderr)
        return 2
    unknown = set(args.sector or ()) - set(sectors)
    if unknown:
        print(f"borderfuse cot: unknown sector(s) {', '.join(sorted(unknown))}; known: {', '.join(sectors)}",
              file=sys.stderr)
        return 2
    wanted = [s for s in sectors if not args.sector or s in args.sector]
    if not reachable(bootstrap):
        print(f"borderfuse cot: cannot reach Kafka at {bootstrap} (kafka.bootstrap_servers or --bootstrap)",
              file=sys.stderr)
        return 2
    configure_logging()
    from borderfuse.ingest.kafka_security import ADMIN, centre_principal, client_config

    principal = args.principal or (centre_principal(wanted[0]) if len(wanted) == 1 else ADMIN)
    bridge = CotBridge(bootstrap, args.url, [prefix + sectors[s] for s in wanted],
                       [prefix + track_topic(s) for s in wanted] if args.tracks else [],
                       from_beginning=args.from_beginning, security=client_config(settings.kafka, principal))
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"cot: sectors {', '.join(wanted)} -> {args.url}{' (with tracks)' if args.tracks else ''}; Ctrl-C stops",
          file=sys.stderr, flush=True)
    try:
        bridge.run(stop)
    except (CotSendError, CotBridgeError) as exc:
        print(f"borderfuse cot: {exc}", file=sys.stderr)
        return 1
    print(f"cot: sent {bridge.sent['incidents']} incident and {bridge.sent['tracks']} track events "
          f"({bridge.skipped} skipped)", file=sys.stderr)
    return 0
