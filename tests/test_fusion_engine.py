"""FusionEngine on synthetic observations in the real ICD geography: each incident rule end to end."""
from __future__ import annotations

import collections
import random

import attrs
import numpy as np
import pytest
from shapely.geometry import LineString

from borderfuse.fusion.engine import FusionEngine, HotlistItem
from borderfuse.fusion.reorder import ReorderBuffer
from borderfuse.fusion.rules import load_rules
from borderfuse.geo.geography import Geography
from borderfuse.ingest.settings import DEFAULT_GEO_DIR
from borderfuse.sensors.base import Observation
from borderfuse.sensors.hotlist import HotlistEntry, HotlistUpdate

GEO = Geography.load(DEFAULT_GEO_DIR)
RULES = load_rules()
T0 = 1_795_298_400_000_000


def border_x(lat: float) -> tuple[float, float]:
    """(x, y) in the shared frame where the border crosses the parallel `lat` (near lon 14.55)."""
    _, y = GEO.to_shared(14.55, lat)
    y = float(np.atleast_1d(y)[0])
    b = GEO.border.bounds
    hit = GEO.border.intersection(LineString([(b[0] - 1e4, y), (b[2] + 1e4, y)]))
    return (hit.geoms[0].x if hasattr(hit, "geoms") else hit.x), y


def ob(t_s, sensor, x, y, *, sigma=None, cls=None, conf=0.8, local_id=None, status=None, **kw) -> Observation:
    info = GEO.sensors[sensor]
    sigma = sigma or {"radar": 15.0, "camera": 20.0, "uav": 8.0, "anpr": 5.0}[info.kind]
    return Observation(time_us=T0 + int(round(t_s * 1e6)), side=info.side, sensor_id=sensor, sensor_kind=info.kind,
                       xy=(x, y), cov=np.eye(2) * sigma ** 2, cls=cls, confidence=conf if cls else None,
                       local_id=local_id, status=status, topic=info.topic, **kw)


def walk(start, velocity, t0, duration, sensors, *, cls=None, cls_from=-1e9, seed=0, wander=None):
    """Observations of one target from each (sensor, period) in `sensors`, with measurement noise."""
    rng = np.random.default_rng(seed)
    out = []
    for sensor, period in sensors:
        kind = GEO.sensors[sensor].kind
        for t in np.arange(t0, t0 + duration, period):
            x = start[0] + velocity[0] * (t - t0)
            y = start[1] + velocity[1] * (t - t0)
            if wander is not None:
                x += wander * np.sin(t / 37.0)
                y += wander * np.cos(t / 53.0)
            nx, ny = rng.normal(0, 10, 2)
            c = cls if (kind in ("camera", "uav") and t >= cls_from) else None
            lid = f"{sensor}-obj" if kind == "camera" else ("R7" if sensor.startswith("DE-R") else None)
            out.append(ob(float(t), sensor, x + nx, y + ny, cls=c, local_id=lid,
                          status="confirmed" if sensor.startswith("DE-R") else None))
    return out


def run(observations, rules=RULES, extra=()):
    engine = FusionEngine(GEO, rules)
    items = sorted(list(observations) + list(extra), key=lambda o: (o.time_us, getattr(o, "sensor_id", "")))
    incidents = engine.process(items, items[-1].time_us + 60_000_000) + engine.flush()
    return engine, incidents


def crossing_walk(lat, cls, *, speed=1.5, cls_from=-1e9, sensors=None, seed=0):
    bx, by = border_x(lat)
    sensors = sensors or [("DE-R1", 1.0), ("PL-R1", 2.0), ("DE-C1", 1.0), ("PL-C1", 1.0)]
    return walk((bx - 300, by), (speed, 0.0), 0.0, 2 * 300 / speed, sensors, cls=cls, cls_from=cls_from, seed=seed), (bx, by)


@pytest.mark.parametrize("cls, expected", [("person", ["border_crossing"]), ("vehicle", ["border_crossing"]),
                                           (None, ["border_crossing"]), ("animal", []), ("drone", ["drone_crossing"])])
