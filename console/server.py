"""Build a console (live or replay) and serve it with uvicorn; used by `borderfuse console`, the
demo, the tests and the benchmark."""
from __future__ import annotations

import logging
import socket
import threading
import time
from pathlib import Path

import attrs

from borderfuse.console.app import Access, create_app, missing_vendor_files
from borderfuse.console.geography import GeographyLayersError, load_layers
from borderfuse.console.state import ConsoleState
from borderfuse.console.users import UsersFileAuth, UsersFileError, session_secret
from borderfuse.ingest.audit import KafkaAuditWriter, LogAuditWriter

log = logging.getLogger("borderfuse.console")


class ConsoleError(RuntimeError):
    """The console cannot start; the message is one clear line."""


@attrs.define
class Console:
    """A running console: its state, its feed (KafkaFeed or CaptureReplay) and its HTTP server."""

    state: ConsoleState
    feed: object
    url: str
    mode: str
    _server: object = None
    _threads: list = attrs.field(factory=list)
    _stop: threading.Event = attrs.field(factory=threading.Event)
    _sink: object = None
    audit: object = None

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.config.app.state.hub.close()  # end the push streams, or shutdown waits for them
            self._server.should_exit = True
        for thread in self._threads:
            thread.join(timeout=30)
        if hasattr(self._sink, "close"):
            self._sink.close()
        if self.audit is not None:
            self.audit.close()


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is no obstacle
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def start_console(settings, *, host: str = "127.0.0.1", port: int = 8800, capture: Path | str | None = None,
                  rules_file: Path | str | None = None, speed: float = 1.0, bootstrap: str | None = None,
                  basemap_url: str | None = None, console_id: str | None = None,
                  sectors: list[str] | None = None) -> Console:
    """Start the feed and the HTTP server in background threads; returns once the server listens.
    `sectors`: the sectors served (default settings console.sectors, "" = all); users log in from
    console.users_file (console.auth = "users-file")."""
    missing = missing_vendor_files()
    if missing:
        raise ConsoleError(f"the console's web bundle is missing ({', '.join(missing)} under console/web/vendor): "
                           f"run scripts/setup.sh")
    if not port_is_free(host, port):
        raise ConsoleError(f"port {port} on {host} is taken: pick another with --port")
    try:
        layers = load_layers(settings.icd.geo_dir)
    except GeographyLayersError as exc:
        raise ConsoleError(str(exc)) from exc
    served = served_sectors(layers["sector_ids"], sectors if sectors is not None else settings.console.sectors)
    auth, secret = _users(settings)
    state = ConsoleState()
    console_id = console_id or f"{socket.gethostname()}:{port}"
    stop = threading.Event()
    if capture is not None:
        feed, sink, mode, clock = _replay_feed(settings, state, capture, rules_file, speed)
        audit = LogAuditWriter(f"console {console_id}")   # no broker in replay: the audit goes to the log
    else:
        bootstrap = bootstrap or settings.kafka.bootstrap_servers
        feed, sink, mode = _kafka_feed(settings, state, bootstrap, console_id, served)
        clock = lambda: time.time_ns() // 1000  # noqa: E731
        audit = KafkaAuditWriter(settings, f"console {console_id}", bootstrap=bootstrap)  # as kafka.username
    access = Access(auth, audit, secret, settings.console.session_max_age_s, settings.console.secure_cookie)
    app = create_app(state, layers, sink, access=access, clock_us=clock, mode=mode, console_id=console_id,
                     basemap_url=basemap_url, served_sectors=served)
    feed_thread = threading.Thread(target=feed.run, args=(stop,), name="console-feed", daemon=True)
    feed_thread.start()
    try:
        server, http_thread = serve_in_thread(app, host, port)
    except ConsoleError:
        stop.set()
        raise
    return Console(state, feed, f"http://{host}:{port}/", mode, server, [feed_thread, http_thread], stop, sink, audit)


def served_sectors(known: list[str], wanted: str | list[str]) -> list[str]:
    """The sectors a console serves: `wanted` (comma-separated or a list; empty: all `known`), validated."""
    names = [s.strip() for s in (wanted.split(",") if isinstance(wanted, str) else wanted) if s.strip()]
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise ConsoleError(f"unknown sector(s) {', '.join(unknown)} (console.sectors / --sectors); known: "
                           f"{', '.join(known)}")
    return names or list(known)


