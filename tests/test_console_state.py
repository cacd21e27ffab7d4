"""borderfuse.console.state: operators' actions validated, incidents updated in place, tracks with trails."""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from borderfuse.console.state import TRAIL_POINTS, TRACK_STALE_US, Action, ActionError, ConsoleState


def incident(incident_id="border_crossing-trk-1-1", sector="S2", seq=1, time_us=1_000_000, **extra):
    return {"incident_id": incident_id, "type": "border_crossing", "sector": sector, "time": "x", "time_us": time_us,
            "lat": 52.3, "lon": 14.55, "track_id": "trk-1", "sources": ["DE-R1"], "severity": "high",
            "summary": "s", "seq": seq, **extra}


def track(track_id="trk-1", time_us=1_000_000, lat=52.3, lon=14.55):
    return {"track_id": track_id, "time_us": time_us, "lat": lat, "lon": lon, "class": "person", "sector": "S2"}


@pytest.mark.parametrize("action, body, status, message", [
    ("ack", {}, None, None),
    ("assign", {"unit": "patrol 7"}, None, None),
    ("resolve", {"note": "two persons, handed over"}, None, None),
    ("assign", {}, 400, "'unit' is required"),
    ("assign", {"unit": "  "}, 400, "'unit' is required"),
    ("assign", {"unit": 7}, 400, "must be a string"),
    ("resolve", {}, 400, "'note' is required"),
    ("ack", {"colour": "red"}, 400, "unknown field"),
    ("ack", {"by": "mallory"}, 400, "unknown field"),   # who acted is the session's user, never the body's claim
    ("ack", ["unit", "x"], 400, "must be a JSON object"),
    ("resolve", {"note": "a" * 201}, 400, "longer than 200"),
    ("delete", {}, 404, "unknown action 'delete'"),
])
def test_requests_are_validated(action, body, status, message):
    if status is None:
        made = Action.from_request("inc-1", action, body, 5, "console-a", by="anna")
        assert (made.incident_id, made.action, made.by, made.at_us, made.console) == ("inc-1", action, "anna", 5,
                                                                                      "console-a")
        assert Action.from_json_dict(made.to_json_dict()) == made
    else:
        with pytest.raises(ActionError, match=message) as info:
            Action.from_request("inc-1", action, body, 5, None, by="anna")
        assert info.value.status == status


def test_an_update_replaces_the_entry_and_an_older_seq_changes_nothing():
    state, events = ConsoleState(), []
    state.listeners.append(events.append)
    assert state.apply_incident(incident(seq=1), decided_us=2_000_000)
    assert state.apply_incident(incident(seq=2, withdrawn=True), decided_us=9_000_000)
    assert not state.apply_incident(incident(seq=1))
    assert not state.apply_incident(incident(seq=2))
    [entry] = state.entries()
    assert entry["incident"]["seq"] == 2 and entry["incident"]["withdrawn"] is True
    assert entry["decided_us"] == 2_000_000, "decided_at is when the incident was first raised"
    assert [e["entry"]["incident"]["seq"] for e in events] == [1, 2]


@pytest.mark.parametrize("extra, given, decided", [
    ({"decided_at": "1970-01-01T00:00:07.000000Z"}, 2_000_000, 7_000_000),  # incident v2's own decision time
    ({}, 2_000_000, 2_000_000),                                               # else the record's time
    ({"decided_at": "not a time"}, 2_000_000, 2_000_000),
])
def test_decided_time_prefers_the_incidents_own(extra, given, decided):
    state = ConsoleState()
    state.apply_incident(incident(**extra), decided_us=given)
    assert state.entries()[0]["decided_us"] == decided


def test_workflow_status_follows_the_actions_and_repeats_are_ignored():
    state = ConsoleState()
    state.apply_incident(incident())
    ack = Action.from_request("border_crossing-trk-1-1", "ack", {}, 10, None, by="anna")
    assert state.apply_action(ack) and not state.apply_action(ack)
    assert state.status("border_crossing-trk-1-1") == "acknowledged"
    state.apply_action(Action.from_request("border_crossing-trk-1-1", "assign", {"unit": "P7"}, 11, None, by="b"))
    assert state.status("border_crossing-trk-1-1") == "assigned"
    state.apply_action(Action.from_request("border_crossing-trk-1-1", "resolve", {"note": "ok"}, 12, None,
                                           by="b"))
    [entry] = state.entries()
    assert entry["status"] == "resolved" and [a["action"] for a in entry["actions"]] == ["ack", "assign", "resolve"]


def test_an_action_read_before_its_incident_is_kept_for_it():
    state = ConsoleState()
    state.apply_action(Action.from_request("inc-9", "ack", {}, 10, None, by="anna"))
    state.apply_incident(incident("inc-9"))
    assert state.entries()[0]["status"] == "acknowledged"


def test_entries_are_newest_first_and_filtered_by_sector():
    state = ConsoleState()
    for i, sector in enumerate(["S1", "S2", "S2", "S4"]):
        state.apply_incident(incident(f"inc-{i}", sector=sector, time_us=i * 1_000_000))
    assert [e["incident_id"] for e in state.entries()] == ["inc-3", "inc-2", "inc-1", "inc-0"]
    assert [e["incident_id"] for e in state.entries({"S2"})] == ["inc-2", "inc-1"]
    assert [e["incident_id"] for e in state.entries({"S1", "S4"})] == ["inc-3", "inc-0"]


@given(st.lists(st.integers(1, 50), min_size=1, max_size=60))
def test_the_entry_keeps_the_highest_seq_in_any_order(seqs):
    state = ConsoleState()
    for seq in seqs:
        state.apply_incident(incident(seq=seq))
    assert state.entries()[0]["incident"]["seq"] == max(seqs)


def test_tracks_keep_a_short_trail_and_stale_tracks_go():
    state, events = ConsoleState(), []
    state.listeners.append(events.append)
    for i in range(TRAIL_POINTS + 5):
        state.apply_tracks([track(time_us=i * 1_000_000, lat=52.3 + i * 1e-4)])
    assert len(state.tracks["trk-1"]["trail"]) == TRAIL_POINTS
    assert state.tracks["trk-1"]["trail"][-1][0] == pytest.approx(52.3 + (TRAIL_POINTS + 4) * 1e-4)
    state.apply_tracks([track("trk-2", time_us=(TRAIL_POINTS + 4) * 1_000_000 + TRACK_STALE_US + 1)])
    assert set(state.tracks) == {"trk-2"} and events[-1]["gone"] == ["trk-1"]
    assert events[-1]["gone_sectors"] == {"trk-1": "S2"}


def test_views_by_sector_and_an_incidents_sector():
    state = ConsoleState()
    state.apply_incident(incident("inc-1", sector="S1"))
    state.apply_incident(incident("inc-2", sector="S2"))
    state.apply_tracks([track("trk-1"), {**track("trk-9"), "sector": "S1"}])
    snapshot = state.snapshot({"S1"})
    assert [e["incident_id"] for e in snapshot["incidents"]] == ["inc-1"]
    assert [t["track_id"] for t in snapshot["tracks"]] == ["trk-9"]
    assert len(state.snapshot()["tracks"]) == 2
    assert (state.sector_of("inc-2"), state.sector_of("nope")) == ("S2", None)
    assert state.entry("inc-2")["incident"]["sector"] == "S2"