def test_crossing_outside_crossing_points_by_class(cls, expected):
    obs, (bx, by) = crossing_walk(52.27, cls)
    engine, incidents = run(obs)
    assert [i.type for i in incidents] == expected
    for inc in incidents:
        x, y = GEO.to_shared(inc.lon, inc.lat)
        assert np.hypot(float(np.atleast_1d(x)[0]) - bx, float(np.atleast_1d(y)[0]) - by) < 40
        assert abs(inc.time_us - (T0 + 200_000_000)) < 5_000_000   # 300 m at 1.5 m/s
        assert inc.sector == "S1"
        assert {s[:3] for s in inc.sources} == {"DE-", "PL-"}
        assert inc.cls == (cls or "unknown")


@pytest.mark.parametrize("hinted, expected", [
    (True, ["border_crossing"]),   # its own camera and radar track ids show it across: decided now
    (False, []),                   # observations without a local id: nothing to look ahead on
])
def test_look_ahead_decides_a_crossing_on_observations_still_held(hinted, expected):
    obs, (bx, by) = crossing_walk(52.27, "vehicle", speed=10.0)   # crosses at 30 s
    engine = FusionEngine(GEO, RULES)
    watermark = T0 + 28_000_000
    done = sorted((o for o in obs if o.time_us <= watermark), key=lambda o: (o.time_us, o.sensor_id))
    held = sorted((o for o in obs if watermark < o.time_us <= watermark + 6_000_000),
                  key=lambda o: (o.time_us, o.sensor_id))
    if not hinted:
        held = [attrs.evolve(o, local_id=None) for o in held]
    assert engine.process(done, watermark) == []
    early = engine.look_ahead(held)
    assert [i.type for i in early] == expected
    if early:
        assert abs(early[0].time_us - (T0 + 30_000_000)) < 3_000_000
    assert engine.look_ahead(held) == []        # decided once
    rest = sorted((o for o in obs if o.time_us > watermark), key=lambda o: (o.time_us, o.sensor_id))
    later = engine.process(rest, rest[-1].time_us + 60_000_000) + engine.flush()
    # the tracker's own crossing of the track is the same event; without the look-ahead it comes now
    assert [i.type for i in early + later] == ["border_crossing"]


def test_animal_classified_only_after_the_crossing_raises_nothing():
    obs, _ = crossing_walk(52.27, "animal", cls_from=205.0)   # cameras classify 5 s after the crossing
    _, incidents = run(obs)
    assert incidents == []


@pytest.mark.parametrize("cls, expected", [("vehicle", []), ("person", []), ("drone", ["drone_crossing"])])
def test_crossing_inside_a_crossing_point_is_lawful_except_for_drones(cls, expected):
    obs, _ = crossing_walk(52.30, cls, speed=10.0)   # BCP-A12 spans 52.299..52.301
    _, incidents = run(obs)
    assert [i.type for i in incidents] == expected


def test_target_handed_over_across_the_border_is_one_track():
    bx, by = border_x(52.27)
    de = walk((bx - 400, by), (1.5, 0.0), 0.0, 300.0, [("DE-R1", 1.0), ("DE-C1", 1.0)], cls="person", seed=1)
    pl = walk((bx - 400 + 1.5 * 250, by), (1.5, 0.0), 250.0, 300.0, [("PL-R1", 2.0), ("PL-C1", 1.0)],
              cls="person", seed=2)
    engine, incidents = run(de + pl)
    assert [i.type for i in incidents] == ["border_crossing"]
    assert engine.tracker.confirmed_total == 1
    assert {s[:3] for s in incidents[0].sources} == {"DE-", "PL-"}


