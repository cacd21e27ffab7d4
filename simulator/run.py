"""Where the simulated feeds go: a capture file (as fast as possible) or Kafka (in real time).

`write_capture(path, config, truth_path=None)` writes the ICD capture format in arrival order,
with broker timestamps = arrival times, and optionally the ground truth (truth.py).
`run_live(bootstrap, config, stop_event)` produces into Kafka with event times = now, sending each
record once its delivery delay has elapsed; it returns when the run's minutes are over or
`stop_event` is set, after flushing the producer.
"""
from __future__ import annotations

import binascii
import gzip
import json
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, TextIO

import attrs
import numpy as np

from borderfuse.simulator.engine import TOPICS, Batch, Simulation
from borderfuse.simulator.scenario import ScenarioConfig, SimulatorError
from borderfuse.simulator.truth import build_truth

LOOKAHEAD_S = 15.0  # live: generate this far ahead of now (covers the 10 s of late delivery)
PROGRESS_EVERY_S = 5.0


@attrs.frozen(slots=True)
class RunSummary:
    records: int
    per_topic: dict[str, int]
    malformed: tuple[dict, ...]  # {topic, offset, kind} (offsets only in captures)
    seconds: float               # wall-clock time taken
    simulated_s: float
    truth: dict | None = None

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else float("inf")


def _t0_us(config: ScenarioConfig) -> int:
    start = config.start or datetime.now(timezone.utc)
    return int(round(start.timestamp() * 1e6))


def _b64(data: bytes | None) -> str:
    return "null" if data is None else '"' + binascii.b2a_base64(data, newline=False).decode("ascii") + '"'


def write_capture(path: Path | str, config: ScenarioConfig, truth_path: Path | str | None = None,
                  compresslevel: int = 3) -> RunSummary:
    """Simulate `config.minutes` and write the capture (gzip if the name ends in .gz)."""
    if config.minutes is None:
        raise SimulatorError("a capture needs a finite duration: set minutes")
    began = time.perf_counter()
    t0_us = _t0_us(config)
    sim = Simulation(config, t0_us)
    batches = []
    while not sim.done:
        batches.append(sim.step())
    batch = Batch.concat(batches)
    order = np.argsort(batch.arrival, kind="stable")
    topic = batch.topic[order]
    per_topic_offset = np.zeros(order.size, np.int64)
    for i in range(len(TOPICS)):  # offsets count up per topic in arrival order
        sel = topic == i
        per_topic_offset[sel] = np.arange(int(sel.sum()))
    t0_ms = t0_us // 1000
    stamp = t0_ms + np.floor(batch.arrival[order] * 1000.0).astype(np.int64)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    opener = (lambda p: gzip.open(p, "wb", compresslevel=compresslevel)) if path.name.endswith(".gz") \
        else (lambda p: open(p, "wb"))
    heads = [f'{{"topic":"{t}","partition":0,"offset":' for t in TOPICS]
    malformed = []
    with opener(path) as out:
        lines = []
        for n, (i, tp, off, ts) in enumerate(zip(order.tolist(), topic.tolist(), per_topic_offset.tolist(),
                                                 stamp.tolist())):
            lines.append(f'{heads[tp]}{off},"timestamp_ms":{ts},"key":{_b64(batch.key[i])},'
                         f'"value":{_b64(batch.value[i])}}}\n')
            if batch.tag[i] is not None:
                malformed.append({"topic": TOPICS[tp], "offset": off, "kind": batch.tag[i]})
            if len(lines) >= 20000:
                out.write("".join(lines).encode("ascii"))
                lines.clear()
        out.write("".join(lines).encode("ascii"))
    per_topic = {t: int((topic == i).sum()) for i, t in enumerate(TOPICS)}
    program = sim.world.program
    truth = build_truth(sim.geo, sim.world.targets, sim.anpr_reads, sim.hotlist, t0_us, sim.duration, config.seed,
                        outages=None if program is None else program.outages, hard=config.hard)
    truth["counts"] = per_topic
    truth["malformed"] = malformed
    if truth_path is not None:
        Path(truth_path).parent.mkdir(parents=True, exist_ok=True)
        Path(truth_path).write_text(json.dumps(truth, indent=1))
    return RunSummary(len(order), per_topic, tuple(malformed), time.perf_counter() - began, sim.duration, truth)


def _make_producer(bootstrap: str, security: dict | None = None):
    from kafka import KafkaProducer  # imported here: capture mode needs no Kafka client
    from kafka.errors import KafkaError
    try:
        return KafkaProducer(bootstrap_servers=bootstrap, client_id="borderfuse-simulator", acks=1, enable_idempotence=False,
                             linger_ms=20, batch_size=256 * 1024, max_request_size=4 * 1024 * 1024,
                             **(security or {}))
    except KafkaError as exc:
        raise SimulatorError(f"cannot connect to Kafka at {bootstrap}: {exc}") from exc


