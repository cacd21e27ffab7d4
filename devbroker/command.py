"""`borderfuse broker start|stop|status`: the development Kafka broker (see devbroker/broker.py).

By hand the broker runs detached; its pid and port are kept in files under settings
broker.state_dir, which also holds its data and logs.
"""
from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

from borderfuse.devbroker.broker import LOOPBACK, BrokerError, KafkaBroker, answers_metadata
from borderfuse.devbroker.processes import is_kafka_pid, stop_pid
from borderfuse.ingest.kafka_security import ADMIN, client_config, dev_principals, write_credentials

PID_FILE = "broker.pid"
PORT_FILE = "broker.port"


def register(sub):
    p = sub.add_parser("broker", help="start, stop or query the development Kafka broker",
                       description="A single-node Kafka (KRaft) broker on 127.0.0.1 for development and "
                       "tests. Jars are fetched once with mvn into settings broker.cache_dir; data, logs, "
                       "pid and port files live in settings broker.state_dir. Clients authenticate with "
                       "SASL/SCRAM-SHA-512 (StandardAuthorizer, deny unless an ACL allows; `borderfuse topics "
                       "create` makes the ACLs); every principal's password is generated into settings "
                       "kafka.credentials_file (mode 600) when missing. broker.authentication = false starts a "
                       "plain unauthenticated broker instead (comparisons only; set kafka.security_protocol = "
                       "\"PLAINTEXT\" for its clients).")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    start = actions.add_parser("start", help="start the broker (detached) and print its bootstrap address")
    start.add_argument("--port", type=int, metavar="PORT",
                       help="listener port on 127.0.0.1 (default: settings broker.port; 0 picks a free one)")
    start.add_argument("--foreground", action="store_true",
                       help="stay in the foreground; Ctrl-C or SIGTERM stops the broker")
    actions.add_parser("stop", help="stop the broker started by `broker start`")
    actions.add_parser("status", help="say whether the broker runs and answers (exit 0) or not (exit 1)")
    actions.add_parser("credentials", help="generate the missing principals' passwords into "
                       "kafka.credentials_file (mode 600; existing ones are kept) and print its path")
    p.set_defaults(func=_run)


def _read_state(state_dir: Path) -> tuple[int | None, int | None]:
    def read_int(name: str) -> int | None:
        try:
            return int((state_dir / name).read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    return read_int(PID_FILE), read_int(PORT_FILE)


def _clear_state(state_dir: Path) -> None:
    for name in (PID_FILE, PORT_FILE):
        (state_dir / name).unlink(missing_ok=True)


def _run(args) -> int:
    state_dir = args.settings.broker.state_dir
    try:
        return {"start": _start, "stop": _stop, "status": _status,
                "credentials": _credentials}[args.action](args, state_dir)
    except BrokerError as exc:
        print(f"borderfuse broker: {exc}", file=sys.stderr)
        return 1


def _principals(settings) -> list[str]:
    from borderfuse.ingest.topics import TopicsError, sector_topics

    try:
        return dev_principals(sector_topics(settings.icd.geo_dir))
    except TopicsError as exc:
        raise BrokerError(str(exc)) from exc


def _credentials(args, state_dir: Path) -> int:
    path = args.settings.kafka.credentials_file
    _, added = write_credentials(path, _principals(args.settings))
    print(f"borderfuse broker: {path} ({'added ' + ', '.join(added) if added else 'complete'}; mode 600)",
          file=sys.stderr)
    print(path)
    return 0


def _security(settings) -> dict:
    return client_config(settings.kafka, ADMIN) if settings.broker.authentication else {}


def _start(args, state_dir: Path) -> int:
    pid, port = _read_state(state_dir)
    if pid is not None and is_kafka_pid(pid):
        print(f"borderfuse broker: already running (pid {pid}) at {LOOPBACK}:{port}", file=sys.stderr)
        print(f"{LOOPBACK}:{port}")
        return 0
    broker = KafkaBroker.from_settings(args.settings.broker, port=args.port,
                                       credentials_file=args.settings.kafka.credentials_file,
                                       principals=_principals(args.settings))
    broker.start(detach=not args.foreground)
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / PID_FILE).write_text(f"{broker.pid}\n")
    (state_dir / PORT_FILE).write_text(f"{broker.port}\n")
    if broker.authentication:
        print(f"borderfuse broker: SASL/SCRAM-SHA-512 with ACLs; passwords in {broker.credentials_file} "
              f"(`borderfuse topics create` makes the topics and ACLs)", file=sys.stderr)
    print(broker.bootstrap, flush=True)
    if not args.foreground:
        broker.detach()
        return 0

    def on_sigterm(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        while broker.is_running():  # also ends when `broker stop` from another shell kills the JVM
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        broker.stop()
        _clear_state(state_dir)
    print("borderfuse broker: stopped", file=sys.stderr)
    return 0


def _stop(args, state_dir: Path) -> int:
    pid, _ = _read_state(state_dir)
    if pid is None or not is_kafka_pid(pid):
        _clear_state(state_dir)
        print("borderfuse broker: not running")
        return 0
    stop_pid(pid)
    _clear_state(state_dir)
    print(f"borderfuse broker: stopped (pid {pid})")
    return 0


def _status(args, state_dir: Path) -> int:
    pid, port = _read_state(state_dir)
    if pid is None or not is_kafka_pid(pid):
        print("borderfuse broker: not running")
        return 1
    bootstrap = f"{LOOPBACK}:{port}"
    if not answers_metadata(bootstrap, security=_security(args.settings)):
        print(f"borderfuse broker: pid {pid} is running but does not answer at {bootstrap}")
        return 1
    print(f"borderfuse broker: running (pid {pid}) at {bootstrap}")
    return 0
