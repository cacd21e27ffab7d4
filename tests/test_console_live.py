"""The console live on the real, authenticated broker (SASL/SCRAM, ACLs): the sample published, the service
running, two consoles (each sector read as its centre's principal) and two headless browsers logged in
through the login page. Every incident is on the map and in the list, S2 filters to S2, an acknowledgement
made in one browser shows in the other within 2 s and lands on actions.S2, a restarted console still has it
(and the session), a centre-S1 user sees only S1 and is refused (403) on S2; logins, actions and refusals
are on borderfuse.audit, read as ops; and a console survives a broker restart and catches up."""
from __future__ import annotations

import gc
import json
import logging
import threading
import time

import attrs
import pytest

from borderfuse.capture.files import read_capture
from borderfuse.capture.publish import publish_records
from borderfuse.console.server import start_console
from borderfuse.devbroker.processes import free_port
from borderfuse.ingest import incident_feed as feed
from borderfuse.ingest.acls import provision
from borderfuse.ingest.audit import AUDIT_TOPIC
from borderfuse.ingest.incident_codec import encode_incident
from borderfuse.ingest.service import FusionService
from borderfuse.ingest.settings import load_settings
from borderfuse.ingest.track_feed import actions_topic, track_topic
from test_console_app import Client
from test_console_browser import (PASSWORD, browsers, check_page_shows, get_json, log_in, page_view,  # noqa: F401
                                  screenshot, users_env, wait_for)
from test_console_state import incident

pytestmark = [pytest.mark.integration, pytest.mark.slow]
USERS = {"supervisor": ["S1", "S2", "S3", "S4"], "centre-S1": ["S1"]}


def live_settings(broker, prefix: str, folder, principal: str = "centre-S2"):
    """Settings for this broker as `principal` (a console writes the audit trail as its kafka.username),
    with the topic prefix, a group of its own and a users file in `folder`."""
    env = {"BORDERFUSE_KAFKA__GROUP_ID": f"{prefix}group", "BORDERFUSE_SERVICE__TOPIC_PREFIX": prefix,
           **users_env(folder, USERS)}
    settings = broker.settings_for(principal, load_settings(environ=env))
    provision(broker.settings_for("admin", settings), broker.bootstrap)   # topics and ACLs, as admin
    return settings


def logged_in(console, user: str = "supervisor") -> Client:
    client = Client(console.url.rstrip("/"))
    assert client.login(user, PASSWORD)[0] == 200
    return client


def caught_up(console, timeout_s: float = 60.0) -> None:
    assert console.feed.caught_up.wait(timeout_s), "the console did not read its topics to the end"


def click_ack(driver, incident_id: str) -> None:
    driver.execute_script("""document.querySelector(`li.incident[data-id="${arguments[0]}"] button[data-act=ack]`)
                             .click();""", incident_id)


def status_in(driver, incident_id: str) -> str | None:
    return driver.execute_script("""const li = document.querySelector(`li.incident[data-id="${arguments[0]}"]`);
                                    return li ? li.dataset.status : null;""", incident_id)


