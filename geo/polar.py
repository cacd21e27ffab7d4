"""Polar (range, bearing) measurements from a site → shared-frame points and covariances.

Bearings from the PL sensors are clockwise from TRUE north. The point is found by a geodesic
forward computation on the GRS80 ellipsoid (ETRS89's; it differs from WGS84's by 0.1 mm in the
semi-minor axis, far below any sensor's accuracy) and then projected, so neither meridian
convergence (~3.5° in EPSG:2180 here, ~0.4° in the shared UTM frame) nor the projection's scale
error enters the position.
"""
from __future__ import annotations

import numpy as np
import pyproj

from borderfuse.geo.frames import to_shared

GEOD = pyproj.Geod(ellps="GRS80")


def polar_to_lonlat(site_lon, site_lat, bearing_deg_true, range_m) -> tuple[np.ndarray, np.ndarray]:
    """Geodesic forward: the (lon, lat) reached from the site along a true bearing over a range."""
    site_lon, site_lat, bearing, rng = np.broadcast_arrays(
        *(np.asarray(a, dtype=float) for a in (site_lon, site_lat, bearing_deg_true, range_m)))
    lon, lat, _ = GEOD.fwd(site_lon.ravel(), site_lat.ravel(), bearing.ravel(), rng.ravel())
    return np.asarray(lon, float).reshape(site_lon.shape), np.asarray(lat, float).reshape(site_lon.shape)


def polar_to_shared(site_lon, site_lat, bearing_deg_true, range_m) -> tuple[np.ndarray, np.ndarray]:
    """Geodesic forward from the site, then into the shared frame: (x, y) metres."""
    lon, lat = polar_to_lonlat(site_lon, site_lat, bearing_deg_true, range_m)
    return to_shared(lon, lat)


def polar_covariance(bearing_deg, range_m, sigma_bearing_deg, sigma_range_m) -> np.ndarray:
    """(N, 2, 2) Cartesian covariance (east, north) of a range/bearing measurement.

    `bearing_deg` must be the GRID bearing of the line of sight in the target frame (clockwise
    from the frame's grid north): the radial error lies along it, the cross-range error
    (range × sigma_bearing) across it. For a true bearing, add the frame's
    `grid_bearing_of_true_north`, or pass the grid direction of (point − site), which is what
    `Geography.polar_observations` does. Linearised: fine while range × sigma_bearing << range.
    """
    bearing, rng, sb, sr = np.broadcast_arrays(
        *(np.atleast_1d(np.asarray(a, dtype=float)) for a in (bearing_deg, range_m, sigma_bearing_deg, sigma_range_m)))
    theta = np.radians(bearing)
    radial = np.stack([np.sin(theta), np.cos(theta)], axis=-1)        # unit vector along the line of sight
    across = np.stack([np.cos(theta), -np.sin(theta)], axis=-1)       # unit vector across it
    var_radial = sr ** 2
    var_across = (rng * np.radians(sb)) ** 2
    return (var_radial[:, None, None] * radial[:, :, None] * radial[:, None, :]
            + var_across[:, None, None] * across[:, :, None] * across[:, None, :])


def isotropic_covariance(sigma_m) -> np.ndarray:
    """(N, 2, 2) covariance of a position with the same 1-sigma error in every direction."""
    sigma = np.atleast_1d(np.asarray(sigma_m, dtype=float))
    return (sigma ** 2)[:, None, None] * np.eye(2)[None, :, :]
