"""borderfuse.console.app: the login, the JSON API and the push stream, served by uvicorn (no broker: the
state is fed directly). Nothing without a session; a centre sees and acts on its own sectors only; logins,
refusals and actions are audited. A malformed or unknown request gets a 4xx with a message and changes nothing."""
from __future__ import annotations

import http.client
import http.cookiejar
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from borderfuse.console.app import SESSION_COOKIE, Access, ActionSinkError, create_app
from borderfuse.console.geography import load_layers
from borderfuse.console.server import serve_in_thread
from borderfuse.console.state import ConsoleState
from borderfuse.console.users import User, UsersFileAuth, hash_password, save_users
from borderfuse.devbroker.processes import free_port
from borderfuse.ingest.audit import LogAuditWriter
from borderfuse.ingest.settings import load_settings
from test_console_state import incident

LAYERS = load_layers(load_settings().icd.geo_dir)
PASSWORD = "correct horse battery"
USERS = {"centre-S1": ["S1"], "centre-S2": ["S2"], "supervisor": ["S1", "S2", "S3", "S4"]}


@pytest.fixture(scope="module")
def users_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("users") / "console-users.toml"
    save_users(path, [User(name, hash_password(PASSWORD), sectors) for name, sectors in USERS.items()])
    return path


class FailingAudit(LogAuditWriter):
    """Records like the real writer, or fails like an unreachable broker when `down`."""

    down = False

    def write(self, what, who, **kwargs):
        if self.down:
            raise RuntimeError("audit broker unreachable")
        super().write(what, who, **kwargs)


class Client:
    """One browser's worth of HTTP: its own cookie jar; `call(path)` -> (status, JSON body)."""

    def __init__(self, base):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), NoRedirect)

    def login(self, user="supervisor", password=PASSWORD):
        return self.call("/login", "POST", {"user": user, "password": password})

    def call(self, path, method="GET", body=None, raw=None, headers=None):
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers=headers or {"Content-Type": "application/json"})
        try:
            with self.opener.open(request, timeout=10) as resp:
                return resp.status, _body(resp)
        except urllib.error.HTTPError as exc:
            return exc.code, _body(exc)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _body(resp):
    text = resp.read()
    if resp.headers.get("Content-Type", "").startswith("application/json"):
        return json.loads(text)
    return {"html": text.decode(), "location": resp.headers.get("Location")}


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
def served(users_file):
    """(base URL, state, sink, audit writer) of a console over four incidents in S1, S2, S2, S3."""
    state = ConsoleState()
    for i, sector in enumerate(["S1", "S2", "S2", "S3"]):
        state.apply_incident(incident(f"inc-{i}", sector=sector, time_us=(i + 1) * 1_000_000), decided_us=0)
    sink, audit = Sink(state), FailingAudit("console c1")
    access = Access(UsersFileAuth(users_file), audit, "k" * 64)
    app = create_app(state, LAYERS, sink, access=access, clock_us=lambda: 10_000_000, mode="test", console_id="c1")
    port = free_port()
    server, thread = serve_in_thread(app, "127.0.0.1", port)
    yield f"http://127.0.0.1:{port}", state, sink, audit
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def console(served):
    """(client logged in as the supervisor (every sector), state, sink)."""
    base, state, sink, _ = served
    client = Client(base)
    assert client.login()[0] == 200
    return client, state, sink


def call(url, method="GET", body=None, raw=None, client=None):
    """One request to a full URL with `client`'s session (a fresh, logged-out one if None)."""
    parts = urllib.parse.urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return (client or Client(f"{parts.scheme}://{parts.netloc}")).call(path, method, body, raw)


@pytest.mark.parametrize("method, path", [
    ("GET", "/api/me"), ("GET", "/api/geography"), ("GET", "/api/incidents"), ("GET", "/api/incidents/inc-1"),
    ("GET", "/api/tracks"), ("GET", "/api/events"), ("POST", "/api/incidents/inc-1/ack"), ("GET", "/api/nothing"),
])
def test_nothing_without_a_session(served, method, path):
    base, state, sink, _ = served
    status, doc = Client(base).call(path, method, {} if method == "POST" else None)
    assert status == 401 and "not logged in" in doc["error"]
    forged = Client(base)   # a cookie signed with another key is no session
    forged.opener.addheaders = [("Cookie", f"{SESSION_COOKIE}=eyJ1c2VyIjogInN1cGVydmlzb3IifQ==.x.y")]
    assert forged.call(path, method, {} if method == "POST" else None)[0] == 401
    assert sink.calls == 0 and state.status("inc-1") == "new"


