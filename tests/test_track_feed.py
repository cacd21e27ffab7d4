"""borderfuse.ingest.track_feed: at most one update per track per second of event time, per-sector topics."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, strategies as st

from borderfuse.fusion.types import TrackReport
from borderfuse.ingest.track_feed import TrackFeed, encode_track, track_topic


def report(track_id="trk-1", time_us=0, x=0.0):
    return TrackReport(track_id, time_us, 52.3, 14.55, x, 5_800_000.0, 1.0, 0.0, 10.0, "person", ("DE-R1",))


def by_x(x, y):
    """Sectors by easting: x < 0 is outside every sector."""
    return np.where(np.asarray(x) < 0, "", np.where(np.asarray(x) < 1000, "S1", "S2")).astype(object)


@pytest.mark.parametrize("times_s, kept_s", [
    ([0, 0.5, 0.99, 1.0, 1.5, 2.2], [0, 1.0, 2.2]),
    ([0, 2, 4], [0, 2, 4]),
    ([5, 5, 5], [5]),
])
def test_one_update_per_track_per_second_of_event_time(times_s, kept_s):
    feed = TrackFeed(by_x)
    sent = feed.select([report(time_us=int(t * 1e6)) for t in times_s])
    assert [json.loads(v)["time_us"] / 1e6 for _, _, v in sent] == kept_s


def test_throttle_is_per_track_and_across_batches():
    feed = TrackFeed(by_x)
    first = feed.select([report("a", 0), report("b", 0)])
    second = feed.select([report("a", 500_000), report("b", 1_000_000)])
    assert [k for _, k, _ in first] == [b"a", b"b"] and [k for _, k, _ in second] == [b"b"]


def test_topic_per_sector_with_prefix_and_outside_tracks_skipped():
    feed = TrackFeed(by_x, prefix="t-")
    sent = feed.select([report("a", 0, x=10.0), report("b", 0, x=5000.0), report("c", 0, x=-1.0)])
    assert [(t, k) for t, k, _ in sent] == [("t-tracks.S1", b"a"), ("t-tracks.S2", b"b")]
    assert json.loads(sent[1][2])["sector"] == "S2" and track_topic("S3") == "tracks.S3"


def test_encoded_track_carries_the_replay_fields():
    doc = json.loads(encode_track(report(time_us=1_795_000_000_000_000), "S1"))
    assert doc["track_id"] == "trk-1" and doc["class"] == "person" and doc["sources"] == ["DE-R1"]
    assert doc["time"].endswith("Z") and doc["time_us"] == 1_795_000_000_000_000 and doc["sector"] == "S1"


@given(st.lists(st.integers(0, 20_000_000), min_size=1, max_size=80))
def test_kept_updates_are_a_second_apart(times_us):
    feed = TrackFeed(by_x)
    kept = [json.loads(v)["time_us"] for _, _, v in feed.select([report(time_us=t) for t in sorted(times_us)])]
    assert all(b - a >= 1_000_000 for a, b in zip(kept, kept[1:]))
    assert kept[0] == min(times_us)


def test_select_from_a_pipeline_without_track_reports_sends_nothing():
    assert TrackFeed(by_x).select_from(object()) == []


def test_negative_interval_is_refused():
    with pytest.raises(ValueError, match="min_interval_us"):
        TrackFeed(by_x, min_interval_us=-1)
