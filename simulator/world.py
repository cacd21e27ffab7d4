"""The true world: targets and their planned paths in the shared frame (EPSG:25833, metres).

Every target's whole path is planned when it spawns (waypoints with times, piecewise linear), so
where it is at any time, where and when it crosses the border, and when it passes an ANPR camera
are known exactly; that is what the ground truth is computed from. Targets live in slots: a
slot's target is replaced by a new one of the same kind when it leaves, so the number present
stays at `ScenarioConfig.targets`.
"""
from __future__ import annotations

import attrs
import numpy as np
import shapely
from shapely.geometry import LineString, Point

from borderfuse.geo.geography import Geography
from borderfuse.simulator import layout as lay
from borderfuse.simulator.dwell import dwell_hits
from borderfuse.simulator.scenario import TARGET_KINDS, ScenarioConfig, SimulatorError

KIND_CLASS = {"crossing": "person", "crossing_at_bcp": "person", "loiter": "person", "walker": "person",
              "vehicle": "vehicle", "local_vehicle": "vehicle", "drone": "drone", "animal": "animal"}
LOITER_DWELL_S = 300.0  # the ICD's default dwell: the truth's loitering time is dwell start + this
HARD_EPISODE_S = 2700.0  # a hard night's stressor programme: every 45 minutes
_PLAN_TRIES = 60


@attrs.frozen(slots=True)
class Passage:
    """A vehicle passing an ANPR camera site (read or not is decided by the sensor model)."""

    time: float
    sensor_id: str
    toward: str  # side the vehicle is driving into: "DE" or "PL"
    read: bool   # drawn at planning so the truth knows it


@attrs.frozen(slots=True)
class Crossing:
    time: float
    x: float
    y: float
    at_crossing_point: bool


@attrs.frozen(slots=True, eq=False)
class Target:
    index: int
    id: str
    kind: str
    cls: str
    t_start: float
    tw: np.ndarray  # waypoint times, s from t0 (plan may start before t_start: spawned mid-path)
    xw: np.ndarray
    yw: np.ndarray
    alt_m: float | None = None
    plate: str | None = None
    nat: str | None = None  # ISO alpha-2
    hotlisted: bool = False
    vehicle_class: str | None = None
    passages: tuple[Passage, ...] = ()
    crossings: tuple[Crossing, ...] = ()
    dwell_start: float | None = None  # loiterers: when the lingering starts
    # Hard nights (stressors.py): the stressor this target plays, the group it leads (member ids,
    # itself first), whether its crossings are a group member's (no incident of its own), and the
    # negatives the truth lists for it: kind, every how many seconds, between which times.
    stressor: str | None = None
    group: tuple[str, ...] = ()
    group_member: bool = False
    negative_kind: str | None = None
    negative_every_s: float = 60.0
    negative_window: tuple[float, float] | None = None

    @property
    def t_end(self) -> float:
        return float(self.tw[-1])

    def position(self, t) -> tuple[np.ndarray, np.ndarray]:
        return np.interp(t, self.tw, self.xw), np.interp(t, self.tw, self.yw)

    def key_times(self) -> list[float]:
        """Times at which the truth has something to say about this target."""
        times = [c.time for c in self.crossings] + [p.time for p in self.passages]
        if self.dwell_start is not None:
            times.append(self.dwell_start + LOITER_DWELL_S)
        return times


def _timed(points: np.ndarray, speed, pauses: np.ndarray | None = None) -> np.ndarray:
    """Waypoint times from 0: each leg walked at `speed` (scalar or per leg), then a pause."""
    seg = np.hypot(*np.diff(points, axis=0).T)
    dt = seg / np.asarray(speed, float)
    if pauses is not None:
        dt = dt + pauses
    return np.concatenate([[0.0], np.cumsum(dt)])


