"""borderfuse.cot: incidents and tracks as CoT XML, sent through pytak to local UDP and TCP listeners
that parse what they receive; and `borderfuse cot` end to end on the real broker."""
from __future__ import annotations

import asyncio
import json
import socket
import threading
import xml.etree.ElementTree as ET

import pytest

from borderfuse.cot.bridge import CotBridge
from borderfuse.cot.events import INCIDENT_TYPE, CotError, incident_event, track_event
from borderfuse.cot.sender import CotSendError, CotSender, check_url, send_all
from borderfuse.ingest.incident_codec import encode_incident
from borderfuse.ingest.settings import load_settings
from borderfuse.ingest.track_feed import track_topic
from test_console_state import incident

NOW_US = 1_795_000_000_000_000


def track(**extra):
    return {"track_id": "trk-7", "time_us": NOW_US - 1_000_000, "lat": 52.31, "lon": 14.56, "vx": 1.0, "vy": 0.0,
            "sigma_m": 12.5, "class": "vehicle", "sector": "S2", "sources": ["DE-R1", "PL-R1"], **extra}


def test_incident_event_is_a_cot_alarm_with_the_incident_in_its_detail():
    root = ET.fromstring(incident_event(incident(time_us=NOW_US - 5_000_000, **{"class": "person"}), NOW_US))
    assert (root.tag, root.get("version"), root.get("type")) == ("event", "2.0", INCIDENT_TYPE)
    assert root.get("uid") == "borderfuse-border_crossing-trk-1-1"
    assert root.get("time") == "2026-11-18T11:06:40.000000Z" and root.get("start") == "2026-11-18T11:06:35.000000Z"
    assert root.get("stale") == "2026-11-18T11:16:40.000000Z"
    point = root.find("point")
    assert (float(point.get("lat")), float(point.get("lon"))) == (52.3, 14.55)
    mine = root.find("detail/borderfuse")
    assert (mine.get("sector"), mine.get("severity"), mine.get("class"), mine.get("seq")) == ("S2", "high", "person", "1")
    assert root.find("detail/contact").get("callsign") == "S2 border_crossing"


@pytest.mark.parametrize("withdrawal", [{"status": "withdrawn"}, {"withdrawn": True}])
def test_an_update_keeps_the_uid_and_a_withdrawal_says_so(withdrawal):
    first = ET.fromstring(incident_event(incident(seq=1), NOW_US))
    update = ET.fromstring(incident_event(incident(seq=2, **withdrawal), NOW_US))
    assert first.get("uid") == update.get("uid")
    assert update.find("detail/borderfuse").get("withdrawn") == "true" and "withdrawn" in update.find("detail/remarks").text


@pytest.mark.parametrize("cls, cot_type", [("person", "a-u-G-U-C-I"), ("vehicle", "a-u-G-E-V-C"),
                                           ("drone", "a-u-A-M-F-Q"), ("animal", "a-u-G"), (None, "a-u-G")])
def test_track_event_types_by_class_with_course_and_speed(cls, cot_type):
    root = ET.fromstring(track_event(track(**{"class": cls}), NOW_US))
    assert root.get("type") == cot_type and root.get("uid") == "borderfuse-trk-7"
    assert (float(root.find("detail/track").get("course")), float(root.find("detail/track").get("speed"))) == (90.0, 1.0)
    assert root.find("point").get("ce") == "12.5"


@pytest.mark.parametrize("doc, message", [
    ({**incident(), "lat": 123.0}, "not a WGS84"),
    ({k: v for k, v in incident().items() if k != "lat"}, "lacks"),
    ({k: v for k, v in incident().items() if k != "time_us"}, "no time_us"),
])
def test_bad_incidents_are_refused_with_a_message(doc, message):
    with pytest.raises(CotError, match=message):
        incident_event(doc, NOW_US)


@pytest.mark.parametrize("url", ["http://tak:8080", "udp://:6969", "tcp://takserver", "239.2.3.1:6969"])
def test_bad_urls_are_refused(url):
    with pytest.raises(CotSendError, match="bad CoT URL"):
        check_url(url)


