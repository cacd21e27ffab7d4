"""borderfuse.console.geography: the map's vector layers from the ICD geography files."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from pyproj import Geod

from borderfuse.console.geography import GeographyLayersError, coverage_ring, load_layers
from borderfuse.ingest.settings import load_settings

GEO_DIR = load_settings().icd.geo_dir


def test_layers_hold_border_sectors_crossings_and_sensor_coverage():
    layers = load_layers(GEO_DIR)
    assert layers["sector_ids"] == ["S1", "S2", "S3", "S4"]
    assert layers["border"]["features"][0]["geometry"]["type"] == "LineString"
    assert {f["properties"]["id"] for f in layers["crossings"]["features"]} == {"BCP-STADT", "BCP-A12"}
    sensors = json.loads((GEO_DIR / "sensors.json").read_text())["sensors"]
    sites = [f for f in layers["sensors"]["features"] if f["properties"]["layer"] == "site"]
    coverage = [f for f in layers["sensors"]["features"] if f["properties"]["layer"] == "coverage"]
    assert len(sites) == len(sensors)
    assert len(coverage) == sum(1 for s in sensors if s.get("max_range_m"))
    (south, west), (north, east) = layers["bounds"]
    assert (south, west, north, east) == pytest.approx((52.24, 14.4, 52.46, 14.72), abs=0.01)


@pytest.mark.parametrize("radius_m", [500.0, 6000.0, 12000.0])
def test_coverage_ring_is_a_closed_geodesic_circle(radius_m):
    ring = np.array(coverage_ring(14.6, 52.3, radius_m))
    assert (ring[0] == ring[-1]).all()
    _, _, dist = Geod(ellps="WGS84").inv(np.full(len(ring), 14.6), np.full(len(ring), 52.3), ring[:, 0], ring[:, 1])
    assert dist == pytest.approx(np.full(len(ring), radius_m), abs=0.1)


@pytest.mark.parametrize("name, content, message", [
    ("sectors.geojson", None, "does not exist"),
    ("border.geojson", "{nope", "is not JSON"),
    ("crossings.geojson", json.dumps({"type": "Feature"}), "is not a FeatureCollection"),
    ("sensors.json", json.dumps({"sensors": [{"id": "X"}]}), "lacks id or wgs84"),
])
def test_a_bad_geography_file_is_named(tmp_path, name, content, message):
    for path in GEO_DIR.iterdir():
        shutil.copy(path, tmp_path / path.name)
    if content is None:
        (tmp_path / name).unlink()
    else:
        (tmp_path / name).write_text(content)
    with pytest.raises(GeographyLayersError, match=message) as info:
        load_layers(tmp_path)
    if "lacks" not in message:
        assert name in str(info.value)