class World:
    """Plans targets slot by slot, lazily, as far ahead as asked (`plan_until`)."""

    def __init__(self, geo: Geography, config: ScenarioConfig, rng: np.random.Generator):
        self.geo = geo
        self.config = config
        self.rng = rng
        self.layout = lay.Layout.build(geo)
        self.targets: list[Target] = []
        self.duration = config.duration_s
        weights = np.array([config.mix.get(k, 0.0) for k in TARGET_KINDS], float)
        counts = np.floor(weights / weights.sum() * config.targets).astype(int)
        remainder = weights / weights.sum() * config.targets - counts
        for i in np.argsort(-remainder, kind="stable")[: config.targets - counts.sum()]:
            counts[i] += 1
        self.slot_kinds = [k for k, c in zip(TARGET_KINDS, counts) for _ in range(c)]
        stagger = min(config.start_stagger_s, (self.duration or 600.0) / 10)
        if config.hard:
            # A hard night's ordinary traffic: each slot's first target sets out at a random time of
            # the first 60 % of an episode, from the start of its path; replacements come rarely.
            self.slot_next = list(rng.uniform(0.0, 0.6 * self.episode_s, len(self.slot_kinds)))
            self.slot_first = [False] * len(self.slot_kinds)
        else:
            self.slot_next = list(rng.uniform(0.0, stagger, len(self.slot_kinds)))
            self.slot_first = [True] * len(self.slot_kinds)
        self.ordinary_count = 0  # T001.. numbering, apart from the hard night's H001..
        self.stressor_count = 0
        self.program = None  # a hard night's StressorProgram (engine.py), planned along with the slots

    @property
    def episode_s(self) -> float:
        """A hard night's stressor programme repeats every episode (45 min, or the whole run if shorter)."""
        return min(self.duration or HARD_EPISODE_S, HARD_EPISODE_S)

    # --- planning ---
    def plan_until(self, t: float) -> None:
        """Plan every target that spawns before `t`."""
        for slot, kind in enumerate(self.slot_kinds):
            while self.slot_next[slot] < t:
                target = self._spawn(kind, self.slot_next[slot], self.slot_first[slot])
                self.slot_first[slot] = False
                self.targets.append(target)
                gap = (1200.0, 2700.0) if self.config.hard else (5.0, 60.0)
                self.slot_next[slot] = target.t_end + self.rng.uniform(*gap)
        if self.program is not None:
            self.program.plan_until(t)

    def add(self, kind: str, cls: str, plan: dict, **fields) -> Target:
        """A hard night's stressor target (id H001..), from a plan of `_finish` with absolute times."""
        self.stressor_count += 1
        tw = plan.pop("tw")
        crossings = tuple(Crossing(*c) for c in plan.pop("crossings_rel", ()))
        target = Target(index=len(self.targets), id=f"H{self.stressor_count:03d}", kind=kind, cls=cls,
                        t_start=float(tw[0]), tw=tw, crossings=crossings, **plan, **fields)
        self.targets.append(target)
        return target

    def active_between(self, ta: float, tb: float) -> list[Target]:
        return [tg for tg in self.targets if tg.t_start < tb and tg.t_end > ta]

    def _spawn(self, kind: str, t_spawn: float, first: bool) -> Target:
        plan = getattr(self, f"_plan_{kind}")()
        tw = plan.pop("tw")
        rel_events = _key_times_rel(plan)
        advance = 0.0
        if first and kind != "loiter" and rel_events:
            # The opening population is already on its way (steady state), but no event may come
            # before the sensors have had 90 s to see the target.
            advance = self.rng.uniform(0.0, max(0.0, min(tw[-1] * 0.8, min(rel_events) - 90.0)))
        shift = t_spawn - advance
        if self.duration is not None and rel_events:
            # Keep events out of the last 40 s of a recording: nothing could see them through.
            if any(self.duration - 40.0 <= shift + r < self.duration for r in rel_events):
                shift += 60.0
                t_spawn += 60.0
        index = len(self.targets)
        self.ordinary_count += 1
        tw = tw + shift
        crossings = tuple(Crossing(c[0] + shift, c[1], c[2], c[3]) for c in plan.pop("crossings_rel", ())
                          if c[0] + shift >= t_spawn)
        passages = tuple(attrs.evolve(p, time=p.time + shift) for p in plan.pop("passages_rel", ())
                         if p.time + shift >= t_spawn)
        dwell = plan.pop("dwell_rel", None)
        return Target(index=index, id=f"T{self.ordinary_count:03d}", kind=kind, cls=KIND_CLASS[kind], t_start=t_spawn,
                      tw=tw, crossings=crossings, passages=passages,
                      dwell_start=None if dwell is None else dwell + shift, **plan)

    def _finish(self, points: np.ndarray, speed: float, pauses=None, **extra) -> dict:
        tw = _timed(points, speed, pauses)
        x, y = points[:, 0], points[:, 1]
        crosses, cx, cy, at_cp = self.geo.crossing_points_of_segments(x[:-1], y[:-1], x[1:], y[1:])
        crossings = []
        for i in np.flatnonzero(crosses):
            seg = np.hypot(x[i + 1] - x[i], y[i + 1] - y[i])
            frac = np.hypot(cx[i] - x[i], cy[i] - y[i]) / seg if seg > 0 else 0.0
            crossings.append((tw[i] + frac * (tw[i + 1] - tw[i]), float(cx[i]), float(cy[i]), bool(at_cp[i])))
        return dict(tw=tw, xw=x.copy(), yw=y.copy(), crossings_rel=crossings, **extra)

    def _single_crossing(self, make, what: str) -> dict:
        for _ in range(_PLAN_TRIES):
            points, speed, extra = make()
            if shapely.get_num_geometries(LineString(points).intersection(self.layout.border)) == 1:
                plan = self._finish(points, speed, **extra)
                if len(plan["crossings_rel"]) == 1:
                    return plan
        raise SimulatorError(f"could not plan a {what} that crosses the border exactly once")

    def _across(self, min_gap_to_bcp: float, d_range, step, jitter, straight_m, drift):
        s = self.layout.sample_arc(self.rng, min_gap_to_bcp)
        p, tang, normal = self.layout.frame_at(s)
        direction = self.rng.choice([-1.0, 1.0])
        d_from, d_to = self.rng.uniform(*d_range, size=2)
        n = max(3, int((d_from + d_to) / step) + 1)
        u = np.linspace(-d_from, d_to, n) * direction
        v = np.linspace(self.rng.uniform(-drift, drift), self.rng.uniform(-drift, drift), n)
        v = v + np.where(np.abs(u) < straight_m, 0.0, self.rng.normal(0.0, jitter, n))
        return p + np.outer(u, normal) + np.outer(v, tang)

    # --- one planner per kind: each returns Target fields (plus *_rel helpers) ---
    def _plan_crossing(self) -> dict:
        return self._single_crossing(lambda: (self._across(500.0, (300.0, 1000.0), 100.0, 15.0, 80.0, 200.0),
                                              self.rng.uniform(1.0, 1.6), {}), "person crossing")

    def _plan_animal(self) -> dict:
        return self._single_crossing(lambda: (self._across(300.0, (200.0, 800.0), 60.0, 25.0, 60.0, 150.0),
                                              self.rng.uniform(0.8, 2.2), {}), "wildlife crossing")

    def _plan_drone(self) -> dict:
        def make():
            pts = self._across(0.0, (1500.0, 4000.0), 1000.0, 300.0, 200.0, 300.0)
            return pts, self.rng.uniform(10.0, 17.0), {"alt_m": float(self.rng.uniform(40.0, 150.0))}
        return self._single_crossing(make, "drone crossing")

    def _plan_loiter(self) -> dict:
        rng = self.rng
        s = self.layout.sample_arc(rng, 300.0)
        p, tang, normal = self.layout.frame_at(s)
        side = rng.choice([-1.0, 1.0])
        spot = p + normal * side * rng.uniform(80.0, 220.0)
        dwell = rng.uniform(420.0, 900.0)
        points, pauses, t = [spot], [], 0.0
        while t < dwell:  # wander within 40 m of the spot at 0.6 m/s, pausing after each leg
            r, a = 40.0 * np.sqrt(rng.uniform()), rng.uniform(0, 2 * np.pi)
            nxt = spot + r * np.array([np.cos(a), np.sin(a)])
            pause = rng.uniform(10.0, 60.0)
            t += np.hypot(*(nxt - points[-1])) / 0.6 + pause
            points.append(nxt)
            pauses.append(pause)
        # then walk away from the border at 1.3 m/s
        points.append(points[-1] + normal * side * 500.0 + tang * rng.uniform(-100.0, 100.0))
        pauses.append(0.0)
        speeds = np.r_[np.full(len(points) - 2, 0.6), 1.3]
        return self._finish(np.array(points), speeds, np.array(pauses), dwell_rel=0.0)

    def _plan_walker(self) -> dict:
        rng = self.rng
        for _ in range(_PLAN_TRIES):
            s0 = self.layout.sample_arc(rng, 0.0)
            length = rng.uniform(800.0, 2500.0) * rng.choice([-1.0, 1.0])
            side, d = rng.choice([-1.0, 1.0]), rng.uniform(100.0, 280.0)
            arcs = np.arange(s0, s0 + length, 50.0 * np.sign(length))
            if arcs.size < 4 or arcs.min() < 500 or arcs.max() > self.layout.length - 500:
                continue
            p, _, normal = self.layout.frames_at(arcs)
            pts = p + normal * (side * (d + rng.normal(0.0, 8.0, arcs.size)))[:, None]
            dist = self.geo.distance_to_border(pts[:, 0], pts[:, 1])
            if dist.min() >= 60.0 and not LineString(pts).intersects(self.layout.border):
                plan = self._finish(pts, rng.uniform(1.0, 1.6))
                # On a hard night a walker is a negative: not one that, slow on the inside of a river
                # bend, stays in a 150 m circle for 300 s (loitering under the ICD).
                if not (self.config.hard and dwell_hits(self.geo, plan["tw"], plan["xw"], plan["yw"])):
                    return plan
        raise SimulatorError("could not plan a walker along the border")

    def _plan_vehicle(self) -> dict:
        rng = self.rng
        road = self.layout.bridge_roads[rng.integers(len(self.layout.bridge_roads))]
        eastward = bool(rng.integers(2))
        pts = road.lane(eastward)
        speed = rng.uniform(30.0, 57.0) / 3.6
        plan = self._finish(pts, speed)
        toward = "PL" if eastward else "DE"
        passages = []
        for sensor_id, arc in road.anpr_arcs.items():
            along = arc if eastward else road.line.length - arc
            passages.append(Passage(along / speed, sensor_id, toward, bool(rng.uniform() < self.config.anpr_pd)))
        plate, nat = lay.random_plate(rng)
        plan.update(passages_rel=sorted(passages, key=lambda p: p.time), plate=plate, nat=nat,
                    hotlisted=bool(rng.uniform() < self.config.hotlist_fraction),
                    vehicle_class=str(rng.choice(lay.VEHICLE_CLASSES, p=lay.VEHICLE_CLASS_P)))
        return plan

    def _plan_local_vehicle(self) -> dict:
        rng = self.rng
        line = self.layout.local_roads[rng.integers(len(self.layout.local_roads))]
        length = rng.uniform(4000.0, min(10000.0, line.length * 0.8))
        a = rng.uniform(0.0, line.length - length)
        arcs = np.linspace(a, a + length, int(length / 200.0) + 2)
        if rng.integers(2):
            arcs = arcs[::-1]
        pts = shapely.get_coordinates(shapely.line_interpolate_point(line, arcs))
        plate, nat = lay.random_plate(rng)
        return self._finish(pts, rng.uniform(40.0, 70.0) / 3.6, plate=plate, nat=nat,
                            vehicle_class=str(rng.choice(lay.VEHICLE_CLASSES, p=lay.VEHICLE_CLASS_P)))

    def _plan_crossing_at_bcp(self) -> dict:
        rng = self.rng
        road = self.layout.bridge_roads[rng.integers(len(self.layout.bridge_roads))]
        mid = road.line.project(Point(road.border_point))
        a, b = mid - rng.uniform(300.0, 600.0), mid + rng.uniform(300.0, 600.0)
        arcs = np.linspace(a, b, 12)
        if rng.integers(2):
            arcs = arcs[::-1]
        pts = shapely.get_coordinates(shapely.line_interpolate_point(road.line, arcs)) + np.array([0.0, 6.0])
        return self._finish(pts, rng.uniform(1.2, 1.5))


def _key_times_rel(plan: dict) -> list[float]:
    """Event times of a plan not yet shifted to its spawn time."""
    times = [c[0] for c in plan.get("crossings_rel", ())] + [p.time for p in plan.get("passages_rel", ())]
    if plan.get("dwell_rel") is not None:
        times.append(plan["dwell_rel"] + LOITER_DWELL_S)
    return times
