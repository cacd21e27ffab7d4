"""From parsed records to observations: all positions of a batch projected with one call per kind.

Decoders turn a record into a `Pending` (validated fields plus raw geometry); `project` places
every Pending of a batch in the shared frame at once — geodesic forward for polar sensors,
WGS84 → shared for UAVs, none for DE positions and ANPR sites — checks each position against
its sensor's range, and builds the Observations.
"""
from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from borderfuse.geo import polar
from borderfuse.geo.geography import Geography, SensorInfo
from borderfuse.sensors.base import DecodeError, ImpossibleValueError, Observation, RawRecord

POLAR, LONLAT, SHARED, SITE = "polar", "lonlat", "shared", "site"
ANPR_SIGMA_M = 5.0  # an ANPR read places the vehicle in the camera's lane: a few metres
MAX_RANGE_FACTOR = 1.5  # ICD: farther than 1.5 × max_range_m from the site is impossible


@attrs.define(slots=True)
class Pending:
    """A validated record whose position is not yet in the shared frame.

    `a`, `b` are (true bearing deg, range m) for POLAR, (lon, lat) for LONLAT, (x, y) for
    SHARED, unused for SITE. `sigma_m` is the isotropic 1-sigma (LONLAT/SHARED). `speed_course`
    is (m/s, deg from true north) when the sensor reports a velocity. `fields` are the rest of
    the Observation's keyword arguments.
    """

    record: RawRecord
    sensor: SensorInfo
    geometry: str
    a: float = 0.0
    b: float = 0.0
    sigma_m: float = 0.0
    speed_course: tuple[float, float] | None = None
    fields: dict[str, Any] = attrs.Factory(dict)


def _m(metres: float) -> str:
    """Metres for a message: plain to 0.1 m, but a 1e300 m absurdity stays short."""
    return f"{metres:.1f}" if abs(metres) < 1e12 else f"{metres:.3g}"


def project(geography: Geography, pending: list[Pending]) -> list[Observation | DecodeError]:
    """Observations (or the DecodeError of the ones placed impossibly far) in `pending`'s order."""
    # Absurd inputs (a position of 1e300 m) may overflow to inf on the way; every result is then
    # checked against the sensor's range, which rejects non-finite positions.
    with np.errstate(over="ignore", invalid="ignore"):
        return _project(geography, pending)


def _project(geography: Geography, pending: list[Pending]) -> list[Observation | DecodeError]:
    n = len(pending)
    x, y = np.full(n, np.nan), np.full(n, np.nan)
    cov = np.zeros((n, 2, 2))
    kinds = np.array([p.geometry for p in pending], dtype=object)

    idx = np.flatnonzero(kinds == POLAR)
    if idx.size:
        items = [pending[i] for i in idx]
        bearing = np.array([p.a for p in items])
        rng = np.array([p.b for p in items])
        sigma_angle = np.array([p.sensor.sigma_angle_deg for p in items], dtype=float)
        sigma_range = np.array([p.sensor.sigma_range_m if p.sensor.sigma_range_m is not None
                                else p.sensor.sigma_range_frac * p.b for p in items], dtype=float)
        site = np.array([(p.sensor.lon, p.sensor.lat, p.sensor.x, p.sensor.y) for p in items])
        x[idx], y[idx], cov[idx] = geography.polar_observations(
            site[:, 0], site[:, 1], site[:, 2], site[:, 3], bearing, rng, sigma_angle, sigma_range)

    idx = np.flatnonzero(kinds == LONLAT)
    if idx.size:
        x[idx], y[idx] = geography.to_shared([pending[i].a for i in idx], [pending[i].b for i in idx])
    idx = np.flatnonzero(kinds == SHARED)
    if idx.size:
        x[idx] = [pending[i].a for i in idx]
        y[idx] = [pending[i].b for i in idx]
    idx = np.flatnonzero((kinds == LONLAT) | (kinds == SHARED))
    if idx.size:
        cov[idx] = polar.isotropic_covariance([pending[i].sigma_m for i in idx])
    idx = np.flatnonzero(kinds == SITE)
    if idx.size:
        x[idx] = [pending[i].sensor.x for i in idx]
        y[idx] = [pending[i].sensor.y for i in idx]
        cov[idx] = polar.isotropic_covariance(np.full(idx.size, ANPR_SIGMA_M))

    site_xy = np.array([(p.sensor.x, p.sensor.y) for p in pending]).reshape(n, 2)
    limit = np.array([MAX_RANGE_FACTOR * p.sensor.max_range_m if p.sensor.max_range_m is not None else np.inf
                      for p in pending])
    distance = np.hypot(x - site_xy[:, 0], y - site_xy[:, 1])
    too_far = ~(distance <= limit)  # also catches NaN/inf from points pyproj could not transform

    velocity = np.full((n, 2), np.nan)
    idx = np.flatnonzero([p.speed_course is not None for p in pending])
    if idx.size:
        speed, course = np.array([pending[i].speed_course for i in idx]).T
        grid_course = np.radians(course + geography.grid_bearing_of_true_north(x[idx], y[idx]))
        velocity[idx, 0] = speed * np.sin(grid_course)
        velocity[idx, 1] = speed * np.cos(grid_course)

    out: list[Observation | DecodeError] = []
    for i, p in enumerate(pending):
        rec, sensor = p.record, p.sensor
        if too_far[i]:
            limit_text = (f"more than {MAX_RANGE_FACTOR} x max_range_m={sensor.max_range_m:.0f}"
                          if sensor.max_range_m is not None else "not a finite point")
            out.append(ImpossibleValueError(
                f"position ({_m(x[i])}, {_m(y[i])}) is {_m(distance[i])} m from {sensor.id}'s site, {limit_text} "
                "(swapped axes or wrong CRS?)", field="position").locate(rec))
            continue
        try:
            out.append(Observation(
                side=sensor.side, sensor_id=sensor.id, sensor_kind=sensor.kind,
                xy=(x[i], y[i]), cov=cov[i], velocity=velocity[i] if p.speed_course is not None else None,
                topic=rec.topic, partition=rec.partition, offset=rec.offset, **p.fields))
        except ValueError as exc:  # Observation's own validators (non-finite cov/velocity): never escape
            out.append(ImpossibleValueError(f"observation rejected: {exc}").locate(rec))
    return out