def test_udp_listener_receives_and_parses_the_events():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.settimeout(5)
        url = f"udp://127.0.0.1:{listener.getsockname()[1]}"
        events = [incident_event(incident(f"inc-{i}"), NOW_US) for i in range(3)] + [track_event(track(), NOW_US)]
        assert asyncio.run(send_all(url, events)) == 4
        got = [ET.fromstring(listener.recv(65536)) for _ in range(4)]
    assert [e.get("uid") for e in got] == ["borderfuse-inc-0", "borderfuse-inc-1", "borderfuse-inc-2", "borderfuse-trk-7"]


def _tcp_listener():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    received = bytearray()

    def accept():
        conn, _ = server.accept()
        with conn:
            conn.settimeout(5)
            while chunk := conn.recv(65536):
                received.extend(chunk)
    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    return server, thread, received


def split_events(stream: bytes) -> list[ET.Element]:
    """A TAK server's view of a TCP stream: back-to-back <event> documents."""
    return list(ET.fromstring(b"<stream>" + bytes(stream) + b"</stream>"))


def test_tcp_listener_receives_a_stream_of_events():
    server, thread, received = _tcp_listener()
    with server:
        url = f"tcp://127.0.0.1:{server.getsockname()[1]}"
        assert asyncio.run(send_all(url, [incident_event(incident(seq=s), NOW_US) for s in (1, 2)])) == 2
        thread.join(10)
    events = split_events(received)
    assert [e.find("detail/borderfuse").get("seq") for e in events] == ["1", "2"]


def test_an_unreachable_tcp_server_is_one_clear_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def go():
        async with CotSender(f"tcp://127.0.0.1:{port}"):
            pass
    with pytest.raises(CotSendError, match=f"cannot open tcp://127.0.0.1:{port}"):
        asyncio.run(go())


@pytest.mark.integration
def test_bridge_sends_committed_incidents_and_tracks_from_kafka(kafka_broker):
    from kafka import KafkaProducer

    from borderfuse.ingest.acls import provision

    prefix = "cot."
    provision(kafka_broker.settings_for("admin", load_settings(environ={"BORDERFUSE_SERVICE__TOPIC_PREFIX": prefix})))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.settimeout(10)
        bridge = CotBridge(kafka_broker.bootstrap, f"udp://127.0.0.1:{listener.getsockname()[1]}",
                           [prefix + "incidents.S2"], [prefix + track_topic("S2")],
                           security=kafka_broker.client_config("centre-S2"))  # the S2 centre's own grants
        stop = threading.Event()
        thread = threading.Thread(target=bridge.run, args=(stop,))
        thread.start()
        try:
            assert bridge.ready.wait(30)
            producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, **kafka_broker.client_config())
            producer.send(prefix + "incidents.S2", key=b"inc-k", value=encode_incident(incident("inc-k")))
            producer.send(prefix + "incidents.S2", key=b"bad", value=b"not avro")
            producer.send(prefix + track_topic("S2"), key=b"trk-7", value=json.dumps(track()).encode())
            producer.flush()
            producer.close()
            got = {ET.fromstring(listener.recv(65536)).get("uid") for _ in range(2)}
        finally:
            stop.set()
            thread.join(30)
    assert got == {"borderfuse-inc-k", "borderfuse-trk-7"}
    assert bridge.sent == {"incidents": 1, "tracks": 1} and bridge.skipped == 1


@pytest.mark.parametrize("kind, shown", [("hotlist_vehicle", True), ("border_crossing", False)])
def test_a_plate_reaches_cot_only_with_a_hotlist_hit(kind, shown):
    doc = incident(type=kind, plate="LU14958", country="PL")
    mine = ET.fromstring(incident_event(doc, NOW_US)).find("detail/borderfuse")
    assert (mine.get("plate"), mine.get("country")) == (("LU14958", "PL") if shown else (None, None))
