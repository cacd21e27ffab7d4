"""Delivery guarantees of the service's Kafka machinery, independent of fusion: a small deterministic
pipeline stands in for ingest.pipeline.Pipeline (same protocol: process_batch, flush, snapshot,
restore), the broker is real. Run as a script, this module is `borderfuse run` with that pipeline,
so the tests can kill -9 a real process.

    python tests/test_service_delivery.py   # settings from BORDERFUSE_* like `borderfuse run`
"""
from __future__ import annotations

import collections
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import attrs
import pytest

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from borderfuse.sensors.base import EmptyValueError, RawRecord  # noqa: E402

INCIDENT_EVERY = 50
SECTORS = ("S1", "S2", "S3", "S4")


@attrs.frozen
class CountIncident:
    incident_id: str
    type: str
    sector: str
    time_us: int
    lat: float = 52.3
    lon: float = 14.6
    track_id: str | None = None
    sources: tuple[str, ...] = ()
    severity: str = "low"
    summary: str = "counting pipeline"
    seq: int = 1                      # the Incident protocol the service reads
    decided_at_us: int | None = None

    def to_json_dict(self) -> dict:
        return {**attrs.asdict(self), "sources": list(self.sources)}


@attrs.define
class CountResult:
    incidents: list
    dead_letters: list


