"""borderfuse.geo.polar: polar measurements land where an independent geodesic computation puts them."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from borderfuse.geo import frames, polar
from borderfuse.geo.geography import Geography
from sensor_records import GEO_DIR

GRS80_A = 6378137.0
GRS80_F = 1 / 298.257222101


def vincenty_direct(lon_deg, lat_deg, azimuth_deg, distance_m, a=GRS80_A, f=GRS80_F):
    """Vincenty (1975) direct problem, scalar, written out here as the independent reference."""
    b = (1 - f) * a
    alpha1 = math.radians(azimuth_deg)
    tan_u1 = (1 - f) * math.tan(math.radians(lat_deg))
    cos_u1 = 1 / math.sqrt(1 + tan_u1 ** 2)
    sin_u1 = tan_u1 * cos_u1
    sigma1 = math.atan2(tan_u1, math.cos(alpha1))
    sin_alpha = cos_u1 * math.sin(alpha1)
    cos2_alpha = 1 - sin_alpha ** 2
    u2 = cos2_alpha * (a * a - b * b) / (b * b)
    big_a = 1 + u2 / 16384 * (4096 + u2 * (-768 + u2 * (320 - 175 * u2)))
    big_b = u2 / 1024 * (256 + u2 * (-128 + u2 * (74 - 47 * u2)))
    sigma = distance_m / (b * big_a)
    for _ in range(100):
        cos_2sm = math.cos(2 * sigma1 + sigma)
        delta = big_b * math.sin(sigma) * (cos_2sm + big_b / 4 * (
            math.cos(sigma) * (-1 + 2 * cos_2sm ** 2)
            - big_b / 6 * cos_2sm * (-3 + 4 * math.sin(sigma) ** 2) * (-3 + 4 * cos_2sm ** 2)))
        new_sigma = distance_m / (b * big_a) + delta
        if abs(new_sigma - sigma) < 1e-13:
            sigma = new_sigma
            break
        sigma = new_sigma
    cos_2sm = math.cos(2 * sigma1 + sigma)
    tmp = sin_u1 * math.sin(sigma) - cos_u1 * math.cos(sigma) * math.cos(alpha1)
    lat2 = math.atan2(sin_u1 * math.cos(sigma) + cos_u1 * math.sin(sigma) * math.cos(alpha1),
                      (1 - f) * math.sqrt(sin_alpha ** 2 + tmp ** 2))
    lam = math.atan2(math.sin(sigma) * math.sin(alpha1),
                     cos_u1 * math.cos(sigma) - sin_u1 * math.sin(sigma) * math.cos(alpha1))
    c = f / 16 * cos2_alpha * (4 + f * (4 - 3 * cos2_alpha))
    big_l = lam - (1 - c) * f * sin_alpha * (sigma + c * math.sin(sigma) * (
        cos_2sm + c * math.cos(sigma) * (-1 + 2 * cos_2sm ** 2)))
    return lon_deg + math.degrees(big_l), math.degrees(lat2)


@pytest.fixture(scope="module")
def geo():
    return Geography.load(GEO_DIR)


@pytest.mark.parametrize("bearing", [0.0, 37.5, 90.0, 181.0, 270.0, 359.9])
def test_radar_plot_at_10_km_lands_within_half_a_metre_of_vincenty(geo, bearing):
    site = geo.sensors["PL-R1"]
    x, y = geo.polar_to_shared(site.lon, site.lat, bearing, 10_000.0)
    ref_lon, ref_lat = vincenty_direct(site.lon, site.lat, bearing, 10_000.0)
    rx, ry = frames.to_shared(ref_lon, ref_lat)
    assert math.hypot(x - rx, y - ry) <= 0.5


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 360), st.floats(1, 15_000)), min_size=1, max_size=30))
def test_geodesic_inverse_recovers_bearing_and_range(measurements):
    bearing, rng = np.array(measurements).T
    lon, lat = polar.polar_to_lonlat(14.6, 52.3, bearing, rng)
    az, _, dist = polar.GEOD.inv(np.full_like(lon, 14.6), np.full_like(lat, 52.3), lon, lat)
    assert np.allclose(dist, rng, atol=1e-3)
    assert np.all(np.abs((np.asarray(az) - bearing + 180) % 360 - 180) < 1e-6)


def test_grid_bearings_would_put_a_plot_hundreds_of_metres_off(geo):
    """Treating the true bearing as a grid bearing in the PL site's CRS (EPSG:2180, ~3.5° convergence
    here) puts a 10 km plot ~600 m away from where it is."""
    site = geo.sensors["PL-R1"]
    pe, pn = frames.transform(frames.SHARED_CRS, frames.PL_CRS, site.x, site.y)
    bearing, rng = 300.0, 10_000.0
    naive = frames.from_pl(pe + rng * math.sin(math.radians(bearing)), pn + rng * math.cos(math.radians(bearing)))
    right = geo.polar_to_shared(site.lon, site.lat, bearing, rng)
    error = math.hypot(naive[0] - right[0], naive[1] - right[1])
    assert 400 < error < 800


def test_polar_to_shared_is_vectorised(geo):
    site = geo.sensors["PL-R2"]
    x, y = geo.polar_to_shared(np.full(3, site.lon), np.full(3, site.lat), [0.0, 90.0, 180.0], [1000.0, 2000.0, 3000.0])
    assert x.shape == (3,)
    assert y[0] > site.y and x[1] > site.x and y[2] < site.y


@pytest.mark.parametrize("bearing", [0.0, 45.0, 135.0, 300.0])
def test_polar_covariance_puts_range_error_along_and_bearing_error_across(bearing):
    cov = polar.polar_covariance(bearing, 5000.0, 0.25, 12.0)[0]
    theta = math.radians(bearing)
    radial = np.array([math.sin(theta), math.cos(theta)])
    across = np.array([math.cos(theta), -math.sin(theta)])
    assert radial @ cov @ radial == pytest.approx(144.0)
    assert across @ cov @ across == pytest.approx((5000 * math.radians(0.25)) ** 2)
    assert radial @ cov @ across == pytest.approx(0.0, abs=1e-9)
    assert np.allclose(cov, cov.T)


def test_polar_observations_orient_the_covariance_along_the_grid_line_of_sight(geo):
    """True bearing 0 from a site west of 15 E points slightly east of grid north (convergence);
    the long axis of a camera's range error must follow that, not the raw bearing."""
    s = geo.sensors["PL-C1"]
    x, y, cov = geo.polar_observations(s.lon, s.lat, s.x, s.y, 0.0, 5000.0, 0.4, 400.0)
    w, vecs = np.linalg.eigh(cov[0])
    major = vecs[:, np.argmax(w)]
    grid_bearing = math.degrees(math.atan2(abs(major[0]), abs(major[1])))
    expected = frames.grid_bearing_of_true_north(s.x, s.y)
    assert grid_bearing == pytest.approx(float(expected), abs=0.01)
    assert grid_bearing > 0.2


def test_isotropic_covariance():
    assert np.array_equal(polar.isotropic_covariance([2.0, 3.0]), np.array([np.eye(2) * 4, np.eye(2) * 9]))
