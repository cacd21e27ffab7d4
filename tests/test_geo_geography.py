"""borderfuse.geo.geography: loading the ICD files, sectors, border side, border crossings, registry."""
import json
import shutil

import numpy as np
import pytest
import shapely

from borderfuse.geo import frames
from borderfuse.geo.geography import Geography, SensorInfo
from sensor_records import GEO_DIR


@pytest.fixture(scope="module")
def geo():
    return Geography.load(GEO_DIR)


def shared(lon, lat):
    return frames.to_shared(np.atleast_1d(lon), np.atleast_1d(lat))


def test_registry_loaded_with_sites_in_the_shared_frame(geo):
    assert len(geo.sensors) == 14
    r1 = geo.sensors["PL-R1"]
    assert isinstance(r1, SensorInfo)
    assert (r1.side, r1.kind, r1.topic) == ("PL", "radar", "pl.radar.plots")
    assert (r1.max_range_m, r1.period_s, r1.sigma_range_m, r1.sigma_azimuth_deg) == (12000, 2.0, 12.0, 0.25)
    assert r1.sigma_m is None and r1.sigma_bearing_deg is None and r1.sigma_angle_deg == 0.25
    assert (r1.lon, r1.lat) == pytest.approx((14.6, 52.3), abs=1e-6)
    x, y = shared(14.6, 52.3)
    assert np.hypot(r1.x - x[0], r1.y - y[0]) < 0.01
    c1 = geo.sensors["PL-C1"]
    assert (c1.sigma_bearing_deg, c1.sigma_range_frac, c1.sigma_angle_deg) == (0.4, 0.08, 0.4)
    anpr = geo.sensors["DE-ANPR-A12-W"]
    assert anpr.max_range_m is None and (anpr.x, anpr.y) == (468768.75, 5794504.69)  # EPSG:25833: as given


def test_sectors_and_crossings(geo):
    assert list(geo.sectors) == ["S1", "S2", "S3", "S4"]
    assert geo.sectors["S3"].topic == "incidents.S3"
    assert set(geo.crossings) == {"BCP-STADT", "BCP-A12"}


@pytest.mark.parametrize("lon, lat, sector", [
    (14.5, 52.26, "S1"), (14.7, 52.31, "S2"), (14.41, 52.36, "S3"), (14.6, 52.45, "S4"),
    (14.3, 52.3, ""), (14.6, 52.2, ""), (14.6, 52.5, ""),
])
def test_sector_of(geo, lon, lat, sector):
    assert list(geo.sector_of(*shared(lon, lat))) == [sector]


def test_sector_of_many_points_and_none(geo):
    x, y = shared([14.5, 14.3, 14.6], [52.26, 52.3, 52.45])
    assert list(geo.sector_of(x, y)) == ["S1", "", "S4"]
    assert geo.sector_of(np.array([]), np.array([])).shape == (0,)


@pytest.mark.parametrize("lon, lat, side", [
    (14.50, 52.33, "DE"), (14.60, 52.30, "PL"), (14.545, 52.30, "DE"), (14.551, 52.30, "PL"),
    (14.40, 52.10, "DE"), (14.70, 52.60, "PL"),  # beyond the line's ends: its extension decides
])
def test_border_side(geo, lon, lat, side):
    assert list(geo.border_side(*shared(lon, lat))) == [side]


def test_sensor_sites_are_on_their_own_side(geo):
    sensors = list(geo.sensors.values())
    sides = geo.border_side([s.x for s in sensors], [s.y for s in sensors])
    assert list(sides) == [s.side for s in sensors]


def test_distance_to_border(geo):
    x, y = shared(14.548, 52.3)  # a vertex of the line
    assert geo.distance_to_border(x, y)[0] == pytest.approx(0.0, abs=1e-6)
    d = geo.distance_to_border(x + np.array([0.0, 500.0, -1000.0]), y.repeat(3))
    assert d[0] == pytest.approx(0.0, abs=1e-6)
    assert 300 < d[1] <= 500 and 600 < d[2] <= 1000


