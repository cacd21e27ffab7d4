"""The targets present in one time chunk, sampled on a 1 s grid, and the vectorised queries the
sensor models make of them: where target j is at time t (linear between grid samples), how fast
it moves, and true geodesic bearings and distances from a site."""
from __future__ import annotations

import attrs
import numpy as np

from borderfuse.geo import frames
from borderfuse.geo.polar import GEOD
from borderfuse.simulator.world import Target

CLASS_CODES = ("person", "vehicle", "animal", "drone", "unknown")
GRID_STEP_S = 1.0


@attrs.frozen(slots=True, eq=False)
class Snapshot:
    targets: tuple[Target, ...]
    g0: float
    xs: np.ndarray  # (grid, target)
    ys: np.ndarray
    t_start: np.ndarray
    t_end: np.ndarray
    cls_code: np.ndarray  # index into CLASS_CODES
    alt_m: np.ndarray     # NaN when not flying

    @classmethod
    def build(cls, targets: list[Target], ta: float, tb: float, pad_s: float = 6.0) -> "Snapshot":
        g0 = np.floor(ta) - 2.0
        grid = np.arange(g0, np.ceil(tb) + pad_s + GRID_STEP_S, GRID_STEP_S)
        xs = np.empty((grid.size, len(targets)))
        ys = np.empty((grid.size, len(targets)))
        for j, tg in enumerate(targets):  # one interp per target per chunk, not per point
            xs[:, j] = np.interp(grid, tg.tw, tg.xw)
            ys[:, j] = np.interp(grid, tg.tw, tg.yw)
        return cls(tuple(targets), float(g0), xs, ys,
                   np.array([t.t_start for t in targets]), np.array([t.t_end for t in targets]),
                   np.array([CLASS_CODES.index(t.cls) for t in targets], dtype=np.int8),
                   np.array([np.nan if t.alt_m is None else t.alt_m for t in targets]))

    @property
    def n(self) -> int:
        return len(self.targets)

    def state(self, times: np.ndarray, j: np.ndarray):
        """(x, y, vx, vy, active) of target columns `j` at `times` (same shapes)."""
        u = (np.asarray(times, float) - self.g0) / GRID_STEP_S
        i0 = np.clip(np.floor(u).astype(np.intp), 0, self.xs.shape[0] - 2)
        f = u - i0
        x0, x1 = self.xs[i0, j], self.xs[i0 + 1, j]
        y0, y1 = self.ys[i0, j], self.ys[i0 + 1, j]
        active = (times >= self.t_start[j]) & (times <= self.t_end[j])
        return (x0 + (x1 - x0) * f, y0 + (y1 - y0) * f, (x1 - x0) / GRID_STEP_S, (y1 - y0) / GRID_STEP_S,
                active)

    def pairs(self, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every (time, target column) pair, flattened."""
        tt, jj = np.meshgrid(np.asarray(times, float), np.arange(self.n), indexing="ij")
        return tt.ravel(), jj.ravel()


def geodesic_from(site_lon: float, site_lat: float, x: np.ndarray, y: np.ndarray):
    """True azimuth (deg clockwise from true north, 0..360) and geodesic distance (m) from a site."""
    lon, lat = frames.to_wgs84(x, y)
    if lon.size == 0:
        return np.empty(0), np.empty(0)
    az, _, dist = GEOD.inv(np.full(lon.shape, site_lon), np.full(lat.shape, site_lat), lon, lat)
    return np.mod(np.asarray(az, float), 360.0), np.asarray(dist, float)


def true_course(x: np.ndarray, y: np.ndarray, vx: np.ndarray, vy: np.ndarray) -> np.ndarray:
    """Direction of motion, degrees clockwise from TRUE north (0..360), of shared-frame velocities."""
    if x.size == 0:
        return np.empty(0)
    lon0, lat0 = frames.to_wgs84(x, y)
    lon1, lat1 = frames.to_wgs84(x + vx, y + vy)
    az, _, _ = GEOD.inv(lon0, lat0, lon1, lat1)
    return np.mod(np.asarray(az, float), 360.0)
