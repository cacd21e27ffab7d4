"""borderfuse.console.app: the JSON API and the push stream, served by uvicorn (no broker: the state is
fed directly). A malformed or unknown request gets a 4xx with a message and changes nothing."""
from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
import urllib.request

import pytest

from borderfuse.console.app import ActionSinkError, create_app
from borderfuse.console.geography import load_layers
from borderfuse.console.server import serve_in_thread
from borderfuse.console.state import ConsoleState
from borderfuse.devbroker.broker import free_port
from borderfuse.ingest.settings import load_settings
from test_console_state import incident

LAYERS = load_layers(load_settings().icd.geo_dir)


class Sink:
    """Records actions into the state, or fails like an unreachable broker when `down`."""

    def __init__(self, state):
        self.state, self.down, self.calls = state, False, 0

    def __call__(self, action):
        self.calls += 1
        if self.down:
            raise ActionSinkError("broker unreachable")
        self.state.apply_action(action)


@pytest.fixture
def console():
    state = ConsoleState()
    for i, sector in enumerate(["S1", "S2", "S2", "S3"]):
        state.apply_incident(incident(f"inc-{i}", sector=sector, time_us=(i + 1) * 1_000_000), decided_us=0)
    sink = Sink(state)
    app = create_app(state, LAYERS, sink, clock_us=lambda: 10_000_000, mode="test", console_id="c1")
    port = free_port()
    server, thread = serve_in_thread(app, "127.0.0.1", port)
    yield f"http://127.0.0.1:{port}", state, sink
    server.should_exit = True
    thread.join(timeout=10)


def call(url, method="GET", body=None, raw=None):
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.parametrize("query, ids", [
    ("", ["inc-3", "inc-2", "inc-1", "inc-0"]),
    ("?sector=S2", ["inc-2", "inc-1"]),
    ("?sector=S1,S3", ["inc-3", "inc-0"]),
    ("?sector=S4", []),
])
def test_incidents_newest_first_per_sector(console, query, ids):
    base, _, _ = console
    status, doc = call(base + "/api/incidents" + query)
    assert status == 200 and [e["incident_id"] for e in doc["incidents"]] == ids and doc["count"] == len(ids)


def test_geography_and_page(console):
    base, _, _ = console
    status, geo = call(base + "/api/geography")
    assert status == 200 and geo["sector_ids"] == ["S1", "S2", "S3", "S4"] and geo["mode"] == "test"
    with urllib.request.urlopen(base + "/", timeout=10) as resp:
        assert b"/static/console.js" in resp.read()
    for path in ("/static/console.js", "/vendor/leaflet.js", "/vendor/milsymbol.js"):
        with urllib.request.urlopen(base + path, timeout=10) as resp:
            assert resp.status == 200


def test_workflow_ack_assign_resolve(console):
    base, state, _ = console
    steps = [("ack", {"by": "anna"}, "acknowledged"), ("assign", {"by": "anna", "unit": "patrol 7"}, "assigned"),
             ("resolve", {"by": "jan", "note": "two persons, handed over"}, "resolved")]
    for action, body, status_after in steps:
        status, doc = call(f"{base}/api/incidents/inc-2/{action}", "POST", body)
        assert status == 201, doc
        assert doc["entry"]["status"] == status_after and doc["action"]["console"] == "c1"
    status, doc = call(base + "/api/incidents/inc-2")
    assert [a["action"] for a in doc["actions"]] == ["ack", "assign", "resolve"]
    assert doc["actions"][1]["unit"] == "patrol 7" and doc["actions"][2]["note"] == "two persons, handed over"


@pytest.mark.parametrize("path, body, raw, status, message", [
    ("/api/incidents/inc-1/ack", None, b"{not json", 400, "not JSON"),
    ("/api/incidents/inc-1/ack", {"who": "anna"}, None, 400, "unknown field"),
    ("/api/incidents/inc-1/assign", {"by": "anna"}, None, 400, "'unit' is required"),
    ("/api/incidents/inc-1/close", {"by": "anna"}, None, 404, "unknown action"),
    ("/api/incidents/no-such-incident/ack", {"by": "anna"}, None, 404, "unknown incident"),
    ("/api/nothing-here", {"by": "anna"}, None, 404, "no such API endpoint"),
])
def test_bad_requests_get_a_4xx_and_change_nothing(console, path, body, raw, status, message):
    base, state, sink = console
    before = json.dumps(state.entries(), sort_keys=True)
    got, doc = call(base + path, "POST", body, raw)
    assert got == status and message in doc["error"]
    assert json.dumps(state.entries(), sort_keys=True) == before and sink.calls == 0


@pytest.mark.parametrize("path, status, message", [
    ("/api/incidents?sector=S9", 400, "unknown sector(s) S9"),
    ("/api/incidents/no-such-incident", 404, "unknown incident"),
    ("/api/what", 404, "no such API endpoint"),
])
def test_bad_reads_get_a_4xx(console, path, status, message):
    got, doc = call(console[0] + path)
    assert got == status and message in doc["error"]


def test_a_resolved_incident_takes_no_more_actions_and_a_failed_sink_records_nothing(console):
    base, state, sink = console
    assert call(f"{base}/api/incidents/inc-0/resolve", "POST", {"by": "a", "note": "n"})[0] == 201
    status, doc = call(f"{base}/api/incidents/inc-0/ack", "POST", {"by": "a"})
    assert status == 409 and "already resolved" in doc["error"]
    sink.down = True
    status, doc = call(f"{base}/api/incidents/inc-1/ack", "POST", {"by": "a"})
    assert status == 503 and "broker unreachable" in doc["error"] and state.status("inc-1") == "new"


def read_events(base, count, timeout_s=10.0):
    """The first `count` data events of /api/events (a background reader, so a silent stream cannot hang)."""
    host, port = base.split("//")[1].split(":")
    events, done = [], threading.Event()

    def reader():
        conn = http.client.HTTPConnection(host, int(port), timeout=timeout_s)
        conn.request("GET", "/api/events")
        resp = conn.getresponse()
        assert resp.getheader("Content-Type").startswith("text/event-stream")
        while len(events) < count:
            line = resp.readline()
            if not line:
                break
            if line.startswith(b"data: ") and json.loads(line[6:])["kind"] != "clock":
                events.append(json.loads(line[6:]))
        conn.close()
        done.set()
    threading.Thread(target=reader, daemon=True).start()
    return events, done


def test_push_stream_sends_a_snapshot_then_changes_in_place(console):
    base, state, _ = console
    events, done = read_events(base, 3)
    deadline = time.monotonic() + 5
    while not events and time.monotonic() < deadline:
        time.sleep(0.05)
    state.apply_incident(incident("inc-1", sector="S2", seq=2, withdrawn=True))
    state.apply_tracks([{"track_id": "trk-9", "time_us": 5, "lat": 52.3, "lon": 14.5, "class": "drone",
                         "sector": "S1"}])
    assert done.wait(10), events
    snapshot, update, tracks = events
    assert snapshot["kind"] == "snapshot" and len(snapshot["incidents"]) == 4
    assert update["kind"] == "incident" and update["entry"]["incident"]["withdrawn"] and update["sent_ms"] > 0
    assert tracks["kind"] == "tracks" and tracks["tracks"][0]["track_id"] == "trk-9"
