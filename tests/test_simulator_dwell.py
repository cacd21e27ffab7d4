"""The ICD's loitering condition on true paths (the hard nights' truth): 300 s within 300 m of the
border inside a 150 m circle, lingering (not walking through), one incident per dwell."""
from __future__ import annotations

import numpy as np
import pytest

from borderfuse.geo.geography import Geography
from borderfuse.ingest.settings import DEFAULT_GEO_DIR
from borderfuse.simulator.dwell import dwell_hits
from borderfuse.simulator.layout import Layout


@pytest.fixture(scope="module")
def geo() -> Geography:
    return Geography.load(DEFAULT_GEO_DIR)


@pytest.fixture(scope="module")
def frame(geo):
    """A point on the border mid-way along it, and the unit normal there."""
    p, _, normal = Layout.build(geo).frame_at(12000.0)
    return p, normal


def _path(frame, legs: list[tuple[float, float]]):
    """Waypoints (time, metres off the border along its normal) -> tw, xw, yw."""
    p, normal = frame
    tw = np.array([t for t, _ in legs], float)
    d = np.array([d for _, d in legs], float)
    return tw, p[0] + d * normal[0], p[1] + d * normal[1]


# (name, legs, expected hit times)
CASES = [
    # walk in from 400 m at 1.4 m/s to 60 m, stop 40 s, walk back: in the zone from 71.4 s on
    ("turn-back", [(0, 400), (242.9, 60), (282.9, 60), (525.7, 400)], [71.4 + 300]),
    ("standing 200 m off", [(0, 200), (400, 200)], [300.0]),
    ("standing 350 m off (outside the zone)", [(0, 350), (600, 350)], []),
    ("walking straight across at 1.4 m/s", [(0, -500), (714.3, 500)], []),
    ("walking straight across at 0.95 m/s: fits the circle, but walks through", [(0, -500), (1052.6, 500)], []),
    ("pacing to and fro at 1 m/s: lingering", [(0, 100), (100, 200), (200, 100), (300, 200), (400, 100)], [300.0]),
    ("too short a stay", [(0, 400), (150, 200), (200, 200), (350, 400)], []),
    ("stays, leaves the zone, comes back: two dwells",
     [(0, 100), (400, 100), (450, 500), (600, 500), (650, 100), (1000, 100)], [300.0, 932.0]),
]


@pytest.mark.parametrize("name,legs,expected", CASES, ids=[c[0] for c in CASES])
def test_dwell_hits_follow_the_icd_rule(geo, frame, name, legs, expected):
    hits = dwell_hits(geo, *_path(frame, legs))
    assert [t for t, _, _ in hits] == pytest.approx(expected, abs=2.5)


def test_a_dwell_is_reported_where_the_path_is_then(geo, frame):
    tw, xw, yw = _path(frame, [(0, 400), (242.9, 60), (282.9, 60), (525.7, 400)])
    (t, x, y), = dwell_hits(geo, tw, xw, yw)
    assert (x, y) == pytest.approx((np.interp(t, tw, xw), np.interp(t, tw, yw)))
    assert 100.0 < geo.distance_to_border(np.array([x]), np.array([y]))[0] < 300.0  # walking back out


def test_walking_along_the_border_is_not_a_dwell(geo):
    layout = Layout.build(geo)
    arcs = np.arange(8000.0, 9500.0, 50.0)
    p, _, normal = layout.frames_at(arcs)
    pts = p + 150.0 * normal
    tw = (arcs - arcs[0]) / 1.2  # 1.2 m/s covers 360 m in 300 s: no 150 m circle holds it
    assert dwell_hits(geo, tw, pts[:, 0], pts[:, 1]) == []
