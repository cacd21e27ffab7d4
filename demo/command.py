"""`borderfuse demo`: broker + topics + live simulator + the service + a live incident feed."""
from __future__ import annotations

import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import attrs

FEED_CLIENT_ID = "borderfuse-demo-feed"


def register(sub):
    p = sub.add_parser(
        "demo", help="everything at once: broker, simulator, service and a live incident feed",
        description="Start a Kafka broker (fresh data dir, removed at exit), create the ICD topics, run the "
        "simulator live and the fusion service (`borderfuse run`) in this process, and print every "
        "committed incident per sector as it is published (read_committed, Avro decoded). Serves /metrics "
        "(the URL is printed). Ctrl-C stops everything cleanly. The first incidents appear within about a "
        "minute: the simulator starts every target at once and runs at --speed times real time. Later updates of an "
        "incident (same id, more sources) are marked `(update N)`.")
    p.add_argument("--bootstrap", metavar="HOST:PORT",
                   help="use this running broker instead of starting one (topics are created if missing)")
    p.add_argument("--port", type=int, default=None,
                   help="port of the broker the demo starts (default broker.port, or a free one if it is taken)")
    p.add_argument("--metrics-port", type=int, default=None,
                   help="port for /metrics (default metrics.port, or a free one if it is taken)")
    p.add_argument("--console-port", type=int, default=8800,
                   help="port of the web console (`borderfuse console`; default 8800, or a free one if it is taken)")
    p.add_argument("--speed", type=float, default=3.0,
                   help="simulated seconds per wall-clock second (default 3: the simulator lets its sensors "
                   "see a target for 90 simulated seconds before its first event, so at 3x the first incidents "
                   "come within a minute; event times then run ahead of the wall clock)")
    p.add_argument("--targets", type=int, default=40, help="targets present at once (default 40)")
    p.add_argument("--seed", type=int, default=7, help="simulator seed (default 7)")
    p.add_argument("--minutes", type=float, default=None,
                   help="stop by itself after this many wall-clock minutes (default: until Ctrl-C)")
    p.set_defaults(func=_run)


def format_incident(doc: dict) -> str:
    """One readable feed line: time, sector, type, summary, sources."""
    clock = doc["time"][11:19] + "Z"
    sources = ", ".join(doc.get("sources") or ()) or "-"
    summary = doc.get("summary") or f"{doc['type']} at {doc['lat']:.5f}, {doc['lon']:.5f}"
    update = f" (update {doc['seq']})" if doc.get("seq", 1) > 1 else ""
    return f"{clock}  {doc['sector']:<3} {doc['type']:<16} {summary}{update}  [{sources}]"


def _free_or(port: int) -> int:
    from borderfuse.devbroker.processes import free_port, port_is_free

    return port if port and port_is_free(port) else free_port()