def test_crossing_through_a_crossing_point_and_outside_one(geo):
    bx, by = shared([14.552, 14.551], [52.350, 52.280])  # on the bridge BCP-STADT / open country
    crosses, cx, cy, at_cp = geo.crossing_points_of_segments(bx - 200, by, bx + 200, by)
    assert list(crosses) == [True, True]
    assert list(at_cp) == [True, False]
    # the crossing point found lies on the border line
    assert np.all(geo.distance_to_border(cx, cy) < 1e-6)
    assert np.hypot(cx[0] - bx[0], cy[0] - by[0]) < 50


def test_segments_that_do_not_cross(geo):
    x, y = shared([14.45, 14.65], [52.3, 52.3])
    crosses, cx, cy, at_cp = geo.crossing_points_of_segments(x, y, x + 100, y + 100)
    assert not crosses.any() and np.isnan(cx).all() and np.isnan(cy).all() and not at_cp.any()


def test_zig_zag_reports_the_crossing_nearest_the_start(geo):
    x, y = shared([14.50, 14.60], [52.30, 52.30])
    crosses, cx, _, _ = geo.crossing_points_of_segments(x[[0, 1]], y[[0, 1]], x[[1, 0]], y[[1, 0]])
    assert crosses.all()
    assert cx[0] == pytest.approx(cx[1])  # one crossing whichever way it is walked


def test_many_segments_vectorised(geo):
    rng = np.random.default_rng(1)
    x0, y0 = shared(rng.uniform(14.4, 14.7, 20_000), rng.uniform(52.25, 52.45, 20_000))
    x1, y1 = x0 + rng.normal(0, 2000, x0.size), y0 + rng.normal(0, 2000, x0.size)
    crosses, cx, cy, at_cp = geo.crossing_points_of_segments(x0, y0, x1, y1)
    segments = shapely.linestrings(np.stack([np.column_stack([x0, y0]), np.column_stack([x1, y1])], axis=1))
    assert np.array_equal(crosses, shapely.intersects(geo.border, segments))  # independent check
    assert np.all(geo.distance_to_border(cx[crosses], cy[crosses]) < 1e-6)
    side0, side1 = geo.border_side(x0, y0), geo.border_side(x1, y1)
    within = (np.minimum(y0, y1) > geo.border.bounds[1]) & (np.maximum(y0, y1) < geo.border.bounds[3])
    assert np.all(crosses[within & (side0 != side1)])  # changing sides means crossing
    assert at_cp.sum() < crosses.sum()


def _copy_geo(tmp_path):
    target = tmp_path / "geo"
    shutil.copytree(GEO_DIR, target)
    return target


def test_load_from_another_directory_with_other_file_names(tmp_path):
    geo_dir = _copy_geo(tmp_path)
    (geo_dir / "sensors.json").rename(geo_dir / "registry.json")
    g = Geography.load(geo_dir, sensors_file="registry.json")
    assert "DE-R1" in g.sensors


@pytest.mark.parametrize("file_name, content, message", [
    ("border.geojson", "{", "not valid UTF-8 JSON"),
    ("border.geojson", '{"type": "FeatureCollection", "features": []}', "expected a GeoJSON FeatureCollection"),
    ("sectors.geojson", json.dumps({"features": [{"properties": {"id": "S1"}, "geometry": None}]}), "needs properties id and topic"),
    ("crossings.geojson", json.dumps({"features": [{"properties": {}, "geometry": {"type": "Point", "coordinates": [14.5, 52.3]}}]}), "expected a Polygon"),
    ("sensors.json", json.dumps({"sensors": [{"id": "X", "side": "PL", "kind": "radar", "topic": "t",
                                              "site": {"crs": "EPSG:25833", "e": 1, "n": 2}, "max_range_m": -5}]}),
     "max_range_m must be a positive number"),
    ("sensors.json", json.dumps({"sensors": [{"id": "X", "side": "CZ", "kind": "radar", "topic": "t",
                                              "site": {"crs": "EPSG:25833", "e": 1, "n": 2}}]}), "side"),
])
def test_bad_geography_files_raise_geo_error_naming_the_file(tmp_path, file_name, content, message):
    geo_dir = _copy_geo(tmp_path)
    (geo_dir / file_name).write_text(content)
    with pytest.raises(frames.GeoError, match=message) as info:
        Geography.load(geo_dir)
    assert file_name in str(info.value)


def test_missing_directory(tmp_path):
    with pytest.raises(frames.GeoError, match="does not exist"):
        Geography.load(tmp_path / "nowhere")
