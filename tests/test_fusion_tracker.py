"""Tracker: confirmation, association across sensors, hints, merging, determinism."""
import numpy as np
import pytest

from borderfuse.fusion.tracker import Tracker, TrackerConfig
from borderfuse.sensors.base import Observation

T0 = 1_795_298_400_000_000


def ob(t_s, sensor, x, y, sigma=15.0, side=None, kind="radar", **kw):
    return Observation(time_us=T0 + int(t_s * 1e6), side=side or sensor[:2], sensor_id=sensor, sensor_kind=kind,
                       xy=(x, y), cov=np.eye(2) * sigma ** 2, **kw)


def feed(tracker, observations, slice_s=0.5):
    """Scans as the engine cuts them: per slice, per sensor."""
    observations = sorted(observations, key=lambda o: o.time_us)
    scans = {}
    for o in observations:
        scans.setdefault((int((o.time_us - T0) / (slice_s * 1e6)), o.sensor_id), []).append(o)
    for key in sorted(scans, key=lambda k: (k[0], scans[k][0].time_us)):
        tracker.process_scan(scans[key])
        tracker.prune(scans[key][-1].time_us)


def target(sensor, start, v, n, period=1.0, noise=8.0, seed=0, **kw):
    rng = np.random.default_rng(seed)
    return [ob(k * period, sensor, start[0] + v[0] * k * period + rng.normal(0, noise),
               start[1] + v[1] * k * period + rng.normal(0, noise), **kw) for k in range(n)]


def test_one_target_seen_by_four_sensors_is_one_confirmed_track():
    obs = (target("DE-R1", (0, 0), (1.5, 0), 60, seed=1, local_id="T1", status="confirmed")
           + target("PL-R1", (0, 0), (1.5, 0), 30, period=2.0, seed=2, sigma=30.0)
           + target("DE-C1", (0, 0), (1.5, 0), 60, seed=3, kind="camera", local_id="o1", cls="person", confidence=0.8)
           + target("PL-C1", (0, 0), (1.5, 0), 60, seed=4, kind="camera", local_id="o9", sigma=40.0))
    tr = Tracker()
    feed(tr, obs)
    assert len(tr) == 1 and tr.confirmed_total == 1
    track = tr.tracks[0]
    assert track.sources == {"DE-R1", "PL-R1", "DE-C1", "PL-C1"}
    assert track.class_state(2.0, 0.7) == ("person", True)
    assert abs(tr.x[0, 0] - 1.5 * 59) < 30 and abs(tr.x[0, 2] - 1.5) < 1.0


def test_two_separated_targets_keep_their_own_tracks():
    obs = target("DE-R1", (0, 0), (1.5, 0), 40, seed=1) + target("DE-R1", (0, 400), (-1.5, 0), 40, seed=2)
    tr = Tracker()
    feed(tr, obs)
    assert tr.confirmed_total == 2 and len(tr) == 2


@pytest.mark.parametrize("status, confirmed", [("tentative", 0), ("confirmed", 1)])
def test_de_radar_tentative_reports_alone_never_confirm(status, confirmed):
    tr = Tracker()
    feed(tr, target("DE-R1", (0, 0), (2, 0), 12, seed=1, local_id="T0266", status=status))
    assert tr.confirmed_total == confirmed


def test_tracks_are_deleted_after_the_coast_time():
    tr = Tracker(TrackerConfig(coast_s=10.0))
    feed(tr, target("DE-R1", (0, 0), (1, 0), 10))
    assert len(tr) == 1
    assert tr.prune(T0 + 15_000_000) == [] and len(tr) == 1
    assert [t.id for t in tr.prune(T0 + 20_000_000)] == ["trk-000001"]


def test_duplicate_tracks_of_one_target_are_merged_into_the_confirmed_one():
    tr = Tracker()
    # one scan with two detections 30 m apart (a split return): one sensor cannot feed one track twice
    tr.process_scan([ob(0, "PL-C1", 0, 0, sigma=20.0, kind="camera"), ob(0, "PL-C1", 30, 0, sigma=20.0, kind="camera")])
    assert len(tr) == 2
    for k in range(1, 6):
        tr.process_scan([ob(k, "DE-R1", k + 15, 0)])
    merged = tr.merge(T0 + 6_000_000)
    assert [(k.id, g.id) for k, g in merged] == [("trk-000002", "trk-000001")]
    assert len(tr) == 1 and tr.tracks[0].sources == {"DE-R1", "PL-C1"}


def test_same_input_gives_same_ids_and_states():
    obs = target("DE-R1", (0, 0), (1.5, 0), 30, seed=1) + target("PL-R1", (0, 300), (0, 1), 15, period=2.0, seed=2)
    a, b = Tracker(), Tracker()
    feed(a, obs)
    feed(b, obs)
    assert [t.id for t in a.tracks] == [t.id for t in b.tracks]
    np.testing.assert_array_equal(a.x, b.x)


