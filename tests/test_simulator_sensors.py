"""Sensor models: generated measurements land where the true target is, within the registry's noise,
and the DE radar tracker behaves as its reports show it (tentative -> confirmed -> lost, reuse)."""
from __future__ import annotations

import numpy as np
import pytest

from borderfuse.geo.geography import Geography
from borderfuse.geo.polar import polar_to_shared
from borderfuse.geo import frames
from borderfuse.ingest.settings import DEFAULT_GEO_DIR
from borderfuse.simulator.de_radar import DeRadar
from borderfuse.simulator.scenario import ScenarioConfig
from borderfuse.simulator.sensors import Camera, PlRadar, Uav
from borderfuse.simulator.snapshot import Snapshot, true_course
from borderfuse.simulator.world import Target


@pytest.fixture(scope="module")
def geo() -> Geography:
    return Geography.load(DEFAULT_GEO_DIR)


def _target(x0, y0, vx=0.0, vy=0.0, t_end=600.0, index=0, cls="person") -> Target:
    tw = np.array([0.0, t_end])
    return Target(index=index, id=f"T{index + 1:03d}", kind="crossing", cls=cls, t_start=0.0, tw=tw,
                  xw=np.array([x0, x0 + vx * t_end]), yw=np.array([y0, y0 + vy * t_end]))


def _near(sensor, east_m, north_m, **kw):
    return _target(sensor.x + east_m, sensor.y + north_m, **kw)


CONFIG = ScenarioConfig(radar_pd=1.0, camera_pd=1.0, uav_pd=1.0, de_radar_pd=1.0, clutter_per_scan=0.0,
                        de_false_tracks_per_min=0.0, de_track_fades_per_hour=0.0, uav_first_sortie_within_s=0.0)


@pytest.mark.parametrize("sensor_id,offset", [("PL-R1", (-3000.0, 2000.0)), ("PL-R2", (1500.0, -8000.0))])
def test_pl_radar_plot_forward_from_site_returns_true_position(geo, sensor_id, offset):
    s = geo.sensors[sensor_id]
    tg = _near(s, *offset)
    feed = PlRadar(s, CONFIG, np.random.default_rng(1)).observe(Snapshot.build([tg], 0.0, 200.0), 0.0, 200.0)
    assert len(feed) == 100  # one plot per 2 s scan, Pd 1, no clutter
    x, y = polar_to_shared(s.lon, s.lat, feed.cols["azimuth_deg"], feed.cols["range_m"])
    err = np.hypot(x - tg.xw[0], y - tg.yw[0])
    rng_m = np.hypot(*offset)
    scale = np.hypot(s.sigma_range_m, rng_m * np.radians(s.sigma_azimuth_deg))
    assert np.median(err) < 1.5 * scale and err.max() < 5 * scale
    # a grid bearing would be off by the meridian convergence (~3.5 deg in EPSG:2180) -- far beyond noise
    assert np.all(np.diff(feed.cols["scan_id"]) == 1)
    phase = feed.t - (feed.cols["scan_id"] * s.period_s)
    assert np.ptp(phase) < 0.01  # a stationary target is hit at the same point of every revolution


def test_pl_radar_clutter_is_about_three_plots_per_scan(geo):
    s = geo.sensors["PL-R1"]
    config = ScenarioConfig(clutter_per_scan=3.0)
    feed = PlRadar(s, config, np.random.default_rng(2)).observe(Snapshot.build([], 0.0, 2000.0), 0.0, 2000.0)
    assert len(feed) / 1000 == pytest.approx(3.0, rel=0.1)
    assert feed.cols["range_m"].max() <= s.max_range_m and feed.cols["range_m"].min() > 0


def test_pl_camera_bearing_and_range_match_truth_within_noise(geo):
    s = geo.sensors["PL-C1"]
    tg = _near(s, -2500.0, 1000.0)
    feed = Camera(s, CONFIG, np.random.default_rng(3)).observe(Snapshot.build([tg], 0.0, 300.0), 0.0, 300.0)
    assert len(feed) == 300
    true_range = np.hypot(2500.0, 1000.0)
    assert np.median(np.abs(feed.cols["range_m"] / true_range - 1)) < 1.5 * s.sigma_range_frac
    x, y = polar_to_shared(s.lon, s.lat, feed.cols["bearing_deg"], np.full(len(feed), true_range))
    assert np.median(np.hypot(x - tg.xw[0], y - tg.yw[0])) < 1.5 * true_range * np.radians(s.sigma_bearing_deg) + 5
    assert set(feed.cols["object_id"]) == {"PL-C1-00001"}


def test_camera_gives_a_new_object_id_after_losing_the_object(geo):
    s = geo.sensors["DE-C1"]
    cam = Camera(s, CONFIG, np.random.default_rng(4))
    tg = _near(s, 1000.0, 0.0)
    first = cam.observe(Snapshot.build([tg], 0.0, 10.0), 0.0, 10.0)
    later = cam.observe(Snapshot.build([tg], 30.0, 40.0), 30.0, 40.0)
    assert set(first.cols["object_id"]) == {"DE-C1-00001"} and set(later.cols["object_id"]) == {"DE-C1-00002"}
    err = np.hypot(first.cols["e"] - tg.xw[0], first.cols["n"] - tg.yw[0])
    assert err.max() < 5 * s.sigma_m * np.sqrt(2)


