"""Where targets can go, derived from the ICD geography: the border line (run south to north),
one east-west road through each crossing-point polygon (the bridges, with their ANPR cameras),
a road parallel to the border on each side, and number plates."""
from __future__ import annotations

import string

import attrs
import numpy as np
import shapely
from shapely.geometry import LineString, Point

from borderfuse.geo.geography import Geography
from borderfuse.simulator.scenario import SimulatorError

ROAD_HALF_LENGTH_DEG = 0.08    # bridge roads run this far east and west of the crossing point (~5.4 km)
LOCAL_ROAD_OFFSET_M = 3500.0   # local roads run parallel to the border this far inside each side
ANPR_ON_ROAD_M = 300.0         # an ANPR site this close to a bridge road is a lane camera on it
LANE_OFFSET_M = 3.0            # vehicles keep right

VEHICLE_CLASSES = ("CAR", "VAN", "TRUCK", "BUS", "MOTORCYCLE")
VEHICLE_CLASS_P = (0.7, 0.15, 0.12, 0.02, 0.01)
VIENNA_SIGN = {"DE": "D", "PL": "PL", "CZ": "CZ", "LT": "LT", "UA": "UA"}
_DE_DISTRICTS = ("B", "M", "HH", "FF", "FB", "S", "CB", "LOS", "MOL", "BAR", "DD", "L", "K", "F", "H", "EH")
_PL_PREFIXES = ("FS", "FSL", "FGW", "FZ", "LU", "PO", "WX", "KR", "ZK", "DW", "EL", "GD", "TKB", "LUB", "PZ")
_NATIONS = ("DE", "PL", "CZ", "LT", "UA")
_NATION_P = (0.40, 0.45, 0.08, 0.04, 0.03)
_LETTERS = np.array(list(string.ascii_uppercase))


@attrs.frozen(slots=True, eq=False)
class BridgeRoad:
    line: LineString            # west -> east, shared frame
    border_point: tuple[float, float]
    anpr_arcs: dict[str, float]  # ANPR sensor id -> distance along `line` from its west end

    def lane(self, eastward: bool) -> np.ndarray:
        """Waypoints of the driving lane in the direction of travel (right-hand traffic)."""
        pts = shapely.get_coordinates(self.line)
        if eastward:
            return pts + np.array([0.0, -LANE_OFFSET_M])
        return pts[::-1] + np.array([0.0, LANE_OFFSET_M])


@attrs.frozen(slots=True, eq=False)
class Layout:
    border: LineString  # south -> north, shared frame
    length: float
    crossings_union: object
    bridge_roads: tuple[BridgeRoad, ...]
    local_roads: tuple[LineString, ...]

    @classmethod
    def build(cls, geo: Geography) -> "Layout":
        coords = shapely.get_coordinates(geo.border)
        if coords[0, 1] > coords[-1, 1]:
            coords = coords[::-1]
        border = LineString(coords)
        shapely.prepare(border)
        union = shapely.union_all([c.polygon for c in geo.crossings.values()])
        roads = []
        for cp in geo.crossings.values():
            lon_c, lat_c = geo.to_wgs84(*cp.polygon.centroid.coords[0])
            lons = np.linspace(lon_c - ROAD_HALF_LENGTH_DEG, lon_c + ROAD_HALF_LENGTH_DEG, 81)
            line = LineString(np.column_stack(geo.to_shared(lons, np.full_like(lons, lat_c))))
            hit = line.intersection(border)
            if hit.is_empty:
                raise SimulatorError(f"crossing point {cp.id}: an east-west road through it misses the border")
            anpr = {s.id: line.project(Point(s.x, s.y)) for s in geo.sensors.values()
                    if s.kind == "anpr" and line.distance(Point(s.x, s.y)) <= ANPR_ON_ROAD_M}
            roads.append(BridgeRoad(line, shapely.get_coordinates(hit)[0].tolist(), anpr))
        local = []
        for offset in (LOCAL_ROAD_OFFSET_M, -LOCAL_ROAD_OFFSET_M):
            road = shapely.offset_curve(border, offset, join_style="round").simplify(20.0)
            if road.geom_type == "MultiLineString":
                road = max(road.geoms, key=lambda g: g.length)
            local.append(road)
        if not roads:
            raise SimulatorError("the geography has no crossing points: no bridge roads for vehicles")
        return cls(border, border.length, union, tuple(roads), tuple(local))

    def frames_at(self, arcs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Points on the border at arc lengths, unit tangents (northward) and unit normals (eastward)."""
        arcs = np.atleast_1d(np.asarray(arcs, float))
        p = shapely.get_coordinates(shapely.line_interpolate_point(self.border, arcs))
        ahead = shapely.get_coordinates(shapely.line_interpolate_point(self.border, arcs + 5.0))
        behind = shapely.get_coordinates(shapely.line_interpolate_point(self.border, arcs - 5.0))
        tang = ahead - behind
        tang /= np.hypot(tang[:, 0], tang[:, 1])[:, None]
        normal = np.column_stack([tang[:, 1], -tang[:, 0]])
        return p, tang, normal

    def frame_at(self, arc: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        p, t, n = self.frames_at([arc])
        return p[0], t[0], n[0]

    def sample_arc(self, rng: np.random.Generator, min_gap_to_bcp: float, margin: float = 1500.0) -> float:
        """A random arc length along the border at least `min_gap_to_bcp` from every crossing point."""
        for _ in range(200):
            s = rng.uniform(margin, self.length - margin)
            if min_gap_to_bcp <= 0 or self.crossings_union.distance(self.border.interpolate(s)) >= min_gap_to_bcp:
                return float(s)
        raise SimulatorError(f"no stretch of border {min_gap_to_bcp:.0f} m away from every crossing point")


def random_plate(rng: np.random.Generator) -> tuple[str, str]:
    """(plate as written on the car, ISO alpha-2 nationality)."""
    nat = str(rng.choice(_NATIONS, p=_NATION_P))

    def letters(n):
        return "".join(rng.choice(_LETTERS, n))

    def digits(n, lead=True):
        first = str(rng.integers(1, 10)) if lead else str(rng.integers(0, 10))
        return first + "".join(str(d) for d in rng.integers(0, 10, n - 1))

    if nat == "DE":
        return f"{rng.choice(_DE_DISTRICTS)}-{letters(int(rng.integers(1, 3)))} {digits(int(rng.integers(1, 5)))}", nat
    if nat == "PL":
        prefix = str(rng.choice(_PL_PREFIXES))
        if rng.uniform() < 0.2:
            return f"{prefix} {digits(1)}{letters(2)}{digits(2, False)}", nat
        return f"{prefix} {digits(5 if len(prefix) == 2 else 4)}", nat
    if nat == "CZ":
        return f"{digits(1)}{letters(1)}{digits(1)} {digits(4, False)}", nat
    if nat == "LT":
        return f"{letters(3)} {digits(3, False)}", nat
    return f"{letters(2)} {digits(4, False)} {letters(2)}", nat
