"""Replay mode: the service's pipeline over a capture file, in-process and without a broker, paced
at N x the capture's own time, feeding the console state (incidents, decided times, tracks).

For training and for rule tuners: the same page as live, on recorded traffic and a rules file of
one's own. Operators' actions are kept in memory (there are no `actions.<sector>` topics here).
"""
from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

from borderfuse.console.state import Action, ConsoleState
from borderfuse.ingest.track_feed import TrackFeed

log = logging.getLogger("borderfuse.console")
TICK_S = 0.1


def incident_doc(incident) -> dict:
    """The pipeline's Incident in the JSON form the Kafka side decodes to (with `time_us`)."""
    return {**incident.to_json_dict(), "time_us": int(incident.time_us)}


class CaptureReplay:
    """Runs in its own thread (`run(stop)`); `done` is set at the end of the capture, `error` says why
    it stopped early (one line), `records` counts what was fed."""

    def __init__(self, state: ConsoleState, pipeline, capture: Path | str, speed: float):
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self.state = state
        self.pipeline = pipeline
        self.capture = Path(capture)
        self.speed = float(speed)
        self.track_feed = TrackFeed(pipeline.geography.sector_of)
        self.done = threading.Event()
        self.error: str | None = None
        self.records = 0
        self.incidents = 0

    def submit(self, action: Action) -> None:
        """The app's action sink in replay mode: straight into the state."""
        self.state.apply_action(action)

    def _emit(self, result, clock_us: int) -> None:
        self.state.set_clock(clock_us)
        for incident in result.incidents:
            if self.state.apply_incident(incident_doc(incident), decided_us=clock_us):
                self.incidents += 1
        tracks = [json.loads(value) for _, _, value in self.track_feed.select(self.pipeline.take_track_reports())]
        self.state.apply_tracks(tracks)

    def run(self, stop: threading.Event) -> None:
        from borderfuse.capture.files import CaptureFormatError, read_capture

        try:
            self._run(stop, read_capture(self.capture))
        except (CaptureFormatError, OSError, ValueError) as exc:
            self.error = f"replay of {self.capture} stopped: {exc}"
            log.error("console: %s", self.error)
        finally:
            self.done.set()

    def _run(self, stop: threading.Event, records) -> None:
        started = time.monotonic()
        first_ms = None
        batch: list = []
        clock_ms = 0
        for record in records:
            if stop.is_set():
                return
            if first_ms is None:
                first_ms = record.timestamp_ms
            due_s = (record.timestamp_ms - first_ms) / 1000 / self.speed
            if due_s > time.monotonic() - started:
                if batch:
                    self._emit(self.pipeline.process_batch(batch), clock_ms * 1000)
                    self.records += len(batch)
                    batch = []
                wait = due_s - (time.monotonic() - started)
                while wait > 0 and not stop.is_set():
                    stop.wait(min(wait, TICK_S))
                    wait = due_s - (time.monotonic() - started)
                    self.state.set_clock((first_ms + int((time.monotonic() - started) * self.speed * 1000)) * 1000)
            batch.append(record)
            clock_ms = max(clock_ms, record.timestamp_ms)
        if batch:
            self._emit(self.pipeline.process_batch(batch), clock_ms * 1000)
            self.records += len(batch)
        self._emit(self.pipeline.flush(), clock_ms * 1000)
        log.info("console: replay of %s done: %d records, %d incidents", self.capture, self.records, self.incidents)