def test_two_consoles_share_an_ack_within_2_s_and_a_restart_keeps_it(kafka_broker, sample_capture, browsers,
                                                                      tmp_path):
    prefix = "console."
    settings = live_settings(kafka_broker, prefix, tmp_path)
    admin = kafka_broker.client_config("admin")
    service = FusionService(attrs.evolve(settings, kafka=attrs.evolve(settings.kafka, username="borderfuse")))
    service.check_broker()
    records = [attrs.evolve(r, topic=prefix + r.topic) for r in read_capture(sample_capture)]
    total = publish_records(kafka_broker.bootstrap, records, security=admin).records
    port_a, port_b = free_port(), free_port()
    console_a = start_console(settings, port=port_a, console_id="centre-A")
    console_b = start_console(settings, port=port_b, console_id="centre-B")
    stop = threading.Event()
    thread = threading.Thread(target=service.run, args=(stop,))
    thread.start()
    try:
        wait_for(lambda: feed.committed_total(kafka_broker.bootstrap, settings.kafka.group_id, security=admin)
                 >= total, 300, "the service to commit the whole sample", poll_s=0.5)
    finally:
        stop.set()
        thread.join(60)
    try:
        published = feed.read_incidents(kafka_broker.bootstrap, service.sector_topic.values(), security=admin)
        expected = {d["incident_id"]: d["sector"] for d in published}
        assert len(expected) >= 5
        base_a, base_b = console_a.url.rstrip("/"), console_b.url.rstrip("/")
        api_a, api_b = logged_in(console_a), logged_in(console_b)
        for api in (api_a, api_b):
            wait_for(lambda: {e["incident_id"] for e in get_json(api.base + "/api/incidents", api)["incidents"]}
                     == set(expected), 20, f"{api.base} to list every published incident")
        tracks = feed.read_topics(kafka_broker.bootstrap, [prefix + track_topic(s) for s in service.sector_topic],
                                  security=admin)
        per_track: dict[str, list[int]] = {}
        for record in tracks:
            per_track.setdefault(record.key.decode(), []).append(json.loads(record.value)["time_us"])
        spacing = [b - a for t in per_track.values() for a, b in zip(sorted(t), sorted(t)[1:])]
        assert tracks and min(spacing) >= 1_000_000, \
            "tracks.<sector>: at most one update per track per second of event time"
        assert get_json(base_a + "/api/tracks", api_a)["tracks"], "the console shows the last minute's tracks"

        # a centre sees its own sector only, and may not act on another's
        centre = logged_in(console_a, "centre-S1")
        s1 = {i for i, s in expected.items() if s == "S1"}
        assert {e["incident_id"] for e in get_json(base_a + "/api/incidents", centre)["incidents"]} == s1
        assert {t["sector"] for t in get_json(base_a + "/api/tracks", centre)["tracks"]} <= {"S1"}
        target = sorted(i for i, s in expected.items() if s == "S2")[0]
        assert centre.call(f"/api/incidents/{target}/ack", "POST", {})[0] == 403
        assert Client(base_a).login("centre-S1", "not the password")[0] == 401

        browser_a, browser_b = browsers(), browsers()
        log_in(browser_a, console_a.url)
        check_page_shows(browser_a, expected)
        log_in(browser_b, console_b.url)
        wait_for(lambda: len(page_view(browser_b)["listed"]) == len(expected), 20, "the second browser's list")
        assert status_in(browser_b, target) == "new"
        clicked = time.monotonic()
        click_ack(browser_a, target)
        wait_for(lambda: status_in(browser_b, target) == "acknowledged", 10, "the ack in the other browser",
                 poll_s=0.02)
        seen_after_s = time.monotonic() - clicked
        print(f"ack in browser A -> shown in browser B: {seen_after_s * 1000:.0f} ms")
        assert seen_after_s < 2.0
        time.sleep(0.3)
        screenshot(browser_a, "console-live-a.png")
        screenshot(browser_b, "console-live-b.png")

        # a new high-severity incident beeps (once), its update changes the entry in place
        from kafka import KafkaProducer
        alarms = browser_a.execute_script("return window.__console.alarms")
        producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, **admin)
        fresh = incident("border_crossing-trk-999999-1", sector="S2", time_us=time.time_ns() // 1000)
        producer.send(prefix + "incidents.S2", key=fresh["incident_id"].encode(), value=encode_incident(fresh))
        producer.flush()
        wait_for(lambda: len(page_view(browser_a)["listed"]) == len(expected) + 1, 10, "the new incident")
        producer.send(prefix + "incidents.S2", key=fresh["incident_id"].encode(),
                      value=encode_incident({**fresh, "seq": 2, "summary": "updated"}))
        producer.flush()
        producer.close()
        wait_for(lambda: "updated" in browser_a.execute_script(
            """return document.querySelector(`li.incident[data-id="${arguments[0]}"]`).textContent""",
            fresh["incident_id"]), 10, "the update in place")
        assert len(page_view(browser_a)["listed"]) == len(expected) + 1
        assert browser_a.execute_script("return window.__console.alarms") == alarms + 1
        expected[fresh["incident_id"]] = "S2"

        # bad input on the real broker: 4xx, nothing recorded
        assert api_a.call(f"/api/incidents/{target}/assign", "POST", raw=b"{oops")[0] == 400
        assert api_a.call("/api/incidents/no-such-incident/ack", "POST", {})[0] == 404

        console_a.stop()
        console_a = start_console(settings, port=port_a, console_id="centre-A")
        caught_up(console_a)
        entry = get_json(f"{base_a}/api/incidents/{target}", api_a)   # the session outlives the restart
        assert entry["status"] == "acknowledged" and entry["actions"][0]["console"] == "centre-A"
        assert entry["actions"][0]["by"] == "supervisor"
        browser_a.refresh()
        wait_for(lambda: status_in(browser_a, target) == "acknowledged", 20, "the ack after the console restart")
        actions = feed.read_topics(kafka_broker.bootstrap, [prefix + actions_topic(s) for s in service.sector_topic],
                                   security=admin)
        assert [(r.topic, r.key.decode(), json.loads(r.value)["action"]) for r in actions] == \
            [(prefix + "actions.S2", target, "ack")]

        audit = [json.loads(r.value) for r in feed.read_topics(kafka_broker.bootstrap, [prefix + AUDIT_TOPIC],
                                                                security=kafka_broker.client_config("ops"))]
        seen = {(a["what"], a["who"]) for a in audit}
        assert {("service.start", "borderfuse"), ("console.login", "supervisor"), ("console.login", "centre-S1"),
                ("console.login_failed", "centre-S1"), ("console.denied", "centre-S1"),
                ("console.action", "supervisor")} <= seen, seen
        [action] = [a for a in audit if a["what"] == "console.action"]
        assert (action["incident_id"], action["action"], action["sector"], action["from"], action["console"]) == \
            (target, "ack", "S2", "127.0.0.1", "centre-A")
        print(f"audit records on {prefix}{AUDIT_TOPIC}: {len(audit)} ({', '.join(sorted({a['what'] for a in audit}))})")
    finally:
        console_a.stop()
        console_b.stop()


# kafka-python 3.0.12 leaks a socket per refused connect (see ingest/kafka_probe.py); the console probes
# first and closes its clients when the broker goes, but a connect in flight at that moment may still leak.
@pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning")
def test_console_survives_a_broker_restart_and_catches_up(kafka_broker_factory, tmp_path, caplog):
    from kafka import KafkaProducer

    # pytest keeps log records to the end of the session, and kafka-python's errors carry exceptions whose
    # frames hold the sockets it leaks while the broker is down: without those records they are freed here
    caplog.set_level(logging.CRITICAL, logger="kafka")
    broker = kafka_broker_factory()
    settings = live_settings(broker, "", tmp_path)
    console = start_console(settings, port=free_port(), sectors=["S1"])
    api = logged_in(console)
    base = console.url.rstrip("/")

    def produce(ids):
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, **broker.client_config("admin"))
        for incident_id in ids:
            producer.send("incidents.S1", key=incident_id.encode(),
                          value=encode_incident(incident(incident_id, sector="S1", time_us=time.time_ns() // 1000)))
        producer.flush()
        producer.close()

    try:
        caught_up(console)
        produce(["inc-1", "inc-2"])
        wait_for(lambda: get_json(base + "/api/incidents", api)["count"] == 2, 20, "the first incidents")
        broker.stop()
        status, doc = api.call("/api/incidents/inc-1/ack", "POST", {})
        assert status == 503 and "not recorded" in doc["error"]
        assert get_json(base + "/api/incidents/inc-1", api)["status"] == "new"
        broker.start()
        produce(["inc-3"])
        wait_for(lambda: get_json(base + "/api/incidents", api)["count"] == 3, 60, "the console to catch up",
                 poll_s=0.5)
        assert api.call("/api/incidents/inc-1/ack", "POST", {})[0] == 201
    finally:
        console.stop()
        gc.collect()   # leaked sockets are reported here, under this test's filter
