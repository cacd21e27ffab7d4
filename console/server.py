"""Build a console (live or replay) and serve it with uvicorn; used by `borderfuse console`, the
demo, the tests and the benchmark."""
from __future__ import annotations

import logging
import socket
import threading
import time
from pathlib import Path

import attrs

from borderfuse.console.app import create_app, missing_vendor_files
from borderfuse.console.geography import GeographyLayersError, load_layers
from borderfuse.console.state import ConsoleState

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

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.config.app.state.hub.close()  # end the push streams, or shutdown waits for them
            self._server.should_exit = True
        for thread in self._threads:
            thread.join(timeout=30)
        if hasattr(self._sink, "close"):
            self._sink.close()


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
                  basemap_url: str | None = None, console_id: str | None = None) -> Console:
    """Start the feed and the HTTP server in background threads; returns once the server listens."""
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
    state = ConsoleState()
    console_id = console_id or f"{socket.gethostname()}:{port}"
    stop = threading.Event()
    if capture is not None:
        feed, sink, mode, clock = _replay_feed(settings, state, capture, rules_file, speed)
    else:
        feed, sink, mode = _kafka_feed(settings, state, bootstrap or settings.kafka.bootstrap_servers, console_id)
        clock = lambda: time.time_ns() // 1000  # noqa: E731
    app = create_app(state, layers, sink, clock_us=clock, mode=mode, console_id=console_id, basemap_url=basemap_url)
    feed_thread = threading.Thread(target=feed.run, args=(stop,), name="console-feed", daemon=True)
    feed_thread.start()
    try:
        server, http_thread = serve_in_thread(app, host, port)
    except ConsoleError:
        stop.set()
        raise
    return Console(state, feed, f"http://{host}:{port}/", mode, server, [feed_thread, http_thread], stop, sink)


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


def _kafka_feed(settings, state, bootstrap, console_id):
    from borderfuse.console.kafka_feed import KafkaActionSink, KafkaFeed
    from borderfuse.ingest.topics import TopicsError, ensure_topics, icd_topics, sector_topics
    from borderfuse.ingest.track_feed import ACTIONS_TOPIC, track_topic

    prefix = settings.service.topic_prefix
    try:
        sectors = sector_topics(settings.icd.geo_dir)
        # idempotent: the console may start before the service
        ensure_topics(bootstrap, icd_topics(settings.icd.geo_dir, prefix=prefix), timeout_s=15)
    except TopicsError as exc:
        raise ConsoleError(str(exc)) from exc
    feed = KafkaFeed(state, bootstrap, [prefix + t for t in sectors.values()],
                     [prefix + track_topic(s) for s in sectors], prefix + ACTIONS_TOPIC,
                     client_id=f"borderfuse-console-{console_id}")
    sink = KafkaActionSink(state, bootstrap, prefix + ACTIONS_TOPIC, client_id=f"borderfuse-console-{console_id}")
    return feed, sink, f"live from {bootstrap}"