def _confirmed_walker(n_scans=8):
    tr = Tracker()
    for k in range(n_scans):
        tr.process_scan([ob(k, "PL-R1", 1.5 * k, 0.0)])
    assert len(tr) == 1 and tr.tracks[0].confirmed
    return tr


def _offset_at_d2(tr, t_s, d2):
    """Metres east of the track's prediction at t_s at which a sigma-15 detection has this d^2."""
    from borderfuse.fusion import association
    dt = np.array([(T0 + int(t_s * 1e6) - tr.t_us[0]) / 1e6])
    unit, _ = association.pair_costs(tr.x[:1], tr.P[:1], dt, tr.x[:1, :2] + tr.x[:1, 2:] * dt + [1.0, 0.0],
                                     np.eye(2)[None] * 225.0, tr.config.process_noise)
    return float(np.sqrt(d2 / unit[0]))


@pytest.mark.parametrize("d2, tracks_after, near_misses", [
    (10.0, 1, 0),     # inside the gate: the track's own detection
    (16.0, 1, 1),     # just outside (the d^2 = 15.7 of the issue): the track's outlier, no rival track
    (26.0, 1, 1),
    (40.0, 2, 0),     # far beyond the near-miss gate: a new object
])
def test_a_near_miss_of_a_confirmed_track_founds_no_rival(d2, tracks_after, near_misses):
    tr = _confirmed_walker()
    x_pred = tr.x[0, 0] + tr.x[0, 2] * 1.0
    tr.process_scan([ob(8, "PL-R1", x_pred + _offset_at_d2(tr, 8, d2), tr.x[0, 1] + tr.x[0, 3])])
    assert len(tr) == tracks_after and tr.near_misses == near_misses


def test_a_near_miss_beside_the_tracks_own_detection_is_another_object():
    tr = _confirmed_walker()
    x_pred, y_pred = tr.x[0, 0] + tr.x[0, 2], tr.x[0, 1] + tr.x[0, 3]
    tr.process_scan([ob(8, "PL-R1", x_pred, y_pred), ob(8, "PL-R1", x_pred + _offset_at_d2(tr, 8, 16.0), y_pred)])
    assert len(tr) == 2 and tr.near_misses == 0


def test_a_tentative_track_cannot_outbid_the_confirmed_track():
    tr = _confirmed_walker()
    x_pred = tr.x[0, 0] + tr.x[0, 2] * 1.0
    # a tentative track started 20 m beyond, then a detection between the two, closer to the tentative one
    tr.process_scan([ob(8, "PL-R1", x_pred, 0.0), ob(8, "PL-R1", x_pred + 200.0, 0.0)])
    rival = tr.tracks[1]
    tr.x[1, 0:2] = [x_pred + 1.5 + 30.0, 0.0]      # place it where it would win the next detection on cost
    tr.x[1, 2:4] = [1.5, 0.0]
    tr.P[1] = tr.P[0]
    tr.process_scan([ob(9, "PL-R1", x_pred + 1.5 + 20.0, 0.0)])
    assert tr.tracks[0].hits == 10 and rival.hits == 1     # 8 + 1 + this one; the rival only its first


def test_two_confirmed_walkers_that_close_up_are_not_merged():
    """Two detections in one scan are two objects: tracks both fed by one scan never merge."""
    rng = np.random.default_rng(7)
    tr = Tracker()
    for k in range(70):
        # walker A heads east; walker B joins it from 150 m north and walks beside it, 25 m apart
        ya, yb = 0.0, max(25.0, 150.0 - 2.0 * k)
        tr.process_scan([ob(k, "PL-R1", 1.5 * k + rng.normal(0, 5), ya + rng.normal(0, 5)),
                         ob(k, "PL-R1", 1.5 * k + rng.normal(0, 5), yb + rng.normal(0, 5))])
        assert tr.merge(T0 + k * 1_000_000) == []
    assert len(tr) == 2 and tr.confirmed_count() == 2


@pytest.mark.parametrize("jump_m, used", [(0.0, 3), (2000.0, 0)])   # an observation far outside the gate is skipped
def test_provisional_updates_are_the_filter_on_a_copy(jump_m, used):
    obs = target("DE-C1", (0, 0), (1.5, 0), 40, seed=3, kind="camera", local_id="o1")
    tr = Tracker()
    feed(tr, obs[:37])
    state = (tr.x.copy(), tr.P.copy(), tr.t_us.copy())
    ahead = [ob((37 + k) * 1.0, "DE-C1", o.xy[0] + jump_m, o.xy[1], kind="camera", local_id="o1")
             for k, o in enumerate(obs[37:])]
    track_id = tr.hinted_track(ahead[0])
    ups = tr.provisional({track_id: ahead})
    assert len(ups) == used
    assert all(np.array_equal(a, b) for a, b in zip(state, (tr.x, tr.P, tr.t_us)))   # the tracker is unchanged
    if used:
        feed(tr, ahead)   # the same observations processed for real give the same state
        assert ups[-1].time_us == int(tr.t_us[0])
        assert np.allclose([ups[-1].x, ups[-1].y, ups[-1].vx, ups[-1].vy], tr.x[0], atol=1e-6)
