"""`borderfuse topics create|list`: the ICD's topics on a broker."""
from __future__ import annotations

import sys

from borderfuse.ingest.topics import TopicsError, ensure_topics, icd_topics, list_topics


def register(sub):
    p = sub.add_parser("topics", help="create or list the ICD topics",
                       description="Create (idempotently) or list the ICD topics: the eight input feeds, their "
                       "<topic>.dlq dead-letter topics, shared.hotlist (compacted) and incidents.<sector> for "
                       "every sector in the geography's sectors.geojson (settings icd.geo_dir).")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="create the ICD topics that do not exist yet")
    create.add_argument("--partitions", type=int, default=1, metavar="N", help="partitions per topic (default 1)")
    listing = actions.add_parser("list", help="list the topics on the broker")
    for parser in (create, listing):
        parser.add_argument("--bootstrap", metavar="HOST:PORT",
                            help="Kafka bootstrap servers (default: settings kafka.bootstrap_servers)")
    p.set_defaults(func=_run)


def _run(args) -> int:
    bootstrap = args.bootstrap or args.settings.kafka.bootstrap_servers
    try:
        if args.action == "create":
            specs = icd_topics(args.settings.icd.geo_dir, partitions=args.partitions)
            created = ensure_topics(bootstrap, specs)
            print(f"topics on {bootstrap}: {len(created)} created, {len(specs) - len(created)} already there"
                  + (f" ({', '.join(created)})" if created else ""))
        else:
            for name in list_topics(bootstrap):
                print(name)
    except (TopicsError, ValueError) as exc:
        print(f"borderfuse topics: {exc}", file=sys.stderr)
        return 1
    return 0
