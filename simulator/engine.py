"""The simulation loop: world -> sensor models -> wire encoding -> delivery effects, chunk by chunk.

`Simulation.step()` returns the records of the next chunk of event time (10 s) with their arrival
times: the side's transport delay (DE 0.3-2.5 s, PL 0.1-0.8 s), ~1 % up to 10 s late, ~0.5 %
delivered twice byte-identical, plus the scheduled malformed records. Times are seconds from t0.
The same loop feeds a capture file (sorted by arrival at the end) and the live producer.
"""
from __future__ import annotations

import attrs
import numpy as np

from borderfuse.geo.geography import Geography
from borderfuse.geo.frames import GeoError
from borderfuse.simulator import malformed
from borderfuse.simulator.encode import Encoder, hotlist_record
from borderfuse.simulator.layout import random_plate
from borderfuse.simulator.scenario import ScenarioConfig, SimulatorError
from borderfuse.simulator.sensors import Feed, _live, build_models
from borderfuse.simulator.snapshot import Snapshot
from borderfuse.simulator.stressors import StressorProgram
from borderfuse.simulator.world import World

TOPICS = ("pl.radar.plots", "pl.camera.detections", "pl.uav.detections", "pl.anpr.reads",
          "de.radar.tracks", "de.camera.detections", "de.uav.detections", "de.anpr.reads", "shared.hotlist")
HOTLIST = TOPICS.index("shared.hotlist")
CHUNK_S = 10.0
PLAN_AHEAD_S = 30.0
HARD_STREAM = 0x4A5D  # the hard night's stressors draw from SeedSequence([seed, HARD_STREAM])
HOTLIST_REASONS = ("stolen vehicle", "wanted person's vehicle", "smuggling suspect")


@attrs.define(slots=True)
class Batch:
    """Records in generation order: topic index, key, value, event and arrival time (s from t0),
    and the malformed kind of each record (None for good ones)."""

    topic: np.ndarray
    key: list
    value: list
    event: np.ndarray
    arrival: np.ndarray
    tag: list

    def __len__(self) -> int:
        return self.event.size

    @classmethod
    def concat(cls, batches: list["Batch"]) -> "Batch":
        return cls(np.concatenate([b.topic for b in batches]) if batches else np.empty(0, np.int8),
                   [k for b in batches for k in b.key], [v for b in batches for v in b.value],
                   np.concatenate([b.event for b in batches]) if batches else np.empty(0),
                   np.concatenate([b.arrival for b in batches]) if batches else np.empty(0),
                   [g for b in batches for g in b.tag])


