"""`borderfuse topics create|acls|list`: the ICD's topics and their least-privilege ACLs on a broker."""
from __future__ import annotations

import sys

from borderfuse.ingest.kafka_probe import reachable
from borderfuse.ingest.kafka_security import ADMIN, client_config
from borderfuse.ingest.topics import TopicsError, icd_topics, list_topics, service_topics


def register(sub):
    p = sub.add_parser("topics", help="create or list the ICD topics and their ACLs",
                       description="Create (idempotently) or list the ICD topics: the eight input feeds, their "
                       "<topic>.dlq dead-letter topics, shared.hotlist (compacted), incidents.<sector>, "
                       "tracks.<sector> and actions.<sector> for every sector in the geography's sectors.geojson "
                       "(settings icd.geo_dir), and the service's borderfuse.state, borderfuse.rules and "
                       "borderfuse.audit; names take settings service.topic_prefix. On an authenticated broker "
                       "(kafka.security_protocol not PLAINTEXT) `create` also creates the least-privilege ACLs "
                       "derived from the sectors file and kafka.group_id (see docs/operations.md), as principal "
                       "admin by default.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="create the topics that do not exist yet, then the missing ACLs")
    create.add_argument("--partitions", type=int, default=1, metavar="N", help="partitions per topic (default 1)")
    create.add_argument("--no-acls", action="store_true", help="topics only, no ACLs")
    acls = actions.add_parser("acls", help="create the missing ACLs only (idempotent) and print them all")
    listing = actions.add_parser("list", help="list the topics on the broker (those the principal may see)")
    for parser in (create, acls, listing):
        parser.add_argument("--bootstrap", metavar="HOST:PORT",
                            help="Kafka bootstrap servers (default: settings kafka.bootstrap_servers)")
        parser.add_argument("--principal", default=ADMIN, metavar="NAME",
                            help=f"connect as this principal (default {ADMIN}, the super user who may create "
                            f"topics and ACLs; its password comes from kafka.credentials_file)")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from borderfuse.ingest.acls import ensure_acls, provision, settings_grants

    settings = args.settings
    bootstrap = args.bootstrap or settings.kafka.bootstrap_servers
    authenticated = settings.kafka.security_protocol != "PLAINTEXT"
    try:
        if not reachable(bootstrap):  # the first thing to say, before anything about credentials
            raise TopicsError(f"cannot reach Kafka at {bootstrap} (is the broker running? `borderfuse broker start`)")
        if args.action == "create":
            created, granted = provision(settings, bootstrap, args.principal, args.partitions, not args.no_acls)
            total = len(icd_topics(settings.icd.geo_dir)) + len(service_topics())
            print(f"topics on {bootstrap}: {len(created)} created, {total - len(created)} already there"
                  + (f" ({', '.join(created)})" if created else ""))
            if authenticated and not args.no_acls:
                print(f"ACLs on {bootstrap}: {len(granted)} created, "
                      f"{len(settings_grants(settings)) - len(granted)} already there")
        elif args.action == "acls":
            if not authenticated:
                print("borderfuse topics: kafka.security_protocol is PLAINTEXT: a plain broker has no ACLs",
                      file=sys.stderr)
                return 1
            wanted = settings_grants(settings)
            created = ensure_acls(bootstrap, wanted, client_config(settings.kafka, args.principal))
            for grant in wanted:
                print(grant.describe())
            print(f"ACLs on {bootstrap}: {len(created)} created, {len(wanted) - len(created)} already there",
                  file=sys.stderr)
        else:
            for name in list_topics(bootstrap, security=client_config(settings.kafka, args.principal)):
                print(name)
    except (TopicsError, ValueError) as exc:
        print(f"borderfuse topics: {exc}", file=sys.stderr)
        return 1
    return 0
