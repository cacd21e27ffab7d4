"""Shared fixtures: a real Kafka broker (never a mock), the ../shared ICD files and sample capture.

The jars are cached in the normal cache dir (settings broker.cache_dir), so they are downloaded
once per machine; every broker started here gets its own tmp data dir and a free port, and its
JVM dies with the pytest process (parent-death signal) even when pytest is killed.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import pytest

from borderfuse.devbroker.broker import KafkaBroker
from borderfuse.ingest.settings import load_settings

REPO_DIR = Path(__file__).resolve().parent.parent
SHARED_DIR = REPO_DIR.parent / "shared"


def pytest_addoption(parser):
    parser.addoption("--fault-runs", type=int, default=2, metavar="N",
                     help="outage schedules for tests/test_service_faults.py (default 2; the closing notes used 10+)")


def pytest_configure(config):
    # kafka-python 3.0.12 loads its protocol schemas with importlib.resources.read_text/open_text, deprecated
    # in 3.11; with filterwarnings=error that would fail every test touching Kafka. Only this one.
    config.addinivalue_line("filterwarnings", "ignore:(read_text|open_text) is deprecated:DeprecationWarning")
    # kafka-python 3.0.12 leaks a socket per refused connection (a broker that is stopped or restarting); the
    # garbage collector reports it later, in whatever test runs then. Only unclosed sockets are let through.
    config.addinivalue_line("filterwarnings", "ignore:unclosed <socket.socket:ResourceWarning")
    config.addinivalue_line("filterwarnings",
                            "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning")


def _new_broker(data_dir: Path) -> KafkaBroker:
    settings = load_settings()
    return KafkaBroker.from_settings(settings.broker, data_dir=data_dir, port=0, die_with_parent=True)


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory) -> Iterator[KafkaBroker]:
    """One broker for the whole session: `.bootstrap`, `.stop()`, `.start()`. Tests sharing it
    should use their own topic names (e.g. a prefix) or a `kafka_broker_factory` broker."""
    broker = _new_broker(tmp_path_factory.mktemp("kafka-session"))
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def kafka_broker_factory(tmp_path_factory) -> Iterator[Callable[[], KafkaBroker]]:
    """Start fresh, empty brokers (about 4 s each) for tests that need clean ICD topics or stop
    and restart the broker; all are stopped at the end of the test."""
    brokers: list[KafkaBroker] = []

    def start() -> KafkaBroker:
        broker = _new_broker(tmp_path_factory.mktemp("kafka"))
        brokers.append(broker)
        return broker.start()

    yield start
    for broker in brokers:
        broker.stop()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The agencies' shared files (../shared next to the repo): ICD, scenarios, scoring tool."""
    if not SHARED_DIR.is_dir():
        pytest.skip(f"{SHARED_DIR} is absent (the ICD's shared files are not checked out next to the repo)")
    return SHARED_DIR


@pytest.fixture(scope="session")
def sample_capture(shared_dir: Path) -> Path:
    path = shared_dir / "scenarios" / "sample" / "capture.jsonl.gz"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return path
