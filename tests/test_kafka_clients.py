"""Every Kafka client the service builds reconnects within RECONNECT_BACKOFF_MAX_MS after a broker outage
(kafka-python's default back-off grows to 30 s: the service then found a returned broker up to 30 s late).
Checked on the source of each module, so a new client without it fails here."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from borderfuse.ingest.publisher import RECONNECT_BACKOFF_MAX_MS

REPO = Path(__file__).resolve().parent.parent
SERVICE_MODULES = ["ingest/service.py", "ingest/publisher.py", "ingest/state_store.py", "ingest/state_rebuild.py"]
CLIENTS = ("KafkaConsumer", "KafkaProducer")


def clients_without_backoff(source: str) -> list[int]:
    """Line numbers of Kafka client constructions that do not pass reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS."""
    bad = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
        if name not in CLIENTS:
            continue
        given = {k.arg: k.value for k in node.keywords if k.arg}
        value = given.get("reconnect_backoff_max_ms")
        if not (isinstance(value, ast.Name) and value.id == "RECONNECT_BACKOFF_MAX_MS"):
            bad.append(node.lineno)
    return bad


@pytest.mark.parametrize("module", SERVICE_MODULES)
def test_every_service_client_reconnects_promptly(module):
    source = (REPO / module).read_text(encoding="utf-8")
    assert any(c + "(" in source for c in CLIENTS), f"{module} builds no Kafka client any more: update the list"
    assert clients_without_backoff(source) == [], f"{module}: client without the short reconnect back-off"


@pytest.mark.parametrize("source, expected", [
    ("KafkaConsumer(bootstrap_servers=b)", [1]),
    ("kafka.KafkaProducer(bootstrap_servers=b, reconnect_backoff_max_ms=30000)", [1]),
    ("KafkaConsumer(bootstrap_servers=b, reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS)", []),
    ("x = 1\nKafkaProducer(**cfg)", [2]),
])
def test_the_check_finds_a_client_without_it(source, expected):
    assert clients_without_backoff(source) == expected


def test_the_back_off_is_short():
    assert 0 < RECONNECT_BACKOFF_MAX_MS <= 1000
