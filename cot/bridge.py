"""Kafka -> CoT: follow the incident topics (and optionally tracks.<sector>), committed records only,
and send each as a CoT event through pytak. Starts at the topics' end (new incidents only) unless
asked to start from the beginning."""
from __future__ import annotations

import asyncio
import json
import logging
import threading
import time

from borderfuse.cot.events import CotError, incident_event, track_event
from borderfuse.cot.sender import CotSender
from borderfuse.ingest.incident_codec import IncidentCodecError, decode_incident

log = logging.getLogger("borderfuse.cot")
POLL_MS = 300
TOPIC_WAIT_S = 30.0


class CotBridgeError(RuntimeError):
    """The topics to follow are missing; the message names them."""


class CotBridge:
    def __init__(self, bootstrap: str, url: str, incident_topics: list[str], track_topics: list[str] = (),
                 from_beginning: bool = False, client_id: str = "borderfuse-cot", security: dict | None = None):
        self.bootstrap = bootstrap
        self.security = dict(security or {})  # kafka_security.client_config of the principal reading
        self.url = url
        self.incident_topics = list(incident_topics)
        self.track_topics = list(track_topics)
        self.from_beginning = from_beginning
        self.client_id = client_id
        self.sent = {"incidents": 0, "tracks": 0}
        self.skipped = 0
        self.ready = threading.Event()   # set once the consumer is assigned and positioned

    def run(self, stop: threading.Event) -> None:
        asyncio.run(self._run(stop))

    def _consumer(self):
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, client_id=self.client_id, group_id=None,
                                 isolation_level="read_committed", enable_auto_commit=False, **self.security)
        tps, deadline = [], time.monotonic() + TOPIC_WAIT_S
        for topic in [*self.incident_topics, *self.track_topics]:
            # a topic created a moment ago may not be in the metadata yet: ask again until it is
            while not (partitions := consumer.partitions_for_topic(topic)):
                if time.monotonic() > deadline:
                    consumer.close()
                    raise CotBridgeError(f"topic {topic} does not exist on {self.bootstrap} "
                                         f"(`borderfuse topics create`)")
                time.sleep(0.5)
            tps += [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        if self.from_beginning:
            consumer.seek_to_beginning(*tps)
        else:
            consumer.seek_to_end(*tps)
            for tp in tps:
                consumer.position(tp)  # resolve "end" now, so records produced from here on are all sent
        return consumer

    async def _run(self, stop: threading.Event) -> None:
        loop = asyncio.get_running_loop()
        consumer = await loop.run_in_executor(None, self._consumer)
        try:
            async with CotSender(self.url) as sender:
                self.ready.set()
                while not stop.is_set():
                    polled = await loop.run_in_executor(None, lambda: consumer.poll(timeout_ms=POLL_MS))
                    now_us = time.time_ns() // 1000
                    for records in polled.values():
                        for record in records:
                            event = self._event(record, now_us)
                            if event is not None:
                                await sender.send(event)
        finally:
            consumer.close()

    def _event(self, record, now_us: int) -> bytes | None:
        try:
            if record.topic in self.track_topics:
                event = track_event(json.loads(record.value), now_us)
                self.sent["tracks"] += 1
            else:
                event = incident_event(decode_incident(record.value), now_us)
                self.sent["incidents"] += 1
            return event
        except (CotError, IncidentCodecError, ValueError) as exc:
            self.skipped += 1
            log.warning("cot: skipping %s@%d:%d: %s", record.topic, record.partition, record.offset, exc)
            return None
