"""Confirmed track updates for the patrol centres' consoles: `tracks.<sector>` topics.

Pure (no Kafka, no clock): the service hands each batch's `TrackReport`s to `TrackFeed.select`,
which keeps at most one update per track per `min_interval_us` of EVENT time (so a replay and the
live service throttle alike), finds each kept report's sector (vectorised), and returns
(topic, key, value) triples that the service sends inside the same transaction as the incidents.
"""
from __future__ import annotations

import json
from typing import Callable, Iterable

import numpy as np

from borderfuse.fusion.types import TrackReport

TRACK_TOPIC_PREFIX = "tracks."
# Operators' actions on incidents: one topic per sector, so an ACL can let a centre write only its own.
ACTIONS_TOPIC_PREFIX = "actions."
# Consoles draw trails and live positions only: a short retention keeps the topics small
# (a console starts from the last minutes, never from the beginning).
TRACK_RETENTION_MS = 15 * 60 * 1000
TRACK_SEGMENT_MS = 5 * 60 * 1000
DEFAULT_MIN_INTERVAL_US = 1_000_000
# The throttle's memory: tracks silent for this long (event time) are forgotten once it holds this many.
FORGET_AFTER_US = 120_000_000
FORGET_AT_TRACKS = 2000


def track_topic(sector: str) -> str:
    return f"{TRACK_TOPIC_PREFIX}{sector}"


def actions_topic(sector: str) -> str:
    return f"{ACTIONS_TOPIC_PREFIX}{sector}"


def encode_track(report: TrackReport, sector: str) -> bytes:
    """One track update as compact JSON (the `borderfuse replay --tracks` fields plus `sector`)."""
    doc = report.to_json_dict()
    doc["sector"] = sector
    doc["time_us"] = int(report.time_us)
    return json.dumps(doc, separators=(",", ":")).encode()


class TrackFeed:
    """Throttle per track on event time and route each kept update to its sector's topic.

    `sector_of(x, y)` takes arrays of shared-frame metres and returns sector ids (the geography's
    `sector_of`); `prefix` is the service's topic prefix. Tracks outside every sector are skipped.
    """

    def __init__(self, sector_of: Callable[[np.ndarray, np.ndarray], Iterable] | None = None, prefix: str = "",
                 min_interval_us: int = DEFAULT_MIN_INTERVAL_US):
        if min_interval_us < 0:
            raise ValueError(f"min_interval_us must be >= 0, got {min_interval_us}")
        self.sector_of = sector_of
        self.prefix = prefix
        self.min_interval_us = int(min_interval_us)
        self._last_sent: dict[str, int] = {}

    def select_from(self, pipeline) -> list[tuple[str, bytes, bytes]]:
        """The pipeline's pending track reports (none if it collects none), throttled and routed;
        sectors from the pipeline's geography unless a `sector_of` was given."""
        take = getattr(pipeline, "take_track_reports", None)
        if take is None:
            return []
        if self.sector_of is None:
            self.sector_of = pipeline.geography.sector_of
        reports = take()
        out = self.select(reports)
        if reports and len(self._last_sent) > FORGET_AT_TRACKS:
            self.forget_before(max(r.time_us for r in reports) - FORGET_AFTER_US)
        return out

    def select(self, reports: list[TrackReport]) -> list[tuple[str, bytes, bytes]]:
        kept: list[TrackReport] = []
        last = self._last_sent
        for report in reports:
            previous = last.get(report.track_id)
            if previous is not None and report.time_us - previous < self.min_interval_us:
                continue
            last[report.track_id] = report.time_us
            kept.append(report)
        if not kept:
            return []
        sectors = self.sector_of(np.array([r.x for r in kept]), np.array([r.y for r in kept]))
        out = []
        for report, sector in zip(kept, list(sectors)):
            sector = "" if sector is None else str(sector)
            if not sector or sector == "None":
                continue
            out.append((self.prefix + track_topic(sector), report.track_id.encode(), encode_track(report, sector)))
        return out

    def forget_before(self, time_us: int) -> None:
        """Drop throttle entries of tracks not updated since `time_us` (bounds memory on long runs)."""
        self._last_sent = {k: t for k, t in self._last_sent.items() if t >= time_us}
