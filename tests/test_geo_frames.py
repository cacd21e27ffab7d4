"""borderfuse.geo.frames: CRS transforms, registry site axis order, meridian convergence."""
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from borderfuse.geo import frames
from sensor_records import GEO_DIR

# The deployment area with a margin: 14.0-15.2 E, 52.0-52.7 N.
lons = st.floats(14.0, 15.2, allow_nan=False)
lats = st.floats(52.0, 52.7, allow_nan=False)
coords = st.lists(st.tuples(lons, lats), min_size=1, max_size=50)


def _metres_apart(lon0, lat0, lon1, lat1):
    x0, y0 = frames.to_shared(lon0, lat0)
    x1, y1 = frames.to_shared(lon1, lat1)
    return np.hypot(x1 - x0, y1 - y0)


@settings(max_examples=200, deadline=None)
@given(coords)
def test_round_trip_wgs84_pl_utm_shared_within_a_millimetre(points):
    lon, lat = np.array(points).T
    pe, pn = frames.transform(frames.WGS84_CRS, frames.PL_CRS, lon, lat)
    ue, un = frames.transform(frames.PL_CRS, "EPSG:25833", pe, pn)
    sx, sy = frames.from_crs("EPSG:25833", ue, un)
    back_lon, back_lat = frames.to_wgs84(sx, sy)
    assert np.all(_metres_apart(lon, lat, back_lon, back_lat) < 1e-3)
    # and the direct paths agree with the chained one
    dx, dy = frames.to_shared(lon, lat)
    fx, fy = frames.from_pl(pe, pn)
    assert np.all(np.hypot(dx - sx, dy - sy) < 1e-3)
    assert np.all(np.hypot(fx - sx, fy - sy) < 1e-3)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(430_000, 520_000), st.floats(5_760_000, 5_840_000)), min_size=1, max_size=50))
def test_round_trip_shared_wgs84_shared_within_a_millimetre(points):
    x, y = np.array(points).T
    bx, by = frames.to_shared(*frames.to_wgs84(x, y))
    assert np.all(np.hypot(bx - x, by - y) < 1e-3)


def test_transform_is_vectorised_and_keeps_shape():
    lon = np.array([[14.5, 14.6], [14.55, 14.65]])
    x, y = frames.to_shared(lon, np.full_like(lon, 52.3))
    assert x.shape == y.shape == (2, 2)
    assert x[0, 0] < x[0, 1]  # east is east


def test_transformers_are_cached_and_xy_ordered():
    assert frames.transformer(frames.WGS84_CRS, frames.SHARED_CRS) is frames.transformer(frames.WGS84_CRS, frames.SHARED_CRS)
    # always_xy: (lon, lat) in, (easting, northing) out, even though EPSG:4326 is lat-first
    x, y = frames.to_shared(15.0, 52.0)
    assert x == pytest.approx(500_000, abs=1e-3) and 5_700_000 < y < 5_800_000


def test_unknown_crs_is_a_geo_error():
    with pytest.raises(frames.GeoError, match="EPSG:999999"):
        frames.from_crs("EPSG:999999", [1.0], [2.0])


def test_registry_sites_read_in_each_crs_own_axis_order():
    """EPSG:2180 sites give x = northing; read from the CRS, they land on the registry's WGS84 position."""
    for entry in json.loads((GEO_DIR / "sensors.json").read_text())["sensors"]:
        x, y = frames.site_to_xy(entry["site"], entry["id"])
        wx, wy = frames.to_shared(entry["wgs84"]["lon"], entry["wgs84"]["lat"])
        assert np.hypot(x - wx, y - wy) < 0.05, entry["id"]


def test_swapped_pl_site_axes_would_be_far_off():
    site = {"crs": "EPSG:2180", "x": 501785.2, "y": 200125.33}  # PL-R1
    right = frames.site_to_xy(site, "PL-R1")
    wrong = frames.from_pl(site["x"], site["y"])  # taking x as easting
    assert np.hypot(right[0] - wrong[0], right[1] - wrong[1]) > 100_000


@pytest.mark.parametrize("site, message", [
    ({"x": 1.0, "y": 2.0}, "site.crs"),
    ({"crs": "EPSG:25833", "e": "1"}, "site.e must be a finite number"),
    ({"crs": "EPSG:25833", "e": 1.0, "n": float("nan")}, "site.n must be a finite number"),
    ({"crs": "EPSG:25833", "q": 1.0}, "none of e/n"),
    ({"crs": "EPSG:nope", "e": 1.0, "n": 2.0}, "unknown CRS"),
])
def test_bad_site_is_a_geo_error_naming_the_sensor(site, message):
    with pytest.raises(frames.GeoError, match=message) as info:
        frames.site_to_xy(site, "sensor X-1")
    assert "sensor X-1" in str(info.value)


@pytest.mark.parametrize("lon, expected", [(15.0, 0.0), (14.5, 0.395), (14.72, 0.222)])
def test_grid_bearing_of_true_north_is_the_meridian_convergence(lon, expected):
    # UTM convergence ≈ (lon0 - lon) sin(lat): west of 15 E true north lies clockwise of grid north
    x, y = frames.to_shared(lon, 52.3)
    assert frames.grid_bearing_of_true_north(x, y) == pytest.approx(expected, abs=0.005)
    assert (15.0 - lon) * np.sin(np.radians(52.3)) == pytest.approx(expected, abs=0.005)
