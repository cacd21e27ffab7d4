"""ICD topic list (from the sectors file, never hard-coded) and idempotent creation on a real broker."""
from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from borderfuse.ingest.settings import DEFAULT_GEO_DIR
from borderfuse.ingest.topics import (
    HOTLIST_TOPIC, INPUT_TOPICS, TopicSpec, TopicsError, dlq_topic, ensure_topics, icd_topics, list_topics,
    sector_topics,
)


def _geo_dir(tmp_path: Path, features: list[dict]) -> Path:
    geo = tmp_path / "geo"
    geo.mkdir()
    (geo / "sectors.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return geo


def _sector(props: dict) -> dict:
    square = [[[14.5, 52.3], [14.6, 52.3], [14.6, 52.4], [14.5, 52.3]]]
    return {"type": "Feature", "properties": props, "geometry": {"type": "Polygon", "coordinates": square}}


def test_input_topics_and_dlq_names_follow_the_icd():
    assert len(INPUT_TOPICS) == len(set(INPUT_TOPICS)) == 8
    assert dlq_topic("pl.radar.plots") == "pl.radar.plots.dlq"
    assert HOTLIST_TOPIC == "shared.hotlist"


def test_sector_topics_come_from_the_sectors_file(tmp_path):
    geo = _geo_dir(tmp_path, [_sector({"id": "ZULU9", "topic": "incidents.zulu-nine"}), _sector({"id": "Q1"})])
    assert sector_topics(geo) == {"ZULU9": "incidents.zulu-nine", "Q1": "incidents.Q1"}
    names = [spec.name for spec in icd_topics(geo)]
    assert names.count("incidents.zulu-nine") == names.count("incidents.Q1") == 1
    assert "incidents.S1" not in names
    assert set(names) == {*INPUT_TOPICS, *map(dlq_topic, INPUT_TOPICS), HOTLIST_TOPIC, dlq_topic(HOTLIST_TOPIC),
                          "incidents.zulu-nine", "incidents.Q1", "tracks.ZULU9", "tracks.Q1", "actions.ZULU9",
                          "actions.Q1"}


def test_default_geography_gives_the_four_icd_sectors():
    assert sorted(sector_topics(DEFAULT_GEO_DIR).values()) == [f"incidents.S{i}" for i in range(1, 5)]


@pytest.mark.parametrize("partitions, prefix", [(1, ""), (3, "t-")])
def test_specs_partitions_prefix_and_compacted_hotlist(partitions, prefix):
    specs = {s.name: s for s in icd_topics(DEFAULT_GEO_DIR, partitions=partitions, prefix=prefix)}
    assert len(specs) == 8 + 9 + 1 + 4 + 4 + 4  # inputs, their and the hotlist's dlq, hotlist, incidents, tracks, actions
    assert all(name.startswith(prefix) and s.partitions == partitions for name, s in specs.items())
    assert dict(specs[prefix + HOTLIST_TOPIC].configs) == {"cleanup.policy": "compact"}
    assert all("retention.ms" in dict(specs[f"{prefix}tracks.S{i}"].configs) for i in range(1, 5))
    assert all(not s.configs for name, s in specs.items()
               if name != prefix + HOTLIST_TOPIC and not name.startswith(prefix + "tracks."))


@pytest.mark.parametrize("content, message", [
    (None, "does not exist"),
    ("{not json", "is not a GeoJSON FeatureCollection"),
    (json.dumps({"features": [_sector({"name": "no id"})]}), "feature 0 has no string properties.id"),
])
def test_bad_sectors_file_names_the_file(tmp_path, content, message):
    if content is not None:
        (tmp_path / "sectors.geojson").write_text(content)
    with pytest.raises(TopicsError, match=message) as info:
        sector_topics(tmp_path)
    assert str(tmp_path / "sectors.geojson") in str(info.value)


def test_zero_partitions_is_rejected():
    with pytest.raises(ValueError, match="partitions must be >= 1"):
        TopicSpec("x", partitions=0)


@pytest.mark.integration
def test_ensure_topics_is_idempotent_and_creates_what_the_file_says(kafka_broker, tmp_path):
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType

    prefix = f"topics-{uuid.uuid4().hex[:8]}-"
    geo = _geo_dir(tmp_path, [_sector({"id": "ZULU9", "topic": "incidents.zulu-nine"})])
    specs = icd_topics(geo, partitions=2, prefix=prefix)
    security = kafka_broker.client_config()
    created = ensure_topics(kafka_broker.bootstrap, specs, security=security)
    assert sorted(created) == sorted(s.name for s in specs)
    assert ensure_topics(kafka_broker.bootstrap, specs, security=security) == []
    on_broker = set(list_topics(kafka_broker.bootstrap, security=security))
    assert {s.name for s in specs} <= on_broker and f"{prefix}incidents.zulu-nine" in on_broker
    admin = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap, **security)
    try:
        described = admin.describe_topics([f"{prefix}{HOTLIST_TOPIC}"])
        assert len(described[0]["partitions"]) == 2
        result = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, f"{prefix}{HOTLIST_TOPIC}",
                                                        ["cleanup.policy"])])
        assert result["topic"][f"{prefix}{HOTLIST_TOPIC}"]["cleanup.policy"]["value"] == "compact"
    finally:
        admin.close()


def test_unreachable_broker_is_one_clear_error():
    with pytest.raises(TopicsError, match="cannot reach Kafka at 127.0.0.1:1"):
        ensure_topics("127.0.0.1:1", [TopicSpec("x")], timeout_s=1.0)


@pytest.mark.integration
def test_topics_create_makes_topics_and_acls_idempotently_as_admin_only(kafka_broker, monkeypatch, capsys):
    from borderfuse.ingest.cli import main

    prefix = f"cli-{uuid.uuid4().hex[:6]}-"
    for key, value in {**kafka_broker.env(), "BORDERFUSE_SERVICE__TOPIC_PREFIX": prefix}.items():
        monkeypatch.setenv(key, value)
    assert main(["topics", "create"]) == 0
    first = capsys.readouterr().out
    assert "topics on" in first and "0 created" not in first.splitlines()[0]
    assert main(["topics", "create"]) == 0
    again = capsys.readouterr().out.splitlines()
    assert again[0].startswith(f"topics on {kafka_broker.bootstrap}: 0 created")
    assert again[1].startswith(f"ACLs on {kafka_broker.bootstrap}: 0 created")
    # the service's principal sees its own topics but may not create any
    assert main(["topics", "list", "--principal", "borderfuse"]) == 0
    visible = set(capsys.readouterr().out.split())
    assert f"{prefix}borderfuse.state" in visible and f"{prefix}incidents.S1" in visible
    assert f"{prefix}borderfuse.audit" in visible and f"{prefix}de.radar.tracks.dlq" in visible
    with pytest.raises(TopicsError, match="not allowed for this principal"):
        ensure_topics(kafka_broker.bootstrap, [TopicSpec(f"{prefix}new.topic")],
                      security=kafka_broker.client_config("borderfuse"))
