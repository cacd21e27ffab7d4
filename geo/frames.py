"""Coordinate frames: the shared metric frame and cached, vectorised CRS transforms.

The shared frame is ETRS89 / UTM 33N (EPSG:25833), (easting, northing) metres; see
docs/architecture.md. Every transformer is built once per (source, target) pair with
`always_xy=True`, so arguments are always (easting|lon, northing|lat) whatever the CRS's own
axis order is; readers of files that use a CRS's own axis order (EPSG:2180 sites give `x` =
northing) must swap first, see `site_to_xy`.
"""
from __future__ import annotations

import functools
from typing import Any, Mapping

import numpy as np
import pyproj
from pyproj.exceptions import CRSError, ProjError

SHARED_CRS = "EPSG:25833"
WGS84_CRS = "EPSG:4326"
PL_CRS = "EPSG:2180"


class GeoError(ValueError):
    """A geography file, CRS or coordinate that cannot be used; the message says which and why."""


@functools.lru_cache(maxsize=64)
def transformer(source_crs: str, target_crs: str) -> pyproj.Transformer:
    """The cached transformer source → target, (x=easting|lon, y=northing|lat) order."""
    try:
        return pyproj.Transformer.from_crs(source_crs, target_crs, always_xy=True)
    except CRSError as exc:
        raise GeoError(f"cannot build a transform {source_crs} -> {target_crs}: {exc}") from exc


@functools.lru_cache(maxsize=64)
def crs_info(crs: str) -> pyproj.CRS:
    try:
        return pyproj.CRS.from_user_input(crs)
    except CRSError as exc:
        raise GeoError(f"unknown CRS {crs!r}: {exc}") from exc


def transform(source_crs: str, target_crs: str, x, y) -> tuple[np.ndarray, np.ndarray]:
    """Transform arrays (easting|lon, northing|lat) from one CRS to another; float arrays out.

    Points pyproj cannot transform come back as inf (pyproj's convention), never raise.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if source_crs == target_crs:
        return x.copy(), y.copy()
    try:
        tx, ty = transformer(source_crs, target_crs).transform(x, y, errcheck=False)
    except ProjError as exc:  # pragma: no cover - errcheck=False maps failures to inf
        raise GeoError(f"transform {source_crs} -> {target_crs} failed: {exc}") from exc
    return np.asarray(tx, dtype=float), np.asarray(ty, dtype=float)


def to_shared(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 (lon, lat) degrees → shared frame (x, y) metres."""
    return transform(WGS84_CRS, SHARED_CRS, lon, lat)


def to_wgs84(x, y) -> tuple[np.ndarray, np.ndarray]:
    """Shared frame (x, y) metres → WGS84 (lon, lat) degrees."""
    return transform(SHARED_CRS, WGS84_CRS, x, y)


def from_crs(crs: str, x, y) -> tuple[np.ndarray, np.ndarray]:
    """Any CRS (easting|lon, northing|lat order) → shared frame."""
    return transform(crs, SHARED_CRS, x, y)


def from_pl(easting, northing) -> tuple[np.ndarray, np.ndarray]:
    """EPSG:2180 (easting, northing) → shared frame. Note EPSG:2180's own order is northing first."""
    return transform(PL_CRS, SHARED_CRS, easting, northing)


def grid_bearing_of_true_north(x, y) -> np.ndarray:
    """Degrees clockwise from the shared frame's grid north to true north at shared-frame points.

    A true bearing b is the grid bearing b + this. Computed from the projection itself (a short
    step north along the meridian) so it holds for any shared CRS, not just a UTM formula.
    """
    lon, lat = to_wgs84(x, y)
    step_deg = 1e-4  # ~11 m: the meridian is straight to far below a micro-degree over it
    nx, ny = to_shared(lon, lat + step_deg)
    return np.degrees(np.arctan2(nx - np.asarray(x, float), ny - np.asarray(y, float)))


def _number(site: Mapping[str, Any], key: str, where: str) -> float:
    value = site.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise GeoError(f"{where}: site.{key} must be a finite number, got {value!r}")
    return float(value)


def site_to_xy(site: Mapping[str, Any], where: str) -> tuple[float, float]:
    """A registry `site` object (`crs` plus coordinates) → shared-frame (x, y).

    Coordinates are named `e`/`n` (easting/northing), `lon`/`lat`, or `x`/`y` in the CRS's
    OWN axis order (EPSG:2180: `x` is northing), which is read from the CRS definition.
    """
    crs = site.get("crs")
    if not isinstance(crs, str) or not crs:
        raise GeoError(f"{where}: site.crs missing or not a string: {crs!r}")
    try:
        info = crs_info(crs)
    except GeoError as exc:
        raise GeoError(f"{where}: {exc}") from exc
    if "e" in site or "n" in site:
        east, north = _number(site, "e", where), _number(site, "n", where)
    elif "lon" in site or "lat" in site:
        east, north = _number(site, "lon", where), _number(site, "lat", where)
    elif "x" in site or "y" in site:
        first, second = _number(site, "x", where), _number(site, "y", where)
        directions = [axis.direction.lower() for axis in info.axis_info[:2]]
        if directions and directions[0] in ("north", "south"):
            east, north = second, first
        else:
            east, north = first, second
    else:
        raise GeoError(f"{where}: site has none of e/n, lon/lat, x/y coordinates: {dict(site)!r}")
    try:
        x, y = from_crs(crs, east, north)
    except GeoError as exc:
        raise GeoError(f"{where}: {exc}") from exc
    if not (np.isfinite(x) and np.isfinite(y)):
        raise GeoError(f"{where}: site ({east}, {north}) in {crs} does not transform to the shared frame")
    return float(x), float(y)