class AgencyProducers:
    """One producer per agency, as the real feeds are: `pl.*` topics go out as the PL principal, `de.*` as
    the DE one, a hotlist entry as the agency of its country (`<country>:<plate>` key; others: PL). Under
    the broker's ACLs each may write only its own topics. `security_for(principal)` gives the client kwargs."""

    def __init__(self, bootstrap: str, security_for: Callable[[str], dict], topic_prefix: str = "",
                 principals: tuple[str, str] = ("pl-agency", "de-agency")):
        self.prefix = topic_prefix
        self._pl = _make_producer(bootstrap, security_for(principals[0]))
        self._de = _make_producer(bootstrap, security_for(principals[1]))

    def send(self, topic: str, key=None, value=None):
        name = topic[len(self.prefix):]
        if name.startswith("de.") or (not name.startswith("pl.") and (key or b"").upper().startswith(b"DE:")):
            return self._de.send(topic, key=key, value=value)
        return self._pl.send(topic, key=key, value=value)

    def flush(self):
        self._pl.flush()
        self._de.flush()

    def close(self):
        self._pl.close()
        self._de.close()


def run_live(bootstrap: str, config: ScenarioConfig, stop_event: threading.Event | None = None, *,
             speed: float = 1.0, progress: TextIO | None = sys.stderr, topic_prefix: str = "",
             producer_factory: Callable[[str], object] | None = None,
             security_for: Callable[[str], dict] | None = None) -> RunSummary:
    """Produce the scenario into Kafka in real time (times `speed`) until done or `stop_event` is set.

    Event times are t0 + simulated seconds with t0 = now (config.start is ignored), so at speed 1
    they are the wall-clock time of the event; each record is sent when its arrival time comes.
    Keys are the sensor/platform ids (hotlist: `<country>:<plate>`). The producer is flushed and
    closed on the way out, however the loop ends. `topic_prefix` is prepended to every topic name
    (tests sharing a broker). With `security_for` (principal -> kafka_security.client_config) each
    agency's records go out as that agency (AgencyProducers); without, one unauthenticated producer.
    """
    if speed <= 0:
        raise SimulatorError(f"speed must be > 0, got {speed}")
    stop_event = stop_event or threading.Event()
    config = attrs.evolve(config, start=None)
    t0_us = _t0_us(config)
    sim = Simulation(config, t0_us)
    if producer_factory is None:
        producer_factory = (_make_producer if security_for is None
                            else lambda b: AgencyProducers(b, security_for, topic_prefix))
    producer = producer_factory(bootstrap)
    began = time.monotonic()
    pending = Batch.concat([])
    sent = np.zeros(len(TOPICS), np.int64)
    malformed: list[dict] = []
    last_report = began
    try:
        while not stop_event.is_set():
            now_s = (time.monotonic() - began) * speed
            while not sim.done and sim.t < now_s + LOOKAHEAD_S:
                pending = Batch.concat([pending, sim.step()])
                order = np.argsort(pending.arrival, kind="stable")
                pending = _take(pending, order)
            due = int(np.searchsorted(pending.arrival, now_s, side="right"))
            for i in range(due):
                topic = topic_prefix + TOPICS[pending.topic[i]]
                producer.send(topic, key=pending.key[i], value=pending.value[i])
                sent[pending.topic[i]] += 1
                if pending.tag[i] is not None:
                    malformed.append({"topic": topic, "offset": -1, "kind": pending.tag[i]})
            pending = _take(pending, np.arange(due, len(pending)))
            if sim.done and len(pending) == 0:
                break
            wall = time.monotonic()
            if progress is not None and wall - last_report >= PROGRESS_EVERY_S:
                last_report = wall
                print(f"simulate: t={now_s:7.1f}s sent {int(sent.sum())} records "
                      f"({int(sent.sum()) / max(wall - began, 1e-9):.0f}/s), {len(sim.world.targets)} targets so far",
                      file=progress, flush=True)
            next_due = pending.arrival[0] if len(pending) else now_s + 0.2
            stop_event.wait(min(0.2, max(0.0, (next_due - now_s) / speed)))
    finally:
        producer.flush()
        producer.close()
    elapsed = time.monotonic() - began
    if progress is not None:
        print(f"simulate: stopped after {elapsed:.1f}s, sent {int(sent.sum())} records", file=progress, flush=True)
    return RunSummary(int(sent.sum()), {t: int(n) for t, n in zip(TOPICS, sent)}, tuple(malformed), elapsed,
                      sim.t)


def _take(batch: Batch, index: np.ndarray) -> Batch:
    return Batch(batch.topic[index], [batch.key[i] for i in index], [batch.value[i] for i in index],
                 batch.event[index], batch.arrival[index], [batch.tag[i] for i in index])