class Simulation:
    def __init__(self, config: ScenarioConfig, t0_us: int):
        self.config, self.t0_us = config, t0_us
        try:
            self.geo = Geography.load(config.geo_dir)
        except GeoError as exc:
            raise SimulatorError(f"cannot load the geography: {exc}") from exc
        seeds = np.random.SeedSequence(config.seed).spawn(5)
        self.world = World(self.geo, config, np.random.default_rng(seeds[0]))
        if config.hard:  # its own random stream: an ordinary night's streams stay as they were
            self.world.program = StressorProgram(
                self.world, np.random.default_rng(np.random.SeedSequence([config.seed, HARD_STREAM])))
        self.models = build_models(self.world, config, seeds[1])
        self.delivery_rng = np.random.default_rng(seeds[2])
        self.malformed_rng = np.random.default_rng(seeds[3])
        self.hotlist_rng = np.random.default_rng(seeds[4])
        self.encoder = Encoder(config.schemas_dir, t0_us)
        self.duration = config.duration_s
        self.t = 0.0
        self.malformed_made = 0
        self.hotlist: dict[str, str] = {}  # '<ISO>:<PLATE>' -> plate as listed
        self._listed_targets = 0

    @property
    def done(self) -> bool:
        return self.duration is not None and self.t >= self.duration

    @property
    def anpr_reads(self) -> list[dict]:
        return [r for m in self.models if hasattr(m, "reads") for r in m.reads]

    def step(self) -> Batch:
        """The records of event times [t, t + 10 s), and advance."""
        if self.done:
            raise SimulatorError("the simulation has already run its duration")
        ta = self.t
        tb = ta + CHUNK_S if self.duration is None else min(ta + CHUNK_S, self.duration)
        self.world.plan_until(tb + PLAN_AHEAD_S)
        if self.world.program is not None:
            for model in self.models:
                if hasattr(model, "silent"):
                    model.silent = self.world.program.silent(model.s.id)
        snap = Snapshot.build(self.world.active_between(ta - 2.0, tb + 6.0), ta, tb)
        by_topic: dict[str, list[Feed]] = {}
        for model in self.models:
            feed = model.observe(snap, ta, tb)
            if getattr(model, "silent", ()):  # a radar's scan begun before an outage ends inside it
                feed = feed.take(_live(feed.t, model.silent))
            by_topic.setdefault(feed.topic, []).append(feed)
        parts = [self._hotlist(ta)]
        for topic, feeds in by_topic.items():
            feed = Feed.concat(topic, feeds)
            if self.duration is not None:  # false tracks may run past the end of a recording
                feed = feed.take(feed.t < self.duration)
            if len(feed):
                parts.append(self._deliver(topic, [s.encode() for s in feed.sensor.tolist()],
                                           self.encoder.encode(feed), feed.t))
        parts.append(self._malformed(ta, tb))
        self.t = tb
        return Batch.concat([p for p in parts if len(p)])

    # --- delivery effects ---
    def _deliver(self, topic: str, keys: list, values: list, t: np.ndarray) -> Batch:
        rng, cfg = self.delivery_rng, self.config
        lo, hi = cfg.pl_delay_s if topic.startswith("pl.") else cfg.de_delay_s
        n = t.size
        delay = rng.uniform(lo, hi, n)
        late = rng.uniform(size=n) < cfg.late_rate
        delay[late] = rng.uniform(hi, max(hi, cfg.max_late_s), int(late.sum()))
        arrival = t + delay
        dup = np.flatnonzero(rng.uniform(size=n) < cfg.duplicate_rate)
        again = arrival[dup] + rng.uniform(0.5, 5.0, dup.size)
        index = TOPICS.index(topic)
        return Batch(np.full(n + dup.size, index, np.int8), keys + [keys[i] for i in dup],
                     values + [values[i] for i in dup], np.r_[t, t[dup]], np.r_[arrival, again],
                     [None] * (n + dup.size))

    def _malformed(self, ta: float, tb: float) -> Batch:
        cfg, rng = self.config, self.malformed_rng
        count = int(np.floor(cfg.malformed_per_min * tb / 60.0) - np.floor(cfg.malformed_per_min * ta / 60.0))
        if not cfg.malformed_kinds or count <= 0:
            return Batch.concat([])
        topics, keys, values, tags = [], [], [], []
        times = np.sort(rng.uniform(ta, tb, count))
        for t in times:
            kind = cfg.malformed_kinds[self.malformed_made % len(cfg.malformed_kinds)]
            self.malformed_made += 1
            us = self.t0_us + int(round(t * 1e6))
            topic, key, value = malformed.make(kind, rng, self.geo, self.encoder, us)
            topics.append(TOPICS.index(topic))
            keys.append(key)
            values.append(value)
            tags.append(kind)
        arrival = times + rng.uniform(0.1, 2.5, count)
        return Batch(np.array(topics, np.int8), keys, values, times, arrival, tags)

    # --- shared.hotlist ---
    def _hotlist(self, ta: float) -> Batch:
        """Entries of hotlisted vehicles planned so far (60 s before they appear) and, at the start,
        the decoys: listed plates that never pass."""
        rng, cfg = self.hotlist_rng, self.config
        entries = []
        if ta == 0.0:
            for _ in range(cfg.hotlist_decoys):
                plate, nat = random_plate(rng)
                entries.append((-60.0, plate, nat))
        new = self.world.targets[self._listed_targets:]
        self._listed_targets = len(self.world.targets)
        entries += [(max(tg.t_start - 60.0, -60.0), tg.plate, tg.nat) for tg in new if tg.hotlisted]
        if not entries:
            return Batch.concat([])
        keys, values, times = [], [], []
        for t, plate, nat in entries:
            reason = HOTLIST_REASONS[rng.integers(len(HOTLIST_REASONS))]
            key, value = hotlist_record(plate, nat, reason, "SIS", self.t0_us - 86_400_000_000)
            self.hotlist[key.decode()] = plate
            keys.append(key)
            values.append(value)
            times.append(t)
        times = np.array(times)
        return Batch(np.full(len(keys), HOTLIST, np.int8), keys, values, times, times.copy(), [None] * len(keys))