class CountingPipeline:
    """Raises an incident on every INCIDENT_EVERY-th valid record; its id hashes every record
    processed so far, so a different order, a lost or a doubled record changes every later id."""

    def __init__(self, settings=None):
        self.count = 0
        self.digest = b""
        self.slow_s = float(os.environ.get("COUNTING_PIPELINE_SLOW_S", "0"))

    def process_batch(self, records: list[RawRecord]) -> CountResult:
        incidents, dead = [], []
        for record in records:
            if not record.value:
                dead.append((record, EmptyValueError("empty value", topic=record.topic, offset=record.offset)))
                continue
            self.count += 1
            self.digest = hashlib.sha1(self.digest + record.value).digest()
            if self.count % INCIDENT_EVERY == 0:
                incidents.append(CountIncident(f"n{self.count}-{self.digest.hex()[:12]}", "loitering",
                                               SECTORS[self.count // INCIDENT_EVERY % 4], record.timestamp_ms * 1000))
        time.sleep(self.slow_s * len(records))
        return CountResult(incidents, dead)

    def flush(self) -> CountResult:
        return CountResult([CountIncident(f"flush-{self.count}", "loitering", "S1", 0)], [])

    def snapshot(self) -> bytes:
        return json.dumps({"count": self.count, "digest": self.digest.hex()}).encode()

    def restore(self, data: bytes) -> None:
        """Explicit fields (no pickle); anything else is refused like the real pipeline's crafted state."""
        from borderfuse.ingest.state_envelope import StateFormatError

        try:
            doc = json.loads(data)
            count, digest = doc["count"], bytes.fromhex(doc["digest"])
        except (ValueError, TypeError, KeyError) as exc:
            raise StateFormatError(f"counting pipeline state: {type(exc).__name__}: {exc}") from None
        if type(count) is not int or count < 0:
            raise StateFormatError(f"counting pipeline state: count {count!r} is not an int >= 0")
        self.count, self.digest = count, digest


def expected_ids(records: list[RawRecord]) -> collections.Counter:
    """The ids an uninterrupted service raises: the pipeline over the records in merge order."""
    from borderfuse.ingest.arrival_merge import ArrivalMerge

    merge = ArrivalMerge()
    merge.add(records)
    pipeline = CountingPipeline()
    out = [i.incident_id for i in pipeline.process_batch(merge.release([], 0.0)).incidents]
    return collections.Counter(out)


def _main() -> int:
    from borderfuse.ingest.commands.run import configure_logging
    from borderfuse.ingest.service import FusionService
    from borderfuse.ingest.settings import load_settings

    configure_logging()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    return FusionService(load_settings(), pipeline_factory=CountingPipeline).run(stop)


# ----------------------------------------------------------------------------------- tests

pytestmark = pytest.mark.integration
N_RECORDS = 12_000


def _records(prefix: str) -> list[RawRecord]:
    from borderfuse.ingest.topics import HOTLIST_TOPIC, INPUT_TOPICS

    topics = (*INPUT_TOPICS, HOTLIST_TOPIC)
    t0 = 1_795_300_000_000
    # Topics get very different rates, like the real feeds; every 997th record is a dead letter.
    return [RawRecord(prefix + topics[(i * i) % 9], 0, -1, t0 + i * 3, b"k",
                      b"" if i % 997 == 5 else f"value-{i}".encode()) for i in range(N_RECORDS)]


def _setup(broker, prefix: str, **extra: str):
    """The service runs as principal borderfuse under the ACLs `topics create` makes (SASL/SCRAM broker)."""
    from borderfuse.capture.publish import publish_records
    from borderfuse.ingest.acls import provision
    from borderfuse.ingest.service import FusionService
    from borderfuse.ingest.settings import load_settings

    env = {**broker.env("borderfuse"), "BORDERFUSE_KAFKA__GROUP_ID": f"{prefix}group",
           "BORDERFUSE_SERVICE__TOPIC_PREFIX": prefix, "BORDERFUSE_SERVICE__TRANSACTION_INTERVAL_MS": "200", "BORDERFUSE_KAFKA__POLL_MAX_RECORDS": "300",
           **extra}
    settings = load_settings(environ=env)
    service = FusionService(settings, pipeline_factory=CountingPipeline)
    service.check_broker()
    provision(settings)
    service.ensure_topics()
    records = _records(prefix)
    publish_records(broker.bootstrap, records, security=broker.client_config())
    unprefixed = [attrs.evolve(r, topic=r.topic[len(prefix):]) for r in records]
    return env, service, expected_ids(unprefixed)


def _published_ids(broker, service) -> collections.Counter:
    from borderfuse.ingest.incident_feed import read_incidents

    docs = read_incidents(broker.bootstrap, service.sector_topic.values(), security=broker.client_config())
    assert all(d["_key"] == d["incident_id"].encode() and d["_topic"] == service.sector_topic[d["sector"]]
               for d in docs)
    return collections.Counter(d["incident_id"] for d in docs)


def _committed(broker, group: str) -> int:
    from borderfuse.ingest.incident_feed import committed_total
    return committed_total(broker.bootstrap, group, security=broker.client_config("ops"))


def _spawn(env: dict, log: Path) -> subprocess.Popen:
    with open(log, "ab") as err:
        return subprocess.Popen([sys.executable, __file__], env={**os.environ, **env},
                                stdout=subprocess.DEVNULL, stderr=err)


def test_in_process_run_publishes_each_incident_once_and_restart_consumes_nothing(kafka_broker):
    env, service, expected = _setup(kafka_broker, "dlv1.")
    for attempt in range(2):  # the second run restores the snapshot and must add nothing
        stop = threading.Event()
        thread = threading.Thread(target=service.run, args=(stop,))
        thread.start()
        deadline = time.monotonic() + 60
        while service.records_processed < N_RECORDS and attempt == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2 if attempt else 0)
        stop.set()
        thread.join(30)
        assert not thread.is_alive()
        assert _published_ids(kafka_broker, service) == expected
    assert service.dead_letters_published == sum(1 for i in range(N_RECORDS) if i % 997 == 5)


def test_kill_9_sigterm_and_broker_restart(kafka_broker, tmp_path):
    env, service, expected = _setup(kafka_broker, "dlv2.")
    env["COUNTING_PIPELINE_SLOW_S"] = "0.0005"  # ~6 s of work, so the interruptions land mid-stream
    group = env["BORDERFUSE_KAFKA__GROUP_ID"]
    log = tmp_path / "run.log"
    proc = _spawn(env, log)
    try:
        for share, action in [(0.2, "kill"), (0.4, "term"), (0.6, "broker"), (0.75, "kill")]:
            deadline = time.monotonic() + 120
            while _committed(kafka_broker, group) < share * N_RECORDS:
                assert time.monotonic() < deadline, log.read_text()[-2000:]
                time.sleep(0.1)
            if action == "kill":
                proc.kill()
                proc.wait(30)
                proc = _spawn(env, log)
            elif action == "term":
                proc.send_signal(signal.SIGTERM)
                assert proc.wait(60) == 0
                proc = _spawn(env, log)
            else:
                kafka_broker.stop()
                kafka_broker.start()
        deadline = time.monotonic() + 120
        while _committed(kafka_broker, group) < N_RECORDS:   # everything consumed and committed
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    published = _published_ids(kafka_broker, service)
    assert published == expected, (sum((expected - published).values()), sum((published - expected).values()))


if __name__ == "__main__":
    sys.exit(_main())
