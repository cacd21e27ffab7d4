"""Live mode: the console's Kafka side.

Per sector the console serves, one consumer (read_committed, no consumer group: every console reads
everything of its sectors) as Kafka principal `centre-<sector>` (the ACLs let a centre read only its
own sector's topics) over `incidents.<sector>` and `actions.<sector>` from the beginning, so a
restarted console rebuilds its whole state, and over `tracks.<sector>` from the last TRACK_BACKLOG_S
only (short retention, positions only matter now). Broker errors close and reopen the consumer at the
positions reached, so the console catches up after a broker restart. `SectorFeeds` runs them all.
Actions are produced by `KafkaActionSink` to `actions.<sector>` of their incident, as that sector's centre.
"""
from __future__ import annotations

import json
import logging
import threading
import time

from borderfuse.console.app import ActionSinkError
from borderfuse.console.state import Action, ActionError, ConsoleState
from borderfuse.ingest.incident_codec import IncidentCodecError, decode_incident
from borderfuse.ingest.kafka_probe import reachable

log = logging.getLogger("borderfuse.console")
TRACK_BACKLOG_S = 60.0
POLL_MS = 200
RETRY_S = 2.0
ACTION_SEND_TIMEOUT_S = 5.0
PROBE_INTERVAL_S = 1.0