def test_pl_clutter_and_de_false_tracks_are_not_confirmed():
    rng = np.random.default_rng(5)
    site = GEO.sensors["PL-R1"]
    clutter = []
    for scan in range(120):
        for _ in range(3):
            r, a = rng.uniform(200, 12000), rng.uniform(0, 2 * np.pi)
            clutter.append(ob(scan * 2.0 + rng.uniform(0, 2), "PL-R1", site.x + r * np.sin(a), site.y + r * np.cos(a),
                              sigma=40.0))
    de = GEO.sensors["DE-R1"]
    false_tracks = [ob(100 + k, "DE-R1", de.x + 3000 + 2 * k, de.y + 500, local_id="T0266", status="tentative")
                    for k in range(10)]
    engine, incidents = run(clutter + false_tracks)
    assert incidents == []
    assert engine.tracker.confirmed_total == 0


def _hotlist(country, plate, present=True):
    entry = HotlistEntry(plate, "stolen vehicle", "SIS", T0) if present else None
    return HotlistItem(T0 - 1, HotlistUpdate(f"{country}:{plate}", country, plate, entry))


def _read(t_s, sensor, plate="LU14958", country="PL", direction="DE->PL"):
    s = GEO.sensors[sensor]
    return ob(t_s, sensor, s.x, s.y, cls="vehicle", plate=plate, country=country, direction=direction)


def test_hotlist_one_incident_per_passage_read_on_both_sides():
    reads = [_read(10, "DE-ANPR-STADT-W"), _read(100, "PL-ANPR-STADT-E")]
    _, incidents = run(reads, extra=[_hotlist("PL", "LU14958")])
    assert [(i.type, i.seq) for i in incidents] == [("hotlist_vehicle", 1), ("hotlist_vehicle", 2)]
    assert len({i.incident_id for i in incidents}) == 1
    assert incidents[-1].sources == ("DE-ANPR-STADT-W", "PL-ANPR-STADT-E")
    assert incidents[0].sector == "S3"


@pytest.mark.parametrize("reads_country, listed, expected", [("PL", True, 1), ("CZ", True, 0), ("PL", False, 0)])
def test_hotlist_matches_plate_and_country_only_while_listed(reads_country, listed, expected):
    extra = [_hotlist("PL", "LU14958")]
    if not listed:
        extra.append(HotlistItem(T0, HotlistUpdate("PL:LU14958", "PL", "LU14958", None)))  # deletion by null
    _, incidents = run([_read(10, "DE-ANPR-A12-W", country=reads_country)], extra=extra)
    assert len(incidents) == expected


def test_hotlist_return_trip_is_a_new_passage():
    reads = [_read(10, "DE-ANPR-STADT-W"), _read(60, "PL-ANPR-STADT-E"),
             _read(400, "PL-ANPR-STADT-E", direction="PL->DE")]
    _, incidents = run(reads, extra=[_hotlist("PL", "LU14958")])
    assert len({i.incident_id for i in incidents}) == 2


def _dwell_sensors():
    return [("DE-R1", 1.0), ("PL-R1", 2.0), ("DE-C1", 1.0)]


@pytest.mark.parametrize("velocity, wander, cls, expected", [
    ((0.0, 0.0), 60.0, "person", ["loitering"]),     # lingering in a 60 m circle
    ((0.0, 0.0), 60.0, None, ["loitering"]),         # radar-only: unknown class counts
    ((0.0, 1.2), 0.0, "person", []),                 # walking along the border: 480 m in 400 s
    ((0.0, 0.95), 0.0, "person", []),                # slow walker: 285 m in 300 s fits a 150 m circle
    ((0.0, 0.0), 60.0, "animal", []),
    ((0.0, 0.0), 60.0, "vehicle", []),
])
def test_loitering_vs_walking_through(velocity, wander, cls, expected):
    bx, by = border_x(52.265)
    obs = walk((bx - 150, by), velocity, 0.0, 420.0, _dwell_sensors(), cls=cls, wander=wander, seed=3)
    _, incidents = run(obs)
    assert [i.type for i in incidents] == expected
    if expected:
        assert abs(incidents[0].time_us - (T0 + 300_000_000)) < 10_000_000


