"""The geography of a deployment, loaded from the ICD files, in the shared frame.

`Geography.load(geo_dir)` reads border.geojson, sectors.geojson, crossings.geojson and
sensors.json (file names overridable). All queries take and return numpy arrays.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import shapely
from shapely.geometry import LineString, Polygon, shape

from borderfuse.geo import frames, polar

SIDES = ("DE", "PL")
_FAR_M = 1_000_000.0  # how far the border is extended north/south to close each side's half-plane
_CHUNK_PAIRS = 4_000_000  # segment×border-edge pairs per vectorised chunk (memory bound)


def _opt_float(value):
    return None if value is None else float(value)


@attrs.frozen(slots=True)
class SensorInfo:
    """One sensor registry entry; site in WGS84 and in the shared frame; accuracy as given (None if absent)."""

    id: str
    side: str = attrs.field(validator=attrs.validators.in_(SIDES))
    kind: str
    topic: str
    lon: float
    lat: float
    x: float
    y: float
    max_range_m: float | None = attrs.field(default=None, converter=_opt_float)
    period_s: float | None = attrs.field(default=None, converter=_opt_float)
    sigma_range_m: float | None = attrs.field(default=None, converter=_opt_float)
    sigma_azimuth_deg: float | None = attrs.field(default=None, converter=_opt_float)
    sigma_bearing_deg: float | None = attrs.field(default=None, converter=_opt_float)
    sigma_range_frac: float | None = attrs.field(default=None, converter=_opt_float)
    sigma_m: float | None = attrs.field(default=None, converter=_opt_float)

    @property
    def xy(self) -> np.ndarray:
        return np.array([self.x, self.y])

    @property
    def sigma_angle_deg(self) -> float | None:
        """The angular 1-sigma of a polar sensor, whatever the registry called it."""
        return self.sigma_azimuth_deg if self.sigma_azimuth_deg is not None else self.sigma_bearing_deg


@attrs.frozen(slots=True, eq=False)
class Sector:
    id: str
    name: str
    topic: str
    polygon: Polygon  # shared frame


@attrs.frozen(slots=True, eq=False)
class CrossingPoint:
    id: str
    kind: str
    polygon: Polygon  # shared frame


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise frames.GeoError(f"geography file {path} does not exist") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise frames.GeoError(f"geography file {path} is not valid UTF-8 JSON: {exc}") from exc


def _features(path: Path) -> list[dict]:
    doc = _read_json(path)
    features = doc.get("features") if isinstance(doc, dict) else None
    if not isinstance(features, list) or not features:
        raise frames.GeoError(f"{path}: expected a GeoJSON FeatureCollection with features")
    return features


def _to_shared_geometry(geom, where: str):
    """A WGS84 shapely geometry → the same geometry in the shared frame (vectorised on its coordinates)."""
    try:
        out = shapely.transform(geom, lambda c: np.column_stack(frames.to_shared(c[:, 0], c[:, 1])))
    except Exception as exc:  # shapely/pyproj raise assorted types for broken input
        raise frames.GeoError(f"{where}: cannot project geometry: {exc}") from exc
    if not out.is_valid:
        raise frames.GeoError(f"{where}: geometry is not valid in the shared frame: {shapely.is_valid_reason(out)}")
    return out


def _feature_geometry(feature: dict, path: Path, index: int, geom_type: str):
    where = f"{path} feature {index}"
    try:
        geom = shape(feature["geometry"])
    except Exception as exc:
        raise frames.GeoError(f"{where}: bad geometry: {exc}") from exc
    if geom.geom_type != geom_type:
        raise frames.GeoError(f"{where}: expected a {geom_type}, got {geom.geom_type}")
    return _to_shared_geometry(geom, where)


def _load_sensor(entry: Any, where: str) -> SensorInfo:
    if not isinstance(entry, dict):
        raise frames.GeoError(f"{where}: not an object")
    for key in ("id", "side", "kind", "topic", "site"):
        if not entry.get(key):
            raise frames.GeoError(f"{where}: missing {key!r}")
    x, y = frames.site_to_xy(entry["site"], f"{where} ({entry['id']})")
    lon, lat = frames.to_wgs84(x, y)
    accuracy = {k: entry.get(k) for k in ("max_range_m", "period_s", "sigma_range_m", "sigma_azimuth_deg",
                                         "sigma_bearing_deg", "sigma_range_frac", "sigma_m")}
    for key, value in accuracy.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not np.isfinite(value) or value <= 0):
            raise frames.GeoError(f"{where} ({entry['id']}): {key} must be a positive number, got {value!r}")
    try:
        return SensorInfo(id=entry["id"], side=entry["side"], kind=entry["kind"], topic=entry["topic"],
                          lon=float(lon), lat=float(lat), x=x, y=y, **accuracy)
    except (TypeError, ValueError) as exc:
        raise frames.GeoError(f"{where} ({entry['id']}): {exc}") from exc


@attrs.frozen(slots=True, eq=False)
class Geography:
    """Border, sectors, crossing points and sensor registry in the shared frame (EPSG:25833)."""

    border: LineString
    west_side: str
    east_side: str
    west_region: Polygon  # everything west of the border line, extended far north and south
    sectors: dict[str, Sector]
    crossings: dict[str, CrossingPoint]
    sensors: dict[str, SensorInfo]
    _sector_tree: shapely.STRtree
    _sector_ids: np.ndarray
    _crossings_union: Any
    _border_edges: np.ndarray  # (M, 4): x0, y0, x1, y1 of each border segment

    shared_crs = frames.SHARED_CRS

    @classmethod
    def load(cls, geo_dir: Path | str, *, border_file: str = "border.geojson", sectors_file: str = "sectors.geojson",
             crossings_file: str = "crossings.geojson", sensors_file: str = "sensors.json") -> "Geography":
        geo_dir = Path(geo_dir)
        border_path = geo_dir / border_file
        border_feature = _features(border_path)[0]
        border = _feature_geometry(border_feature, border_path, 0, "LineString")
        props = border_feature.get("properties") or {}
        west, east = props.get("west", "DE"), props.get("east", "PL")

        sectors_path = geo_dir / sectors_file
        sectors = {}
        for i, feature in enumerate(_features(sectors_path)):
            p = feature.get("properties") or {}
            if not p.get("id") or not p.get("topic"):
                raise frames.GeoError(f"{sectors_path} feature {i}: needs properties id and topic")
            sectors[p["id"]] = Sector(p["id"], p.get("name", p["id"]), p["topic"],
                                      _feature_geometry(feature, sectors_path, i, "Polygon"))
        crossings_path = geo_dir / crossings_file
        crossings = {}
        for i, feature in enumerate(_features(crossings_path)):
            p = feature.get("properties") or {}
            cid = p.get("id") or f"crossing-{i}"
            crossings[cid] = CrossingPoint(cid, p.get("kind", ""), _feature_geometry(feature, crossings_path, i, "Polygon"))

        sensors_path = geo_dir / sensors_file
        doc = _read_json(sensors_path)
        entries = doc.get("sensors") if isinstance(doc, dict) else None
        if not isinstance(entries, list):
            raise frames.GeoError(f"{sensors_path}: expected an object with a 'sensors' list")
        sensors = {}
        for i, entry in enumerate(entries):
            info = _load_sensor(entry, f"{sensors_path} sensor {i}")
            if info.id in sensors:
                raise frames.GeoError(f"{sensors_path}: duplicate sensor id {info.id!r}")
            sensors[info.id] = info
        return cls.build(border, west, east, sectors, crossings, sensors)

    @classmethod
    def build(cls, border: LineString, west: str, east: str, sectors: dict[str, Sector],
              crossings: dict[str, CrossingPoint], sensors: dict[str, SensorInfo]) -> "Geography":
        coords = np.asarray(border.coords)
        if coords[0, 1] > coords[-1, 1]:  # run the line south → north so "west" is its left side
            coords = coords[::-1]
        south, north = coords[0], coords[-1]
        west_x = coords[:, 0].min() - _FAR_M
        ring = np.vstack([[south[0], south[1] - _FAR_M], coords, [north[0], north[1] + _FAR_M],
                          [west_x, north[1] + _FAR_M], [west_x, south[1] - _FAR_M]])
        west_region = Polygon(ring)
        if not west_region.is_valid:
            raise frames.GeoError("border line cannot split the plane into a west and an east side "
                                  f"(it must run roughly north-south): {shapely.is_valid_reason(west_region)}")
        shapely.prepare(west_region)
        shapely.prepare(border)
        union = shapely.union_all([c.polygon for c in crossings.values()]) if crossings else shapely.Polygon()
        shapely.prepare(union)
        for s in sectors.values():
            shapely.prepare(s.polygon)
        edges = np.column_stack([coords[:-1], coords[1:]])
        return cls(border, west, east, west_region, sectors, crossings, sensors,
                   shapely.STRtree([s.polygon for s in sectors.values()]),
                   np.array(list(sectors), dtype=object), union, edges)

    # --- transforms (thin wrappers so callers need only the Geography) ---
    @staticmethod
    def to_shared(lon, lat):
        return frames.to_shared(lon, lat)

    @staticmethod
    def to_wgs84(x, y):
        return frames.to_wgs84(x, y)

    @staticmethod
    def from_crs(crs: str, x, y):
        """(easting|lon, northing|lat) in `crs` → shared frame."""
        return frames.from_crs(crs, x, y)

    @staticmethod
    def from_pl(easting, northing):
        return frames.from_pl(easting, northing)

    @staticmethod
    def polar_to_shared(site_lon, site_lat, bearing_deg_true, range_m):
        return polar.polar_to_shared(site_lon, site_lat, bearing_deg_true, range_m)

    @staticmethod
    def polar_covariance(bearing_deg, range_m, sigma_bearing_deg, sigma_range_m):
        return polar.polar_covariance(bearing_deg, range_m, sigma_bearing_deg, sigma_range_m)

    @staticmethod
    def grid_bearing_of_true_north(x, y):
        return frames.grid_bearing_of_true_north(x, y)

    @staticmethod
    def polar_observations(site_lon, site_lat, site_x, site_y, bearing_deg_true, range_m,
                           sigma_bearing_deg, sigma_range_m):
        """Points and covariances of polar measurements: (x, y, cov (N,2,2)) in the shared frame.

        The covariance is oriented along the grid direction from the site to the point, i.e. the
        true bearing corrected for meridian convergence (exact to the geodesic's curvature in
        the projection, which is far below a milli-degree at these ranges).
        """
        x, y = polar.polar_to_shared(site_lon, site_lat, bearing_deg_true, range_m)
        grid_bearing = np.degrees(np.arctan2(x - np.asarray(site_x, float), y - np.asarray(site_y, float)))
        return x, y, polar.polar_covariance(grid_bearing, range_m, sigma_bearing_deg, sigma_range_m)

    # --- spatial queries ---
    def sector_of(self, x, y) -> np.ndarray:
        """Sector id per point ('' outside every sector; the first listed sector on shared edges)."""
        x, y = np.atleast_1d(np.asarray(x, float)), np.atleast_1d(np.asarray(y, float))
        out = np.full(x.shape, "", dtype=object)
        if x.size == 0 or not self.sectors:
            return out
        point_idx, sector_idx = self._sector_tree.query(shapely.points(x, y), predicate="intersects")
        first = np.full(x.shape, len(self.sectors), dtype=np.intp)
        np.minimum.at(first, point_idx, sector_idx)
        hit = first < len(self.sectors)
        out[hit] = self._sector_ids[first[hit]]
        return out

    def border_side(self, x, y) -> np.ndarray:
        """'DE'/'PL' per point (the border's west/east property; points on the line count as west)."""
        inside = shapely.intersects_xy(self.west_region, np.asarray(x, float), np.asarray(y, float))
        return np.where(inside, self.west_side, self.east_side).astype(object)

    def distance_to_border(self, x, y) -> np.ndarray:
        """Shortest distance in metres from each point to the border line."""
        return shapely.distance(self.border, shapely.points(np.asarray(x, float), np.asarray(y, float)))

    def border_normal(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        """Unit vector from the nearest point of the border line to each point (east, north);
        (0, 0) for a point on the line. Used to project a position's covariance across the line."""
        x, y = np.asarray(x, float), np.asarray(y, float)
        pts = shapely.points(x, y)
        nearest = shapely.line_interpolate_point(self.border, shapely.line_locate_point(self.border, pts))
        nx, ny = x - shapely.get_x(nearest), y - shapely.get_y(nearest)
        norm = np.hypot(nx, ny)
        safe = np.where(norm > 0, norm, 1.0)
        return np.where(norm > 0, nx / safe, 0.0), np.where(norm > 0, ny / safe, 0.0)

    def in_crossing_point(self, x, y) -> np.ndarray:
        return shapely.intersects_xy(self._crossings_union, np.asarray(x, float), np.asarray(y, float))

    def crossing_points_of_segments(self, x0, y0, x1, y1):
        """Where segments (x0,y0)→(x1,y1) cross the border line.

        Returns (crosses bool[N], cx, cy (NaN where no crossing), at_crossing_point bool[N]);
        a segment that crosses more than once reports the crossing nearest its start.
        """
        x0, y0, x1, y1 = (np.atleast_1d(np.asarray(a, float)) for a in (x0, y0, x1, y1))
        n = x0.size
        cx, cy = np.full(n, np.nan), np.full(n, np.nan)
        crosses = np.zeros(n, dtype=bool)
        edges = self._border_edges
        chunk = max(1, _CHUNK_PAIRS // max(1, len(edges)))
        qx, qy = edges[:, 0], edges[:, 1]
        sx, sy = edges[:, 2] - qx, edges[:, 3] - qy
        for start in range(0, n, chunk):
            sl = slice(start, start + chunk)
            px, py = x0[sl, None], y0[sl, None]
            rx, ry = x1[sl, None] - px, y1[sl, None] - py
            denom = rx * sy - ry * sx
            dx, dy = qx - px, qy - py
            with np.errstate(divide="ignore", invalid="ignore"):
                t = (dx * sy - dy * sx) / denom
                u = (dx * ry - dy * rx) / denom
            ok = (denom != 0) & (t >= 0) & (t <= 1) & (u >= 0) & (u <= 1)
            t = np.where(ok, t, np.inf)
            best = np.argmin(t, axis=1)
            tb = t[np.arange(t.shape[0]), best]
            hit = np.isfinite(tb)
            crosses[sl] = hit
            cx[sl] = np.where(hit, px[:, 0] + tb * rx[:, 0], np.nan)
            cy[sl] = np.where(hit, py[:, 0] + tb * ry[:, 0], np.nan)
        at_cp = np.zeros(n, dtype=bool)
        if crosses.any():
            at_cp[crosses] = self.in_crossing_point(cx[crosses], cy[crosses])
        return crosses, cx, cy, at_cp

    def sensors_on_topic(self, topic: str) -> dict[str, SensorInfo]:
        return {k: v for k, v in self.sensors.items() if v.topic == topic}