def _users(settings):
    """The password check and the session key of console.auth, or ConsoleError in one line."""
    cfg = settings.console
    if cfg.auth == "oidc":
        raise ConsoleError('console.auth = "oidc" is not implemented in this build: use "users-file" '
                           '(console.users_file)')
    try:
        auth = UsersFileAuth(cfg.users_file)
        secret = session_secret(cfg.session_secret_file)
    except UsersFileError as exc:
        raise ConsoleError(str(exc)) from exc
    if not auth.reload():
        raise ConsoleError(f"console users file {cfg.users_file} has no users: `borderfuse console users add NAME "
                           f"--sectors S1` adds one")
    return auth, secret


def serve_in_thread(app, host: str, port: int, timeout_s: float = 15.0):
    """Serve `app` with uvicorn in a daemon thread; returns (server, thread) once it listens.
    Stop it with `server.should_exit = True` and a join."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                                           lifespan="on", ws="none", timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, name="console-http", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise ConsoleError(f"the web server did not start on {host}:{port}")
        time.sleep(0.05)
    return server, thread


def _replay_feed(settings, state, capture, rules_file, speed):
    from borderfuse.console.replay import CaptureReplay
    from borderfuse.fusion.rules import RulesError
    from borderfuse.ingest.pipeline import Pipeline

    if not Path(capture).is_file():
        raise ConsoleError(f"capture file {capture} does not exist")
    try:
        pipeline = Pipeline.from_settings(settings, rules_file=rules_file, collect_tracks=True)
    except (RulesError, OSError, ValueError) as exc:
        raise ConsoleError(f"cannot build the pipeline: {exc}") from exc
    replay = CaptureReplay(state, pipeline, capture, speed)
    return replay, replay.submit, f"replay {Path(capture).name} at {speed:g}x", lambda: state.clock_us


def _kafka_feed(settings, state, bootstrap, console_id, served):
    from borderfuse.console.kafka_feed import KafkaActionSink, KafkaFeed, SectorFeeds
    from borderfuse.ingest.audit import AUDIT_TOPIC, AUDIT_TOPIC_CONFIG
    from borderfuse.ingest.kafka_probe import reachable
    from borderfuse.ingest.kafka_security import client_config
    from borderfuse.ingest.topics import TopicSpec, TopicsError, ensure_topics, icd_topics, sector_topics
    from borderfuse.ingest.track_feed import actions_topic, track_topic

    prefix = settings.service.topic_prefix
    try:
        sectors = sector_topics(settings.icd.geo_dir)
        if settings.kafka.security_protocol == "PLAINTEXT":
            # a plain development broker: idempotent, so the console may start before the service
            ensure_topics(bootstrap, [*icd_topics(settings.icd.geo_dir, prefix=prefix),
                                      TopicSpec(prefix + AUDIT_TOPIC, 1, tuple(AUDIT_TOPIC_CONFIG.items()))],
                          timeout_s=15)
        elif not reachable(bootstrap):
            # under ACLs only admin creates topics (`borderfuse topics create`); the feeds wait for them
            raise ConsoleError(f"cannot reach Kafka at {bootstrap} (is the broker running? `borderfuse broker start`)")
        # each sector's topics are read and written as that sector's centre (the ACLs allow nothing more)
        security = {s: client_config(settings.kafka, principal=f"centre-{s}") for s in served}
    except (TopicsError, ValueError) as exc:   # ValueError: kafka_security.CredentialsError
        raise ConsoleError(str(exc)) from exc
    client_id = f"borderfuse-console-{console_id}"
    feeds = {s: KafkaFeed(state, bootstrap, [prefix + sectors[s]], [prefix + track_topic(s)],
                          prefix + actions_topic(s), client_id=client_id, security=security[s]) for s in served}
    sink = KafkaActionSink(state, bootstrap, {s: prefix + actions_topic(s) for s in served}, client_id=client_id,
                           security=security)
    return SectorFeeds(feeds), sink, f"live from {bootstrap}"