@pytest.mark.parametrize("sample_s", [2.0, 40.0])
def test_loitering_is_decided_when_the_dwell_completes_not_at_the_next_sample(sample_s):
    # samples every 40 s: the dwell completes 300 s after the first one, between two samples (the next
    # sample would come 20 s later); any update in between decides it
    rules = attrs.evolve(RULES, loitering=attrs.evolve(RULES.loitering, sample_s=sample_s, max_gap_s=60.0))
    bx, by = border_x(52.265)
    obs = walk((bx - 150, by), (0.0, 0.0), 0.0, 420.0, _dwell_sensors(), cls="person", wander=20.0, seed=3)
    _, incidents = run(obs, rules)
    assert [i.type for i in incidents] == ["loitering"]
    assert 300.0 <= (incidents[0].time_us - T0) / 1e6 <= 306.0


@pytest.mark.parametrize("hinted, enabled, expected", [
    (True, True, ["loitering"]),    # its camera and radar track ids complete the 300 s: decided now
    (False, True, []),              # observations without a local id: nothing to look ahead on
    (True, False, []),              # the rule switched off: no look-ahead either
])
def test_look_ahead_decides_a_dwell_on_observations_still_held(hinted, enabled, expected):
    rules = attrs.evolve(RULES, loitering=attrs.evolve(RULES.loitering, enabled=enabled))
    bx, by = border_x(52.265)
    obs = walk((bx - 150, by), (0.0, 0.0), 0.0, 420.0, _dwell_sensors(), cls="person", wander=20.0, seed=3)
    obs.sort(key=lambda o: (o.time_us, o.sensor_id))
    engine = FusionEngine(GEO, rules)
    watermark = T0 + 298_000_000
    held = [o for o in obs if watermark < o.time_us <= watermark + 4_000_000]
    if not hinted:
        held = [attrs.evolve(o, local_id=None) for o in held]
    assert engine.process([o for o in obs if o.time_us <= watermark], watermark) == []
    early = engine.look_ahead(held)
    assert [i.type for i in early] == expected
    if early:
        assert 300.0 <= (early[0].time_us - T0) / 1e6 <= 302.0
    assert engine.look_ahead(held) == []        # raised once
    later = engine.process([o for o in obs if o.time_us > watermark], obs[-1].time_us + 60_000_000) + engine.flush()
    # the tracker's own update of the track finds the dwell raised; without the look-ahead it is raised now
    assert [i.type for i in early + later] == (["loitering"] if enabled else [])


@pytest.mark.parametrize("samples, raised, expected", [
    ([(0, 0.0, 0.0, True), (150, 40.0, 0.0, True), (299, 0.0, 60.0, True)], False, True),      # fits so far
    ([(0, 0.0, 0.0, True), (150, 40.0, 0.0, True)], False, True),                             # reaches back 300 s
    ([(10, 0.0, 0.0, True), (150, 40.0, 0.0, True)], False, False),                           # not yet 300 s
    ([(0, 0.0, 0.0, True), (150, 310.0, 0.0, True)], False, False),                           # wider than 2 r
    ([(0, 0.0, 0.0, True), (150, 0.0, 0.0, False)], False, False),                            # left the zone
    ([(-60, 900.0, 0.0, False), (0, 0.0, 0.0, True), (150, 40.0, 0.0, True)], False, True),   # before the window
    ([(0, 0.0, 0.0, True), (150, 40.0, 0.0, True)], True, False),                             # already raised
])
def test_a_dwell_is_looked_ahead_on_only_when_one_more_point_could_complete_it(samples, raised, expected):
    from borderfuse.fusion.loitering import LoiteringDetector, _Dwell

    detector = LoiteringDetector(GEO, RULES, 50.0)
    detector._state["trk-1"] = _Dwell(collections.deque((T0 + t * 1_000_000, x, y, near) for t, x, y, near in samples),
                                      (0.0, 0.0) if raised else None)
    assert detector.may_complete("trk-1", T0 + 300_000_000) is expected


def test_loitering_far_from_the_border_raises_nothing():
    bx, by = border_x(52.265)
    obs = walk((bx - 800, by), (0.0, 0.0), 0.0, 420.0, _dwell_sensors(), cls="person", wander=60.0, seed=3)
    assert run(obs)[1] == []


