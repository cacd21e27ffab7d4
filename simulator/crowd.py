"""A hard night's background crowd: people, vehicles and animals moving about near the border but
never crossing it, a third of them 150-600 m from the line (`crowd_near_line`, each one a negative
of that kind along its whole path), the rest farther inland (`crowd`). Like world.py's slots: a
fixed number present at once, each replaced by a new one when it leaves.
"""
from __future__ import annotations

import numpy as np

from borderfuse.simulator.dwell import dwell_hits
from borderfuse.simulator.scenario import SimulatorError

NEAR_AT_ONCE = 4
FAR_AT_ONCE = 12
NEAR_BAND_M = (160.0, 590.0)   # keeps clear of the 150 m and 600 m the truth promises
FAR_BAND_M = (650.0, 3500.0)
CLASSES = ("person", "vehicle", "animal")
CLASS_P = (0.45, 0.30, 0.25)
SPEED_MPS = {"person": (1.2, 2.0), "vehicle": (3.0, 8.0), "animal": (1.2, 3.0)}
_TRIES = 100


class Crowd:
    def __init__(self, world, rng: np.random.Generator):
        self.world, self.rng = world, rng
        self.slots = [True] * NEAR_AT_ONCE + [False] * FAR_AT_ONCE  # near the line?
        self.slot_next = list(rng.uniform(0.0, 60.0, len(self.slots)))

    def plan_until(self, t: float) -> None:
        for i, near in enumerate(self.slots):
            while self.slot_next[i] < t:
                target = self._spawn(near, self.slot_next[i])
                self.slot_next[i] = target.t_end + self.rng.uniform(30.0, 240.0)

    def _spawn(self, near: bool, t_start: float):
        rng, world = self.rng, self.world
        layout = world.layout
        band = NEAR_BAND_M if near else FAR_BAND_M
        for _ in range(_TRIES):
            cls = str(rng.choice(CLASSES, p=CLASS_P))
            v = rng.uniform(*SPEED_MPS[cls])
            s0 = rng.uniform(1000.0, layout.length - 1000.0)
            direction = rng.choice([-1.0, 1.0])
            along = rng.uniform(200.0, 800.0)  # metres along the border; the offset drifts within the band
            arcs = np.linspace(s0, s0 + direction * along, max(4, int(along / 50.0) + 1))
            if arcs.min() < 500.0 or arcs.max() > layout.length - 500.0:
                continue
            d = np.linspace(*rng.uniform(*band, size=2), arcs.size) + rng.normal(0.0, 3.0, arcs.size)
            side = rng.choice([-1.0, 1.0])
            p, _, normal = layout.frames_at(arcs)
            plan = world._finish(p + normal * (side * d)[:, None], v)
            dist = world.geo.distance_to_border(plan["xw"], plan["yw"])
            if plan["crossings_rel"] or dist.min() < band[0] - 10.0 or (near and dist.max() > 600.0):
                continue
            if near and cls == "person" and dwell_hits(world.geo, plan["tw"], plan["xw"], plan["yw"]):
                continue
            fields = {}
            if near:
                every = float(min(60.0, 150.0 / v))
                fields = dict(negative_kind="crowd_near_line", negative_every_s=every,
                              negative_window=(t_start, t_start + float(plan["tw"][-1])))
            plan["tw"] = plan["tw"] + t_start
            return world.add("crowd_near_line" if near else "crowd", cls, plan,
                             stressor="crowd_near_line" if near else "crowd", **fields)
        raise SimulatorError(f"could not plan a crowd mover {'near' if near else 'away from'} the border line")
