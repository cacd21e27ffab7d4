"""`borderfuse run`: the live fusion service (consume the ICD feeds, publish incidents, exactly-once)."""
from __future__ import annotations

import faulthandler
import logging
import signal
import sys
import threading
import time


def register(sub):
    p = sub.add_parser(
        "run", help="run the live fusion service on Kafka",
        description="Consume every ICD input topic and shared.hotlist, fuse, and publish incidents (Avro, "
        "schema id 202, incident v2) to incidents.<sector> and dead letters to <topic>.dlq, exactly-once: incidents, "
        "dead letters, a state snapshot and the consumed offsets commit in one Kafka transaction "
        "(docs/delivery.md). Serves Prometheus metrics on metrics.host:metrics.port. SIGTERM or Ctrl-C "
        "stops it cleanly after a final commit.")
    p.add_argument("--metrics-port", type=int, metavar="PORT", default=None,
                   help="serve /metrics on this port instead of metrics.port (0 picks a free one)")
    p.add_argument("--no-metrics", action="store_true", help="do not serve /metrics")
    p.set_defaults(func=_run)


class KafkaNoiseFilter(logging.Filter):
    """kafka-python logs a broker outage as hundreds of ERROR lines and tracebacks. Keep its lines
    at WARNING without tracebacks, and each distinct message at most once a minute, so the one
    line of ours ("rolled back to the last committed snapshot (reason)") says what happened."""

    def __init__(self, every_s: float = 60.0, clock=time.monotonic):
        super().__init__()
        self.every_s, self.clock, self._last = every_s, clock, {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.WARNING:
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info = record.exc_text = None
        now, key = self.clock(), (record.name, record.msg)
        if now - self._last.get(key, -self.every_s) < self.every_s:
            return False
        self._last[key] = now
        return True


SELECTOR_LOGGER = "kafka.net.selector"


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    kafka = logging.getLogger("kafka")
    kafka.setLevel(logging.WARNING)
    # kafka-python 3's event loop warns whenever one of its tasks runs over 0.1 s (a busy 2-core machine):
    # nothing an operator can act on, and every few seconds.
    logging.getLogger(SELECTOR_LOGGER).setLevel(logging.ERROR)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_only_kafka(KafkaNoiseFilter()))


def _only_kafka(noise: KafkaNoiseFilter) -> logging.Filter:
    class _Filter(logging.Filter):
        def filter(self, record):
            return noise.filter(record) if record.name.startswith("kafka") else True
    return _Filter()


def _run(args) -> int:
    from borderfuse.ingest.metrics import MetricsError, ServiceMetrics
    from borderfuse.ingest.service import FusionService, ServiceError

    configure_logging()
    settings = args.settings
    metrics = ServiceMetrics()
    stop = threading.Event()

    def request_stop(signum, frame):
        logging.getLogger("borderfuse.service").info("service: %s received, stopping after a final commit",
                                                     signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 PID` prints every thread's stack (diagnosing a stall)
    server = None
    try:
        service = FusionService(settings, metrics=metrics)
        if not args.no_metrics:
            port = settings.metrics.port if args.metrics_port is None else args.metrics_port
            server = metrics.start_http_server(settings.metrics.host, port)
            print(f"borderfuse run: metrics at http://{settings.metrics.host}:{server.port}/metrics",
                  file=sys.stderr, flush=True)
        return service.run(stop)
    except (ServiceError, MetricsError) as exc:
        print(f"borderfuse run: {exc}", file=sys.stderr)
        return 2
    finally:
        if server is not None:
            server.stop()