def test_same_incidents_when_arrival_is_shuffled_within_the_lateness():
    obs, _ = crossing_walk(52.27, "person")
    obs += walk((border_x(52.25)[0] - 150, border_x(52.25)[1]), (0, 0), 0.0, 420.0, _dwell_sensors(),
                cls="person", wander=60.0, seed=4)

    def feed(order):
        engine = FusionEngine(GEO, RULES)
        buf = ReorderBuffer.from_seconds(12.0)
        out = []
        for start in range(0, len(order), 37):
            for o in order[start:start + 37]:
                assert buf.push((o.topic, 0), o.time_us, (o.sensor_id, float(o.xy[0])), o)
            out += engine.process(buf.release(), buf.watermark_us)
        return out + engine.process(buf.flush(), buf.watermark_us) + engine.flush()

    ordered = sorted(obs, key=lambda o: o.time_us)
    shuffled = sorted(ordered, key=lambda o: o.time_us + random.Random(o.time_us).uniform(0, 8e6))
    assert feed(shuffled) == feed(ordered)
    assert sorted(i.type for i in feed(ordered)) == ["border_crossing", "loitering"]


def test_crossing_back_and_forth_is_one_event_but_two_people_are_two():
    bx, by = border_x(52.27)
    sensors = [("DE-R1", 1.0), ("PL-R1", 2.0), ("DE-C1", 1.0)]
    there = walk((bx - 150, by), (1.5, 0.0), 0.0, 130.0, sensors, cls="person", seed=1)      # crosses at 100 s
    back = walk((bx + 45, by), (-1.5, 0.0), 130.0, 130.0, sensors, cls="person", seed=2)     # and back at 160 s
    _, incidents = run(there + back)
    assert [i.type for i in incidents] == ["border_crossing"]
    bx2, by2 = border_x(52.26)
    other = walk((bx2 - 150, by2), (1.5, 0.0), 0.0, 200.0, sensors, cls="person", seed=3)
    _, incidents = run(there + other)
    assert [i.type for i in incidents] == ["border_crossing", "border_crossing"]
    assert len({i.track_id for i in incidents}) == 2


def test_a_quiet_feed_flush_decides_nothing_early():
    obs, _ = crossing_walk(52.27, "animal", cls_from=240.0)    # crossing at 200 s, class known at 240 s
    obs.sort(key=lambda o: o.time_us)
    cut = next(i for i, o in enumerate(obs) if o.time_us >= T0 + 225_000_000)
    rules = attrs.evolve(RULES, crossing=attrs.evolve(RULES.crossing, class_max_hold_s=60.0))
    engine = FusionEngine(GEO, rules)
    first = engine.process(obs[:cut], obs[cut - 1].time_us) + engine.flush(final=False)
    assert first == [] and engine._held                         # the crossing waits for its class
    rest = engine.process(obs[cut:], obs[-1].time_us + 60_000_000) + engine.flush()
    assert rest == []


def test_late_observations_are_used_where_sound_and_counted_otherwise():
    bx, by = border_x(52.27)
    obs = walk((bx - 400, by), (1.5, 0.0), 0.0, 60.0, [("DE-R1", 1.0), ("DE-C1", 1.0)], cls="person", seed=1)
    engine = FusionEngine(GEO, RULES)
    obs.sort(key=lambda o: o.time_us)
    engine.process(obs, obs[-1].time_us)
    track = engine.tracker.tracks[0]
    before = track.class_weight.sum()
    late_cam = ob(30.0, "DE-C1", bx - 355, by, cls="person", local_id="DE-C1-obj")
    assert engine.late(late_cam) == ("class_used", [])
    assert track.class_weight.sum() > before
    assert engine.late(ob(30.0, "PL-R1", bx - 355, by, sigma=30.0)) == ("behind_track", [])
    assert engine.late(_read(30.0, "DE-ANPR-A12-W"))[0] == "anpr_read_used"
