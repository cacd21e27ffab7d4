"""A hard night's stressors, planned once per 45-minute episode (or per run, if shorter), next to
the ordinary traffic of world.py: the counts of the agencies' hard night (shared/scenarios/hard).

Per episode:
- 3 turn-backs: walk up to 40-80 m of the line, stop 20-60 s, walk back the same way; 300 s in the
  300 m zone inside a 150 m circle, so loitering under the ICD (dwell.py; the truth says when);
- 6 walkers along the line, 110-250 m from it, 1.2-1.5 m/s for 10-18 minutes, never crossing;
- a group of 3-4 people crossing together (one event: one incident, led by the first member);
- an off-road vehicle crossing outside the crossing points (4-9 m/s);
- a drone that hovers 150-200 m from the line for 150-300 s and then crosses; one that flies along
  the line 80-150 m from it for 5-7 minutes;
- 1-3 animals grazing 80-130 m from the line for 4-7 minutes, in camera view;
- a person who crosses and comes back 10-16 minutes later, having waited 400-470 m inland;
- two people crossing at the same moment 300-700 m apart (two incidents);
- a PL radar and a DE camera silent for 6-8 minutes, with two crossings near them meanwhile;
- crowds (crowd.py): movers 150-600 m from the line and farther away, never crossing.
Every stressor target carries its `stressor` tag; the truth lists each one's negatives every few
seconds (`negative_kind`, `negative_every_s`, `negative_window`).
"""
from __future__ import annotations

import attrs
import numpy as np
from shapely.geometry import Point

from borderfuse.simulator.crowd import Crowd
from borderfuse.simulator.dwell import dwell_hits
from borderfuse.simulator.scenario import SimulatorError
from borderfuse.simulator.world import World

_TRIES = 200
EVENT_GAP_S = 400.0    # two planned events closer than this in time ...
EVENT_GAP_M = 1500.0   # ... are at least this far apart along the border
EPISODE_LEAD_S = 900.0


@attrs.frozen(slots=True)
class Outage:
    sensor: str
    t_from: float
    t_to: float