class KafkaFeed:
    """`run(stop)` in a thread; `caught_up` is set once incidents and actions were read to their end
    as of the (re)start; `reconnects` counts consumer reopens after errors."""

    def __init__(self, state: ConsoleState, bootstrap: str, incident_topics: list[str], track_topics: list[str],
                 actions_topic: str, client_id: str = "borderfuse-console", security: dict | None = None):
        self.state = state
        self.bootstrap = bootstrap
        self.incident_topics = list(incident_topics)
        self.track_topics = list(track_topics)
        self.actions_topic = actions_topic
        self.client_id = client_id
        self.security = dict(security or {})   # kafka_security.client_config of the principal reading
        self.caught_up = threading.Event()
        self.reconnects = 0
        self.positions: dict = {}   # TopicPartition -> next offset, kept across reopens

    def run(self, stop: threading.Event) -> None:
        from kafka.errors import KafkaError

        while not stop.is_set():
            consumer = None
            try:
                consumer = self._open()
                self._loop(consumer, stop)
            except (KafkaError, OSError, AssertionError) as exc:
                self.reconnects += 1
                log.warning("console: Kafka feed: %s: %s; reopening in %.0f s", type(exc).__name__, str(exc), RETRY_S)
                stop.wait(RETRY_S)
            finally:
                if consumer is not None:
                    try:
                        consumer.close(autocommit=False)
                    except (KafkaError, OSError):
                        pass

    def _open(self):
        from kafka import KafkaConsumer, TopicPartition

        # kafka-python retries a lost broker on its own, leaking a socket per refused connect: probe
        # first, and close the consumer as soon as the broker is gone (see _loop); reopen when it is back.
        if not reachable(self.bootstrap):
            raise OSError(f"broker {self.bootstrap} is unreachable")
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, client_id=self.client_id, group_id=None,
                                 isolation_level="read_committed", enable_auto_commit=False,
                                 request_timeout_ms=15000, **self.security)
        tps, track_tps = [], []
        for topic in [*self.incident_topics, self.actions_topic, *self.track_topics]:
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                consumer.close(autocommit=False)
                raise OSError(f"topic {topic} does not exist (yet) on {self.bootstrap}")
            for p in sorted(partitions):
                (track_tps if topic in self.track_topics else tps).append(TopicPartition(topic, p))
        consumer.assign(tps + track_tps)
        fresh_tracks = [tp for tp in track_tps if tp not in self.positions]
        since_ms = int((time.time() - TRACK_BACKLOG_S) * 1000)
        starts = consumer.offsets_for_times({tp: since_ms for tp in fresh_tracks}) if fresh_tracks else {}
        ends = consumer.end_offsets(tps + track_tps)
        for tp in tps + track_tps:
            if tp in self.positions:
                consumer.seek(tp, self.positions[tp])
            elif tp in starts:
                found = starts[tp]
                consumer.seek(tp, found.offset if found is not None else ends[tp])
            else:
                consumer.seek_to_beginning(tp)
        self._ends = {tp: ends[tp] for tp in tps}
        log.info("console: reading %d incident/action and %d track partitions from %s", len(tps), len(track_tps),
                 self.bootstrap)
        return consumer

    def _loop(self, consumer, stop: threading.Event) -> None:
        probed = time.monotonic()
        while not stop.is_set():
            if time.monotonic() - probed >= PROBE_INTERVAL_S:
                probed = time.monotonic()
                if not reachable(self.bootstrap):
                    raise OSError(f"broker {self.bootstrap} is unreachable")
            polled = consumer.poll(timeout_ms=POLL_MS)
            tracks: list[dict] = []
            for tp, records in polled.items():
                for record in records:
                    self._apply(record, tracks)
                self.positions[tp] = records[-1].offset + 1
            self.state.apply_tracks(tracks)
            self.state.set_clock(time.time_ns() // 1000)
            if not self.caught_up.is_set() and all(consumer.position(tp) >= end for tp, end in self._ends.items()):
                self.caught_up.set()
                log.info("console: caught up: %d incidents", len(self.state.incidents))

    def _apply(self, record, tracks: list[dict]) -> None:
        where = f"{record.topic}@{record.partition}:{record.offset}"
        if record.topic == self.actions_topic:
            try:
                self.state.apply_action(Action.from_json_dict(json.loads(record.value)))
            except (ValueError, ActionError) as exc:
                log.warning("console: skipping action record %s: %s", where, exc)
        elif record.topic in self.track_topics:
            try:
                tracks.append(json.loads(record.value))
            except ValueError as exc:
                log.warning("console: skipping track record %s: %s", where, exc)
        else:
            try:
                doc = decode_incident(record.value)
            except IncidentCodecError as exc:
                log.warning("console: skipping incident record %s: %s", where, exc)
                return
            self.state.apply_incident(doc, decided_us=record.timestamp * 1000)


class SectorFeeds:
    """One KafkaFeed per sector, each in its own thread; `caught_up` is set once all of them are."""

    def __init__(self, feeds: dict[str, KafkaFeed]):
        self.feeds = feeds
        self.caught_up = threading.Event()

    @property
    def reconnects(self) -> int:
        return sum(f.reconnects for f in self.feeds.values())

    def run(self, stop: threading.Event) -> None:
        threads = [threading.Thread(target=f.run, args=(stop,), name=f"console-feed-{s}", daemon=True)
                   for s, f in self.feeds.items()]
        for thread in threads:
            thread.start()
        while not stop.wait(0.1):
            if not self.caught_up.is_set() and all(f.caught_up.is_set() for f in self.feeds.values()):
                self.caught_up.set()
        for thread in threads:
            thread.join(timeout=30)


class KafkaActionSink:
    """Writes each action to `actions.<sector>` of its incident (keyed by incident id, acks=all) as that
    sector's principal, then applies it locally; the feed's copy is recognised by its action_id and ignored.
    `topics`: {sector: actions topic}; `security`: {sector: kafka_security.client_config}."""

    def __init__(self, state: ConsoleState, bootstrap: str, topics: dict[str, str],
                 client_id: str = "borderfuse-console", security: dict[str, dict] | None = None):
        self.state = state
        self.bootstrap = bootstrap
        self.topics = dict(topics)
        self.client_id = client_id
        self.security = dict(security or {})
        self._producers: dict[str, object] = {}
        self._lock = threading.Lock()

    def _get_producer(self, sector: str):
        from kafka import KafkaProducer

        with self._lock:
            if sector not in self._producers:
                self._producers[sector] = KafkaProducer(
                    bootstrap_servers=self.bootstrap, client_id=self.client_id, acks="all", linger_ms=0,
                    max_block_ms=3000, request_timeout_ms=int(ACTION_SEND_TIMEOUT_S * 1000),
                    **self.security.get(sector, {}))
            return self._producers[sector]

    def __call__(self, action: Action) -> None:
        from kafka.errors import KafkaError

        sector = self.state.sector_of(action.incident_id)
        topic = self.topics.get(sector)
        if topic is None:
            raise ActionSinkError(f"this console does not serve sector {sector} of incident {action.incident_id}")
        value = json.dumps(action.to_json_dict(), separators=(",", ":")).encode()
        if not reachable(self.bootstrap):
            raise ActionSinkError(f"the broker {self.bootstrap} is unreachable; {topic} not written")
        try:
            self._get_producer(sector).send(topic, key=action.incident_id.encode(), value=value) \
                .get(timeout=ACTION_SEND_TIMEOUT_S)
        except KafkaError as exc:
            raise ActionSinkError(f"writing to {topic} on {self.bootstrap} failed: {type(exc).__name__}: "
                                  f"{exc}") from exc
        self.state.apply_action(action)

    def close(self) -> None:
        with self._lock:
            for producer in self._producers.values():
                producer.close(timeout=5)
            self._producers.clear()