def test_the_page_redirects_to_the_login_and_the_login_page_is_plain(served):
    base, _, _, _ = served
    status, page = Client(base).call("/")
    assert status == 303 and page["location"] == "/login"
    status, page = Client(base).call("/login")
    assert status == 200 and 'name="password"' in page["html"] and 'role="alert" hidden' in page["html"]


@pytest.mark.parametrize("user, password", [
    ("supervisor", "wrong password"), ("nobody", PASSWORD), ("centre-S1", ""), ("", PASSWORD),
])
def test_a_wrong_login_is_refused_the_same_way_and_audited(served, user, password):
    base, _, _, audit = served
    client = Client(base)
    status, doc = client.login(user, password)
    assert status == 401 and doc == {"error": "Wrong user name or password. Check Caps Lock and try again."}
    status, page = client.call("/login", "POST", raw=urllib.parse.urlencode({"user": user, "password": password})
                               .encode(), headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 401 and "Wrong user name or password" in page["html"] and "hidden>" not in page["html"]
    assert client.call("/api/me")[0] == 401 and not list(client.jar)
    failed = [r for r in audit.records if r["what"] == "console.login_failed"]
    assert len(failed) == 2 and failed[0]["who"] == (user or "(empty)") and failed[0]["from"] == "127.0.0.1"
    assert not [r for r in audit.records if r["what"] == "console.login"]


def test_a_login_sets_a_strict_httponly_session_and_is_audited_and_a_logout_ends_it(served):
    base, _, _, audit = served
    client = Client(base)
    request = urllib.request.Request(base + "/login", method="POST", headers={
        "Content-Type": "application/x-www-form-urlencoded"},
        data=urllib.parse.urlencode({"user": "centre-S1", "password": PASSWORD}).encode())
    try:
        client.opener.open(request, timeout=10)
        raise AssertionError("a form login answers 303 to /")
    except urllib.error.HTTPError as exc:
        assert exc.code == 303 and exc.headers["Location"] == "/"
        cookie = exc.headers["Set-Cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "password" not in cookie
    assert client.call("/api/me") == (200, {"user": "centre-S1", "sectors": ["S1"]})
    [login] = [r for r in audit.records if r["what"] == "console.login"]
    assert (login["who"], login["from"], login["sectors"], login["console"]) == ("centre-S1", "127.0.0.1", ["S1"], "c1")
    assert login["schema"] == "borderfuse.audit/1" and abs(login["when"] - time.time()) < 60
    assert client.call("/logout", "POST")[0] == 303
    assert client.call("/api/me")[0] == 401
    assert [r["who"] for r in audit.records if r["what"] == "console.logout"] == ["centre-S1"]


def test_password_guessing_is_throttled_and_audited_even_when_the_guess_is_right(served):
    base, _, _, audit = served
    client = Client(base)
    for _ in range(5):
        assert client.login("centre-S1", "a guess")[0] == 401
    status, doc = client.login("centre-S1", PASSWORD)      # right now, but not even checked
    assert status == 429 and "Too many failed logins" in doc["error"] and "15 min" in doc["error"]
    assert client.call("/api/me")[0] == 401
    assert client.login("centre-S2")[0] == 200              # another name from here: not locked
    [throttled] = [r for r in audit.records if r["what"] == "console.login_throttled"]
    assert throttled["who"] == "centre-S1" and 0 < throttled["retry_after_s"] <= 900


def test_a_login_that_cannot_be_audited_is_refused(served):
    base, _, _, audit = served
    audit.down = True
    client = Client(base)
    status, doc = client.login()
    assert status == 503 and "audit trail is unreachable" in doc["error"]
    assert client.call("/api/me")[0] == 401


def test_a_centre_sees_only_its_sectors(served):
    base, state, _, _ = served
    client = Client(base)
    assert client.login("centre-S1")[0] == 200
    state.apply_tracks([{"track_id": "trk-1", "time_us": 5, "lat": 52.3, "lon": 14.5, "class": "person",
                         "sector": "S1"},
                        {"track_id": "trk-2", "time_us": 5, "lat": 52.3, "lon": 14.6, "class": "person",
                         "sector": "S2"}])
    assert [e["incident_id"] for e in client.call("/api/incidents")[1]["incidents"]] == ["inc-0"]
    assert [t["track_id"] for t in client.call("/api/tracks")[1]["tracks"]] == ["trk-1"]
    assert client.call("/api/incidents?sector=S2")[0] == 403
    assert client.call("/api/incidents/inc-1")[0] == 403
    assert client.call("/api/incidents/inc-0")[0] == 200
    assert client.call("/api/geography")[1]["user_sectors"] == ["S1"]
    events, done = read_events(client, 3)
    wait_until_connected(events)
    state.apply_incident(incident("inc-1", sector="S2", seq=2))                       # not for S1
    state.apply_tracks([{"track_id": "trk-2", "time_us": 6, "lat": 52.3, "lon": 14.6, "class": "person",
                         "sector": "S2"},
                        {"track_id": "trk-1", "time_us": 6, "lat": 52.3, "lon": 14.5, "class": "person",
                         "sector": "S1"}])
    state.apply_incident(incident("inc-0", sector="S1", seq=2))
    assert done.wait(10), events
    snapshot, tracks, update = events
    assert [e["incident_id"] for e in snapshot["incidents"]] == ["inc-0"]
    assert [t["track_id"] for t in snapshot["tracks"]] == ["trk-1"]
    assert [t["track_id"] for t in tracks["tracks"]] == ["trk-1"] and "gone_sectors" not in tracks
    assert update["entry"]["incident_id"] == "inc-0"


def test_an_action_on_another_sectors_incident_is_refused_and_audited(served):
    base, state, sink, audit = served
    client = Client(base)
    assert client.login("centre-S1")[0] == 200
    status, doc = client.call("/api/incidents/inc-1/ack", "POST", {})
    assert status == 403 and "not in your sectors (S1)" in doc["error"]
    assert sink.calls == 0 and state.status("inc-1") == "new"
    [denied] = [r for r in audit.records if r["what"] == "console.denied"]
    assert (denied["who"], denied["incident_id"], denied["sector"], denied["request"], denied["from"]) == \
        ("centre-S1", "inc-1", "S2", "ack", "127.0.0.1")
    assert client.call("/api/incidents/inc-0/ack", "POST", {})[0] == 201
    [done] = [r for r in audit.records if r["what"] == "console.action"]
    assert (done["who"], done["incident_id"], done["action"], done["sector"]) == ("centre-S1", "inc-0", "ack", "S1")


def test_a_user_removed_from_the_users_file_is_out_at_the_next_request_and_their_stream_ends(
        served, users_file, monkeypatch):
    from borderfuse.console.users import load_users

    monkeypatch.setattr("borderfuse.console.app.KEEPALIVE_S", 0.2)
    base, _, _, _ = served
    client = Client(base)
    assert client.login("centre-S2")[0] == 200
    events, done = read_events(client, 5)
    wait_until_connected(events)
    original = users_file.read_bytes()
    try:
        save_users(users_file, [u for n, u in load_users(users_file).items() if n != "centre-S2"])
        assert client.call("/api/incidents")[0] == 401
        assert done.wait(5) and [e["kind"] for e in events] == ["snapshot"], "the open stream ended"
    finally:
        users_file.write_bytes(original)


@pytest.mark.parametrize("query, ids", [
    ("", ["inc-3", "inc-2", "inc-1", "inc-0"]),
    ("?sector=S2", ["inc-2", "inc-1"]),
    ("?sector=S1,S3", ["inc-3", "inc-0"]),
    ("?sector=S4", []),
])
def test_incidents_newest_first_per_sector(console, query, ids):
    client, _, _ = console
    status, doc = client.call("/api/incidents" + query)
    assert status == 200 and [e["incident_id"] for e in doc["incidents"]] == ids and doc["count"] == len(ids)


def test_geography_and_page(console):
    client, _, _ = console
    status, geo = client.call("/api/geography")
    assert status == 200 and geo["sector_ids"] == ["S1", "S2", "S3", "S4"] and geo["mode"] == "test"
    assert geo["user"] == "supervisor" and geo["user_sectors"] == ["S1", "S2", "S3", "S4"]
    status, page = client.call("/")
    assert status == 200 and "/static/console.js" in page["html"]
    for path in ("/static/console.js", "/vendor/leaflet.js", "/vendor/milsymbol.js", "/static/login.css"):
        with urllib.request.urlopen(client.base + path, timeout=10) as resp:
            assert resp.status == 200


def test_workflow_ack_assign_resolve(console):
    client, state, _ = console
    steps = [("ack", {}, "acknowledged"), ("assign", {"unit": "patrol 7"}, "assigned"),
             ("resolve", {"note": "two persons, handed over"}, "resolved")]
    for action, body, status_after in steps:
        status, doc = client.call(f"/api/incidents/inc-2/{action}", "POST", body)
        assert status == 201, doc
        assert doc["entry"]["status"] == status_after and doc["action"]["console"] == "c1"
        assert doc["action"]["by"] == "supervisor", "who acted is the logged-in user"
    status, doc = client.call("/api/incidents/inc-2")
    assert [a["action"] for a in doc["actions"]] == ["ack", "assign", "resolve"]
    assert doc["actions"][1]["unit"] == "patrol 7" and doc["actions"][2]["note"] == "two persons, handed over"


@pytest.mark.parametrize("path, body, raw, status, message", [
    ("/api/incidents/inc-1/ack", None, b"{not json", 400, "not JSON"),
    ("/api/incidents/inc-1/ack", {"who": "anna"}, None, 400, "unknown field"),
    ("/api/incidents/inc-1/assign", {}, None, 400, "'unit' is required"),
    ("/api/incidents/inc-1/close", {}, None, 404, "unknown action"),
    ("/api/incidents/no-such-incident/ack", {}, None, 404, "unknown incident"),
    ("/api/nothing-here", {}, None, 404, "no such API endpoint"),
])
def test_bad_requests_get_a_4xx_and_change_nothing(console, path, body, raw, status, message):
    client, state, sink = console
    before = json.dumps(state.entries(), sort_keys=True)
    got, doc = client.call(path, "POST", body, raw)
    assert got == status and message in doc["error"]
    assert json.dumps(state.entries(), sort_keys=True) == before and sink.calls == 0


@pytest.mark.parametrize("path, status, message", [
    ("/api/incidents?sector=S9", 400, "unknown sector(s) S9"),
    ("/api/incidents/no-such-incident", 404, "unknown incident"),
    ("/api/what", 404, "no such API endpoint"),
])
def test_bad_reads_get_a_4xx(console, path, status, message):
    got, doc = console[0].call(path)
    assert got == status and message in doc["error"]


def test_a_resolved_incident_takes_no_more_actions_and_a_failed_sink_records_nothing(console):
    client, state, sink = console
    assert client.call("/api/incidents/inc-0/resolve", "POST", {"note": "n"})[0] == 201
    status, doc = client.call("/api/incidents/inc-0/ack", "POST", {})
    assert status == 409 and "already resolved" in doc["error"]
    sink.down = True
    status, doc = client.call("/api/incidents/inc-1/ack", "POST", {})
    assert status == 503 and "broker unreachable" in doc["error"] and state.status("inc-1") == "new"


def session_cookie(client) -> str:
    return "; ".join(f"{c.name}={c.value}" for c in client.jar if c.name == SESSION_COOKIE)


def read_events(client, count, timeout_s=10.0):
    """The first `count` data events of /api/events with `client`'s session (a background reader, so a
    silent stream cannot hang)."""
    host, port = client.base.split("//")[1].split(":")
    events, done = [], threading.Event()

    def reader():
        conn = http.client.HTTPConnection(host, int(port), timeout=timeout_s)
        conn.request("GET", "/api/events", headers={"Cookie": session_cookie(client)})
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


def wait_until_connected(events):
    deadline = time.monotonic() + 5
    while not events and time.monotonic() < deadline:
        time.sleep(0.05)


def test_push_stream_sends_a_snapshot_then_changes_in_place(console):
    client, state, _ = console
    events, done = read_events(client, 3)
    wait_until_connected(events)
    state.apply_incident(incident("inc-1", sector="S2", seq=2, withdrawn=True))
    state.apply_tracks([{"track_id": "trk-9", "time_us": 5, "lat": 52.3, "lon": 14.5, "class": "drone",
                         "sector": "S1"}])
    assert done.wait(10), events
    snapshot, update, tracks = events
    assert snapshot["kind"] == "snapshot" and len(snapshot["incidents"]) == 4
    assert update["kind"] == "incident" and update["entry"]["incident"]["withdrawn"] and update["sent_ms"] > 0
    assert tracks["kind"] == "tracks" and tracks["tracks"][0]["track_id"] == "trk-9"