class StressorProgram:
    def __init__(self, world: World, rng: np.random.Generator):
        self.world, self.rng = world, rng
        self.geo, self.layout = world.geo, world.layout
        self.episode_s = world.episode_s
        self.next_episode = 0.0
        self.outages: list[Outage] = []
        self.reserved: list[tuple[float, float]] = []  # (time, arc) of planned events
        self.crowd = Crowd(world, rng)

    def plan_until(self, t: float) -> None:
        """Plan the episodes beginning before `t` + 15 min (a stressor's path may begin before its
        episode does), and the crowd up to `t`."""
        end = self.world.duration if self.world.duration is not None else np.inf
        while self.next_episode < min(t + EPISODE_LEAD_S, end):
            self._episode(self.next_episode)
            self.next_episode += self.episode_s
        self.crowd.plan_until(t)

    def silent(self, sensor_id: str) -> tuple[tuple[float, float], ...]:
        return tuple((o.t_from, o.t_to) for o in self.outages if o.sensor == sensor_id)

    # --- scheduling ---
    def _episode(self, e0: float) -> None:
        e = self.episode_s
        lo, hi = e0 + 150.0, e0 + e - 150.0
        self._outage(e0)
        for _ in range(3):
            self._retry(self._turn_back, lo + 200.0, hi)
        for _ in range(6):
            self._retry(self._walker, e0, e0 + e - 300.0)
        self._retry(self._group, lo, hi)
        self._retry(self._offroad, lo, hi)
        self._retry(self._drone_hover, lo + 200.0, hi)
        self._retry(self._drone_along, e0, e0 + e - 400.0)
        self._retry(self._animals, e0, e0 + e - 360.0)
        self._retry(self._cross_and_back, lo, max(lo + 1.0, hi - 900.0))
        self._retry(self._pair, lo, hi)

    def _retry(self, plan, lo: float, hi: float) -> None:
        for _ in range(_TRIES):
            if plan(float(self.rng.uniform(lo, max(lo, hi)))):
                return
        raise SimulatorError(f"could not plan the stressor {plan.__name__.lstrip('_')} on this border")

    def _free(self, t: float, arc: float) -> bool:
        squeeze = max(0.3, min(1.0, self.episode_s / 2700.0))  # a short run packs the programme closer
        return all(abs(t - t2) >= EVENT_GAP_S * squeeze or abs(arc - a2) >= EVENT_GAP_M * squeeze
                   for t2, a2 in self.reserved)

    def _arc(self, t: float, gap_to_bcp: float, within: tuple[float, float] | None = None) -> float | None:
        if within is None:
            s = self.layout.sample_arc(self.rng, gap_to_bcp)
        else:
            s = float(self.rng.uniform(*within))
            if self.layout.crossings_union.distance(self.layout.border.interpolate(s)) < gap_to_bcp:
                return None
        return s if self._free(t, s) else None

    def _at(self, arc: float, offsets, side: float, along=0.0) -> np.ndarray:
        """Points `offsets` metres off the border (to `side`: +1 east, -1 west) at `arc`, shifted
        `along` metres along the border's tangent there (a straight line, not following the border)."""
        p, tang, normal = self.layout.frame_at(arc)
        offsets = np.atleast_1d(np.asarray(offsets, float))
        along = np.broadcast_to(np.asarray(along, float), offsets.shape)
        return p + np.outer(offsets * side, normal) + np.outer(along, tang)

    def _along(self, arcs: np.ndarray, offsets, side: float) -> np.ndarray:
        """Points following the border's shape, `offsets` metres off it at arc lengths `arcs`."""
        p, _, normal = self.layout.frames_at(arcs)
        return p + normal * (side * np.broadcast_to(np.asarray(offsets, float), arcs.shape))[:, None]

    def _add(self, kind: str, cls: str, plan: dict, t_shift: float, **fields):
        plan = dict(plan)
        plan["tw"] = plan["tw"] + t_shift
        plan["crossings_rel"] = [(c[0] + t_shift, *c[1:]) for c in plan.get("crossings_rel", ())]
        window = fields.get("negative_window")
        if window is not None:
            fields["negative_window"] = (window[0] + t_shift, window[1] + t_shift)
        return self.world.add(kind, cls, plan, stressor=fields.pop("stressor", kind), **fields)

    def _clear_of_border(self, plan: dict, min_m: float) -> bool:
        d = self.geo.distance_to_border(plan["xw"], plan["yw"])
        return not plan["crossings_rel"] and d.min() >= min_m

    def _crossing_path(self, arc: float, side: float, d_from, d_to, drift: float = 60.0) -> np.ndarray:
        """A person's path straight across the border at `arc`, from `side`, with a little wobble."""
        offs = np.linspace(d_from, -d_to, max(3, int((d_from + d_to) / 100.0) + 1))
        along = np.linspace(self.rng.uniform(-drift, drift), self.rng.uniform(-drift, drift), offs.size)
        along = along + np.where(np.abs(offs) < 80.0, 0.0, self.rng.normal(0.0, 10.0, offs.size))
        return self._at(arc, offs, side, along)

    def _single_crossing(self, points: np.ndarray, speed) -> dict | None:
        plan = self.world._finish(points, speed)
        if len(plan["crossings_rel"]) != 1 or plan["crossings_rel"][0][3]:
            return None
        return plan

    # --- the stressors: each returns False when this time/place does not work out ---
    def _turn_back(self, t_event: float) -> bool:
        rng = self.rng
        arc = self._arc(t_event, 800.0)
        if arc is None:
            return False
        side = rng.choice([-1.0, 1.0])
        d_start, d_stop, v = rng.uniform(380.0, 480.0), rng.uniform(40.0, 80.0), rng.uniform(1.3, 1.5)
        lateral = rng.uniform(-20.0, 20.0)
        stops = int(rng.integers(2, 4))
        offs = np.r_[d_start, d_stop + rng.uniform(-6.0, 6.0, stops), d_start + rng.uniform(0.0, 100.0)]
        along = np.r_[0.0, lateral + rng.uniform(-6.0, 6.0, stops), lateral + rng.uniform(-40.0, 40.0)]
        points = self._at(arc, offs, side, along)
        stop_s = rng.uniform(20.0, 60.0)
        pauses = np.r_[np.full(stops, stop_s / stops), 0.0]
        speeds = np.r_[v, np.full(stops - 1, 0.4), v]
        plan = self.world._finish(points, speeds, pauses)
        if not self._clear_of_border(plan, 25.0):
            return False
        hits = dwell_hits(self.geo, plan["tw"], plan["xw"], plan["yw"])
        if len(hits) != 1:
            return False
        shift = t_event - hits[0][0]
        arrive, leave = plan["tw"][1], plan["tw"][stops]
        near_s = (100.0 - d_stop) / v  # the negatives: while within about 100 m of the line
        self._add("turn_back", "person", plan, shift, negative_kind="turn_back", negative_every_s=15.0,
                  negative_window=(arrive - near_s, leave + near_s))
        self.reserved.append((t_event, arc))
        return True

    def _walker(self, t_start: float) -> bool:
        rng = self.rng
        v = rng.uniform(1.2, 1.5)
        length = v * rng.uniform(600.0, 1080.0)
        s0 = self.layout.sample_arc(rng, 300.0)
        direction = rng.choice([-1.0, 1.0])
        arcs = np.arange(s0, s0 + direction * length, direction * 50.0)
        if arcs.size < 4 or arcs.min() < 1000.0 or arcs.max() > self.layout.length - 1000.0:
            return False
        side, d = rng.choice([-1.0, 1.0]), rng.uniform(110.0, 250.0)
        plan = self.world._finish(self._along(arcs, d + rng.normal(0.0, 3.0, arcs.size), side), v)
        if not self._clear_of_border(plan, 80.0) or dwell_hits(self.geo, plan["tw"], plan["xw"], plan["yw"]):
            return False
        self._add("walker_near_border", "person", plan, t_start, negative_kind="walker_near_border",
                  negative_every_s=60.0, negative_window=(0.0, float(plan["tw"][-1])))
        return True

    def _group(self, t_event: float) -> bool:
        rng = self.rng
        arc = self._arc(t_event, 800.0)
        if arc is None:
            return False
        side, v = rng.choice([-1.0, 1.0]), rng.uniform(1.2, 1.5)
        path = self._crossing_path(arc, side, rng.uniform(300.0, 700.0), rng.uniform(300.0, 700.0))
        n = int(rng.integers(3, 5))
        plans = []
        for i in range(n):  # members keep 2-6 m apart, a second or two behind one another
            offset = np.zeros(2) if i == 0 else rng.uniform(-4.0, 4.0, 2) + np.sign(rng.uniform(-1, 1, 2)) * 2.0
            plan = self._single_crossing(path + offset, v)
            if plan is None:
                return False
            plans.append((plan, i * rng.uniform(0.5, 1.5)))
        shift = t_event - plans[0][0]["crossings_rel"][0][0]
        first = self.world.stressor_count + 1
        ids = tuple(f"H{first + i:03d}" for i in range(n))
        for i, (plan, lag) in enumerate(plans):
            tc = plan["crossings_rel"][0][0]
            self._add("group_crossing", "person", plan, shift + lag, group=ids if i == 0 else (),
                      group_member=i > 0, negative_kind="group_member", negative_every_s=15.0,
                      negative_window=(tc - 120.0, tc + 90.0))
        self.reserved.append((t_event, arc))
        return True

    def _offroad(self, t_event: float) -> bool:
        rng = self.rng
        arc = self._arc(t_event, 1000.0)
        if arc is None:
            return False
        path = self._crossing_path(arc, rng.choice([-1.0, 1.0]), rng.uniform(600.0, 2000.0),
                                   rng.uniform(600.0, 2000.0), drift=200.0)
        plan = self._single_crossing(path, rng.uniform(4.0, 9.0))
        if plan is None:
            return False
        self._add("offroad_vehicle", "vehicle", plan, t_event - plan["crossings_rel"][0][0])
        self.reserved.append((t_event, arc))
        return True

    def _drone_hover(self, t_event: float) -> bool:
        rng = self.rng
        arc = self._arc(t_event, 0.0)
        if arc is None:
            return False
        side, v, hover_d = rng.choice([-1.0, 1.0]), rng.uniform(10.0, 15.0), rng.uniform(150.0, 200.0)
        wobbles = int(rng.integers(4, 8))
        offs = np.r_[rng.uniform(1500.0, 3000.0), hover_d + rng.uniform(-5.0, 5.0, wobbles),
                     -rng.uniform(1500.0, 3000.0)]
        along = np.r_[rng.uniform(-300.0, 300.0), rng.uniform(-5.0, 5.0, wobbles), rng.uniform(-300.0, 300.0)]
        hover_s = rng.uniform(150.0, 300.0)
        pauses = np.r_[np.full(wobbles, hover_s / wobbles), 0.0]
        speeds = np.r_[v, np.full(wobbles - 1, 0.5), v]
        plan = self.world._finish(self._at(arc, offs, side, along), speeds, pauses,
                                  alt_m=float(rng.uniform(40.0, 150.0)))
        if len(plan["crossings_rel"]) != 1:
            return False
        window = (plan["tw"][1], plan["tw"][wobbles])
        self._add("drone_hover_cross", "drone", plan, t_event - plan["crossings_rel"][0][0],
                  negative_kind="drone_hover", negative_every_s=20.0, negative_window=window)
        self.reserved.append((t_event, arc))
        return True

    def _drone_along(self, t_start: float) -> bool:
        rng = self.rng
        v = rng.uniform(10.0, 13.0)
        length = v * rng.uniform(300.0, 420.0)
        s0 = self.layout.sample_arc(rng, 0.0)
        direction = rng.choice([-1.0, 1.0])
        arcs = np.arange(s0, s0 + direction * length, direction * 50.0)
        if arcs.size < 4 or arcs.min() < 1000.0 or arcs.max() > self.layout.length - 1000.0:
            return False
        side, d = rng.choice([-1.0, 1.0]), rng.uniform(80.0, 150.0)
        line = self._along(arcs, d, side)
        approach = self._at(arcs[0], [rng.uniform(800.0, 1500.0)], side)
        leave = self._at(arcs[-1], [rng.uniform(800.0, 1500.0)], side)
        plan = self.world._finish(np.vstack([approach, line, leave]), v, alt_m=float(rng.uniform(40.0, 120.0)))
        if not self._clear_of_border(plan, 50.0):
            return False
        t_line = float(np.hypot(*(line[0] - approach[0])) / v)
        self._add("drone_along_border", "drone", plan, t_start, negative_kind="drone_along_border",
                  negative_every_s=10.0, negative_window=(t_line, t_line + length / v))
        return True

    def _in_camera_view(self, point: np.ndarray) -> bool:
        cams = [s for s in self.geo.sensors.values() if s.kind == "camera"]
        return any(np.hypot(point[0] - s.x, point[1] - s.y) <= 0.8 * s.max_range_m for s in cams)

    def _animals(self, t_start: float) -> bool:
        rng = self.rng
        arc = self._arc(t_start + 300.0, 500.0)
        if arc is None:
            return False
        side, d = rng.choice([-1.0, 1.0]), rng.uniform(80.0, 130.0)
        spot = self._at(arc, [d], side)[0]
        if not self._in_camera_view(spot):
            return False
        graze_s, v = rng.uniform(150.0, 270.0), rng.uniform(0.8, 1.2)  # plus 2-3 minutes of moving between spots
        plans = []
        for _ in range(int(rng.integers(1, 4))):
            legs = int(rng.integers(5, 9))
            r, a = 20.0 * np.sqrt(rng.uniform(size=legs)), rng.uniform(0.0, 2 * np.pi, legs)
            wander = spot + np.column_stack([r * np.cos(a), r * np.sin(a)])
            come = self._at(arc, [d + rng.uniform(300.0, 450.0)], side, rng.uniform(-80.0, 80.0))
            go = self._at(arc, [d + rng.uniform(300.0, 450.0)], side, rng.uniform(-150.0, 150.0))
            pauses = np.r_[np.full(legs, graze_s / legs), 0.0]
            speeds = np.r_[v, np.full(legs - 1, 0.5), v]
            plan = self.world._finish(np.vstack([come, wander, go]), speeds, pauses)
            if not self._clear_of_border(plan, 30.0):
                return False
            plans.append(plan)
        for plan in plans:
            self._add("animal_dwell", "animal", plan, t_start + rng.uniform(0.0, 20.0),
                      negative_kind="animal_dwell", negative_every_s=60.0,
                      negative_window=(float(plan["tw"][1]), float(plan["tw"][-2]) + 60.0))
        self.reserved.append((t_start + 300.0, arc))
        return True

    def _cross_and_back(self, t_event: float) -> bool:
        rng = self.rng
        arc = self._arc(t_event, 800.0)
        if arc is None:
            return False
        side, v = rng.choice([-1.0, 1.0]), rng.uniform(1.3, 1.5)
        d0, d1 = rng.uniform(400.0, 700.0), rng.uniform(400.0, 470.0)
        wait_legs = int(rng.integers(3, 6))
        wait_s = rng.uniform(30.0, 150.0)  # out there, beyond the 300 m zone: back 10-16 min after crossing
        there = self._at(arc, -d1 + rng.uniform(-15.0, 15.0, wait_legs), side, rng.uniform(-15.0, 15.0, wait_legs))
        points = np.vstack([self._at(arc, [d0], side, rng.uniform(-40.0, 40.0)), there,
                            self._at(arc, [rng.uniform(400.0, 700.0)], side, rng.uniform(-80.0, 80.0))])
        pauses = np.r_[np.full(wait_legs, wait_s / wait_legs), 0.0]
        speeds = np.r_[v, np.full(wait_legs - 1, 1.0), v]
        plan = self.world._finish(points, speeds, pauses)
        cross = plan["crossings_rel"]
        if len(cross) != 2 or any(c[3] for c in cross) or not 620.0 <= cross[1][0] - cross[0][0] <= 960.0:
            return False
        if dwell_hits(self.geo, plan["tw"], plan["xw"], plan["yw"]):
            return False
        self._add("cross_and_back", "person", plan, t_event - cross[0][0])
        self.reserved.append((t_event, arc))
        return True

    def _pair(self, t_event: float) -> bool:
        rng = self.rng
        arc = self._arc(t_event, 800.0)
        if arc is None:
            return False
        other = arc + rng.choice([-1.0, 1.0]) * rng.uniform(300.0, 700.0)
        plans = []
        for s in (arc, other):
            path = self._crossing_path(s, rng.choice([-1.0, 1.0]), rng.uniform(300.0, 800.0),
                                       rng.uniform(300.0, 800.0), drift=30.0)
            plan = self._single_crossing(path, rng.uniform(1.1, 1.6))
            if plan is None:
                return False
            plans.append(plan)
        for plan in plans:
            self._add("simultaneous_pair", "person", plan,
                      t_event + rng.uniform(0.0, 5.0) - plan["crossings_rel"][0][0])
        self.reserved.append((t_event, arc))
        return True

    def _outage(self, e0: float) -> None:
        """A PL radar and a DE camera silent together for 6-8 minutes; two crossings near them meanwhile."""
        rng = self.rng
        sensors = sorted(self.geo.sensors.values(), key=lambda s: s.id)
        radar = [s for s in sensors if s.side == "PL" and s.kind == "radar"]
        camera = [s for s in sensors if s.side == "DE" and s.kind == "camera"]
        if not radar or not camera:
            return
        silent = (radar[rng.integers(len(radar))], camera[rng.integers(len(camera))])
        t_from = e0 + rng.uniform(0.35, 0.55) * self.episode_s
        t_to = t_from + min(rng.uniform(360.0, 480.0), 0.3 * self.episode_s)
        self.outages += [Outage(s.id, float(t_from), float(t_to)) for s in silent]
        arcs = [self.layout.border.project(Point(s.x, s.y)) for s in silent]
        within = (max(1500.0, min(arcs) - 2000.0), min(self.layout.length - 1500.0, max(arcs) + 2000.0))
        for _ in range(2):
            for _ in range(_TRIES):
                t_event = float(rng.uniform(t_from + 30.0, max(t_from + 31.0, t_to - 30.0)))
                arc = self._arc(t_event, 800.0, within)
                if arc is None:
                    continue
                path = self._crossing_path(arc, rng.choice([-1.0, 1.0]), rng.uniform(300.0, 700.0),
                                           rng.uniform(300.0, 700.0))
                plan = self._single_crossing(path, rng.uniform(1.1, 1.6))
                if plan is not None:
                    self._add("sensor_outage", "person", plan, t_event - plan["crossings_rel"][0][0])
                    self.reserved.append((t_event, arc))
                    break
            else:
                raise SimulatorError("could not plan a crossing near the silent sensors")
