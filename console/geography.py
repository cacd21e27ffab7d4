"""The map's vector layers, from the ICD geography files (no tile server needed).

Border line, sectors (with their ids), crossing points and sensor sites with their coverage
circles, as one JSON document of GeoJSON FeatureCollections in WGS84 (lon, lat).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from pyproj import Geod

COVERAGE_VERTICES = 72
_GEOD = Geod(ellps="WGS84")


class GeographyLayersError(RuntimeError):
    """A geography file is missing or malformed; the message names it."""


def _load_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise GeographyLayersError(f"geography file {path} does not exist") from exc
    except json.JSONDecodeError as exc:
        raise GeographyLayersError(f"geography file {path} is not JSON: {exc}") from exc


def coverage_ring(lon: float, lat: float, radius_m: float, vertices: int = COVERAGE_VERTICES) -> list[list[float]]:
    """A closed geodesic circle of `radius_m` around (lon, lat), as GeoJSON ring coordinates."""
    azimuths = np.linspace(0.0, 360.0, vertices, endpoint=False)
    lons, lats, _ = _GEOD.fwd(np.full(vertices, lon), np.full(vertices, lat), azimuths, np.full(vertices, radius_m))
    ring = np.round(np.column_stack([lons, lats]), 6).tolist()
    return ring + [ring[0]]


def sensor_features(sensors: list[dict]) -> list[dict]:
    """One Point per sensor site, plus one coverage Polygon per sensor with a `max_range_m`."""
    features = []
    for sensor in sensors:
        try:
            lon, lat = float(sensor["wgs84"]["lon"]), float(sensor["wgs84"]["lat"])
            props = {"id": str(sensor["id"]), "side": sensor.get("side"), "kind": sensor.get("kind")}
        except (KeyError, TypeError, ValueError) as exc:
            raise GeographyLayersError(f"sensor entry {sensor!r} lacks id or wgs84 lon/lat") from exc
        features.append({"type": "Feature", "properties": {**props, "layer": "site"},
                         "geometry": {"type": "Point", "coordinates": [lon, lat]}})
        if sensor.get("max_range_m"):
            props = {**props, "layer": "coverage", "range_m": float(sensor["max_range_m"])}
            features.append({"type": "Feature", "properties": props, "geometry": {
                "type": "Polygon", "coordinates": [coverage_ring(lon, lat, float(sensor["max_range_m"]))]}})
    return features


def _bounds(collections: list[dict]) -> list[list[float]]:
    points: list[list[float]] = []

    def walk(coords):
        if coords and isinstance(coords[0], (int, float)):
            points.append(coords[:2])
        else:
            for c in coords:
                walk(c)
    for fc in collections:
        for feature in fc["features"]:
            walk(feature["geometry"]["coordinates"])
    arr = np.array(points, float)
    return [[float(arr[:, 1].min()), float(arr[:, 0].min())], [float(arr[:, 1].max()), float(arr[:, 0].max())]]


def load_layers(geo_dir: Path | str) -> dict:
    """{border, sectors, crossings, sensors: FeatureCollection; bounds: [[south, west], [north, east]]}."""
    geo_dir = Path(geo_dir)
    layers = {name: _load_json(geo_dir / f"{name}.geojson") for name in ("border", "sectors", "crossings")}
    for name, fc in layers.items():
        if not isinstance(fc, dict) or not isinstance(fc.get("features"), list):
            raise GeographyLayersError(f"geography file {geo_dir / (name + '.geojson')} is not a FeatureCollection")
    sensors = _load_json(geo_dir / "sensors.json").get("sensors", [])
    layers["sensors"] = {"type": "FeatureCollection", "features": sensor_features(sensors)}
    layers["bounds"] = _bounds([layers["sectors"], layers["border"]])
    layers["sector_ids"] = [f["properties"]["id"] for f in layers["sectors"]["features"]]
    return layers
