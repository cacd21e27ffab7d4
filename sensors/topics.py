"""The ICD's topic names, in one place: the eight input feeds, the hotlist and the dead-letter naming.

The pipeline and the decoders take topic names from here (the ICD layer); the Kafka adapter
(`borderfuse.ingest.topics`) builds its topic specs from the same names.
"""
from __future__ import annotations

PL_INPUT_TOPICS = ("pl.radar.plots", "pl.camera.detections", "pl.uav.detections", "pl.anpr.reads")
DE_INPUT_TOPICS = ("de.radar.tracks", "de.camera.detections", "de.uav.detections", "de.anpr.reads")
INPUT_TOPICS = PL_INPUT_TOPICS + DE_INPUT_TOPICS
HOTLIST_TOPIC = "shared.hotlist"
DLQ_SUFFIX = ".dlq"
INCIDENT_TOPIC_PREFIX = "incidents."


def dlq_topic(topic: str) -> str:
    """The dead-letter topic of an input topic (ICD: `<input topic>.dlq`)."""
    return f"{topic}{DLQ_SUFFIX}"