def test_out_of_range_targets_are_not_seen(geo):
    s = geo.sensors["DE-C2"]
    tg = _near(s, s.max_range_m + 500.0, 0.0)
    feed = Camera(s, CONFIG, np.random.default_rng(5)).observe(Snapshot.build([tg], 0.0, 60.0), 0.0, 60.0)
    assert len(feed) == 0


def test_uav_detections_are_wgs84_near_the_target(geo):
    s = geo.sensors["PL-U1"]
    tg = _near(s, 800.0, -600.0, cls="drone")
    tg = Target(**{**{f: getattr(tg, f) for f in ("index", "id", "kind", "t_start", "tw", "xw", "yw")},
                   "cls": "drone", "alt_m": 90.0})
    feed = Uav(s, CONFIG, np.random.default_rng(6)).observe(Snapshot.build([tg], 0.0, 100.0), 0.0, 100.0)
    assert len(feed) == 50
    x, y = frames.to_shared(feed.cols["lon"], feed.cols["lat"])
    assert np.hypot(x - tg.xw[0], y - tg.yw[0]).max() < 5 * s.sigma_m * np.sqrt(2)
    assert np.abs(feed.cols["alt_m"] - 90.0).max() < 30.0


def test_de_radar_track_goes_tentative_confirmed_lost_and_numbers_are_reused(geo):
    s = geo.sensors["DE-R1"]
    radar = DeRadar(s, ScenarioConfig(de_radar_pd=1.0, de_false_tracks_per_min=0.0, de_track_fades_per_hour=0.0,
                                      de_track_pool=2), np.random.default_rng(7))
    short = _near(s, 2000.0, 0.0, t_end=20.0)
    feeds = [radar.observe(Snapshot.build([short], t, t + 10.0), t, t + 10.0) for t in (0.0, 10.0, 20.0, 30.0)]
    status = np.concatenate([f.cols["status"] for f in feeds])
    tracks = np.concatenate([f.cols["track"] for f in feeds])
    assert list(status[:3]) == [0, 0, 1] and status[-1] == 2 and np.count_nonzero(status == 2) == 1
    assert len(set(tracks)) == 1
    times = np.concatenate([f.t for f in feeds])
    assert times[-1] - times[-2] == pytest.approx(5.0)  # lost 5 s after the last report
    assert 19.0 <= times[-2] <= 20.0  # the target is gone at 20 s
    # the pool has 2 numbers: the 2nd and 3rd new tracks must take the two, the 3rd reusing the 1st's
    numbers = [tracks[0]]
    for k in range(2):
        t0 = 40.0 + 40.0 * k
        tg = _target(s.x + 1000.0, s.y, t_end=t0 + 10.0, index=k + 1)
        tg = Target(**{**{f: getattr(tg, f) for f in ("index", "id", "kind", "cls", "xw", "yw")},
                       "t_start": t0, "tw": np.array([t0, t0 + 10.0])})
        for t in (t0, t0 + 10.0, t0 + 20.0, t0 + 30.0):
            f = radar.observe(Snapshot.build([tg], t, t + 10.0), t, t + 10.0)
            if len(f):
                numbers.append(f.cols["track"][0])
    assert len(set(numbers)) == 2 and numbers[0] in numbers[1:]


def test_de_radar_course_is_from_true_north(geo):
    s = geo.sensors["DE-R2"]
    # moving along the grid's y axis: true course differs by the meridian convergence (~0.4 deg here)
    tg = _near(s, 1000.0, 0.0, vx=0.0, vy=10.0, t_end=300.0)
    radar = DeRadar(s, CONFIG, np.random.default_rng(8))
    feed = radar.observe(Snapshot.build([tg], 0.0, 100.0), 0.0, 100.0)
    expected = true_course(np.array([tg.xw[0]]), np.array([tg.yw[0]]), np.array([0.0]), np.array([10.0]))[0]
    expected = (expected + 180.0) % 360.0 - 180.0
    assert abs(expected) > 0.2  # the test would not tell grid from true north otherwise
    course = (feed.cols["course_deg"] + 180.0) % 360.0 - 180.0
    assert np.median(course) == pytest.approx(expected, abs=0.3)
    assert np.median(feed.cols["speed_kmh"]) == pytest.approx(36.0, abs=1.5)


def test_de_radar_false_tracks_are_short_and_tentative(geo):
    s = geo.sensors["DE-R1"]
    radar = DeRadar(s, ScenarioConfig(de_false_tracks_per_min=30.0), np.random.default_rng(9))
    feed = radar.observe(Snapshot.build([], 0.0, 60.0), 0.0, 60.0)
    tracks, counts = np.unique(feed.cols["track"], return_counts=True)
    assert len(tracks) >= 15 and counts.min() >= 4 and counts.max() <= 11
    assert np.all(feed.cols["status"] == 0) and np.all(feed.cols["quality"] == 0.2)