def _run(args) -> int:
    import logging

    from borderfuse.devbroker.broker import BrokerError, KafkaBroker
    from borderfuse.ingest.commands.run import configure_logging
    from borderfuse.ingest.metrics import ServiceMetrics
    from borderfuse.ingest.service import FusionService, ServiceError
    from borderfuse.console.server import ConsoleError, start_console
    from borderfuse.simulator import ScenarioConfig, run_live
    from borderfuse.ingest.acls import provision
    from borderfuse.ingest.kafka_security import ADMIN, client_config, dev_principals
    from borderfuse.ingest.topics import TopicsError, sector_topics

    configure_logging()
    logging.getLogger("borderfuse").setLevel(logging.WARNING)
    settings = args.settings
    stop = threading.Event()
    started = time.monotonic()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    say = lambda text: print(f"demo: {text}", file=sys.stderr, flush=True)  # noqa: E731
    broker, data_dir, threads, server, errors, console = None, None, [], None, [], None
    try:
        if args.bootstrap:
            bootstrap = args.bootstrap
        else:
            data_dir = Path(tempfile.mkdtemp(prefix="borderfuse-demo-"))
            port = _free_or(settings.broker.port if args.port is None else args.port)
            broker = KafkaBroker.from_settings(settings.broker, data_dir=data_dir, port=port, log=say,
                                               credentials_file=settings.kafka.credentials_file,
                                               principals=dev_principals(sector_topics(settings.icd.geo_dir)))
            broker.start()
            bootstrap = broker.bootstrap
            settings = attrs.evolve(settings, kafka=attrs.evolve(settings.kafka,
                                                                 security_protocol=broker.security_protocol))
        settings = attrs.evolve(settings, kafka=attrs.evolve(settings.kafka, bootstrap_servers=bootstrap,
                                                             group_id=f"{settings.kafka.group_id}-demo"))
        # Topics and least-privilege ACLs as admin; then each part runs as its own principal (docs/operations.md).
        provision(settings, bootstrap)
        metrics = ServiceMetrics()
        metrics_port = _free_or(settings.metrics.port if args.metrics_port is None else args.metrics_port)
        server = metrics.start_http_server(settings.metrics.host, metrics_port)
        say(f"metrics at http://{settings.metrics.host}:{server.port}/metrics")
        _dev_console_users(settings, say)
        console = start_console(settings, port=_free_or(args.console_port), bootstrap=bootstrap)
        say(f"console at {console.url} (map, incidents per sector, acknowledge/assign/resolve)")
        _say_login(settings, say)
        service = FusionService(settings, metrics=metrics)
        config = ScenarioConfig(seed=args.seed, minutes=None, start=None, targets=args.targets,
                                start_stagger_s=0.0, geo_dir=settings.icd.geo_dir,
                                schemas_dir=settings.icd.schemas_dir)

        def guarded(name, fn):
            def body():
                try:
                    fn()
                except Exception as exc:  # noqa: BLE001 - reported, then everything stops
                    errors.append(f"{name}: {type(exc).__name__}: {exc}")
                    stop.set()
            return threading.Thread(target=body, name=f"demo-{name}")

        threads = [guarded("service", lambda: service.run(stop)),
                   guarded("simulator", lambda: run_live(bootstrap, config, stop, speed=args.speed, progress=None,
                                                        security_for=lambda p: client_config(settings.kafka, p)))]
        for thread in threads:
            thread.start()
        say(f"broker {bootstrap}, simulator at {args.speed:g}x real time; live incidents below (Ctrl-C stops)")
        deadline = None if args.minutes is None else started + args.minutes * 60
        _feed(bootstrap, service, stop, started, deadline, say, client_config(settings.kafka, ADMIN))
    except (BrokerError, TopicsError, ServiceError, ConsoleError) as exc:
        print(f"borderfuse demo: {exc}", file=sys.stderr)
        return 2
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        if server is not None:
            server.stop()
        if console is not None:
            console.stop()
        if broker is not None:
            broker.stop()
        if data_dir is not None:
            shutil.rmtree(data_dir, ignore_errors=True)
        for error in errors:
            print(f"borderfuse demo: {error}", file=sys.stderr)
    say(f"stopped after {time.monotonic() - started:.0f} s: {service.incidents_published} incidents, "
        f"{service.records_processed} records processed")
    return 1 if errors else 0


def _dev_console_users(settings, say) -> None:
    """The development console users (centre-<S> per sector, a supervisor) when there is no users file."""
    from borderfuse.console.users import dev_logins_path, ensure_dev_users
    from borderfuse.ingest.topics import sector_topics

    if settings.console.auth == "users-file" and ensure_dev_users(settings.console.users_file,
                                                                  sector_topics(settings.icd.geo_dir)):
        say(f"made development console users in {settings.console.users_file} "
            f"(passwords: {dev_logins_path(settings.console.users_file)}, mode 600)")


def _say_login(settings, say) -> None:
    from borderfuse.console.users import dev_logins_path, read_dev_logins

    logins = read_dev_logins(settings.console.users_file)
    if not logins:
        say(f"log in with a user of {settings.console.users_file} (`borderfuse console users add NAME --sectors S1`)")
        return
    centres = ", ".join(name for name in logins if name != "supervisor")
    say(f"log in as supervisor (every sector) or {centres} (one sector each); the "
        f"passwords are in {dev_logins_path(settings.console.users_file)} (e.g. `grep -A1 supervisor "
        f"{dev_logins_path(settings.console.users_file)}`)")


def _feed(bootstrap: str, service, stop: threading.Event, started: float, deadline: float | None, say,
          security: dict | None = None) -> None:
    """Every sector's incidents in the terminal: read as admin (a centre principal sees one sector only)."""
    from borderfuse.ingest.incident_feed import follow_incidents

    def should_stop() -> bool:
        return stop.is_set() or (deadline is not None and time.monotonic() >= deadline)

    first = True
    for doc in follow_incidents(bootstrap, service.sector_topic.values(), should_stop, on_error=say,
                                client_id=FEED_CLIENT_ID, security=security):
        if first:
            say(f"first incident {time.monotonic() - started:.0f} s after start")
            first = False
        print(format_incident(doc), flush=True)
