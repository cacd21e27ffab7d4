"""A DE radar's own tracker, as its track reports show it.

Per target in range: two `tentative` reports (quality 0.4, 0.5), then `confirmed` (quality rising
to 1.0); a `lost` report at the last reported position (speed 0, course 0, quality 0.1) once the
target has gone unseen for 5 s. Occasional fades of 6-15 s break a track, so the target gets a
new number. Track numbers `T0000`.. come from a pool and are reused once released. Short-lived
false tracks (4-11 tentative reports, quality 0.2, never confirmed, no lost report) appear at
random in range.
"""
from __future__ import annotations

import numpy as np

from borderfuse.geo.geography import SensorInfo
from borderfuse.simulator.scenario import ScenarioConfig, SimulatorError
from borderfuse.simulator.sensors import Feed, _live, _ticks
from borderfuse.simulator.snapshot import Snapshot, true_course

LOST_AFTER_S = 5.0
TENTATIVE_REPORTS = 2
SPEED_SIGMA_MPS = 0.25
STATUS = ("tentative", "confirmed", "lost")


class DeRadar:
    silent: tuple[tuple[float, float], ...] = ()  # outages, set by the engine on hard nights

    def __init__(self, sensor: SensorInfo, config: ScenarioConfig, rng: np.random.Generator):
        self.s, self.cfg, self.rng = sensor, config, rng
        self.phase = rng.uniform(0.0, sensor.period_s)
        self.pool = config.de_track_pool
        self.counter = int(rng.integers(0, self.pool))
        self.busy_until = np.full(self.pool, -np.inf)  # number -> time it becomes free
        # per target index (grown on demand)
        self.track = np.empty(0, dtype=np.int64)
        self.reports = np.empty(0, dtype=np.int64)
        self.last_seen = np.empty(0)
        self.last_x = np.empty(0)
        self.last_y = np.empty(0)
        self.fade_until = np.empty(0)

    def _grow(self, n: int) -> None:
        extra = n - self.track.size
        if extra > 0:
            self.track = np.r_[self.track, np.full(extra, -1)]
            self.reports = np.r_[self.reports, np.zeros(extra, dtype=np.int64)]
            self.last_seen = np.r_[self.last_seen, np.full(extra, -np.inf)]
            self.last_x = np.r_[self.last_x, np.zeros(extra)]
            self.last_y = np.r_[self.last_y, np.zeros(extra)]
            self.fade_until = np.r_[self.fade_until, np.full(extra, -np.inf)]

    def _allocate(self, t: float, until: float = np.inf) -> int:
        for _ in range(self.pool):
            number = self.counter % self.pool
            self.counter += 1
            if self.busy_until[number] <= t:
                self.busy_until[number] = until
                return number
        raise SimulatorError(f"{self.s.id}: all {self.pool} track numbers in use; raise de_track_pool")

    def observe(self, snap: Snapshot, ta: float, tb: float) -> Feed:
        s, rng, cfg = self.s, self.rng, self.cfg
        index = np.array([tg.index for tg in snap.targets], dtype=np.int64)
        self._grow(int(index.max(initial=-1)) + 1)
        out = {k: [] for k in ("t", "track", "x", "y", "vx", "vy", "status", "quality")}

        def emit(t, track, x, y, vx, vy, status, quality):
            n = np.size(track)
            out["t"].append(np.full(n, t) if np.ndim(t) == 0 else t)
            out["track"].append(np.asarray(track))
            for key, val in (("x", x), ("y", y), ("vx", vx), ("vy", vy), ("status", status), ("quality", quality)):
                out[key].append(np.broadcast_to(val, (n,)).astype(float if key != "status" else np.int8))

        _, steps = _ticks(self.phase, s.period_s, ta, tb)
        steps = steps[_live(steps, self.silent)]
        fade_p = cfg.de_track_fades_per_hour / 3600.0 * s.period_s
        for t in steps:
            cols = np.arange(snap.n)
            x, y, vx, vy, active = snap.state(np.full(snap.n, t), cols)
            seen = active & (np.hypot(x - s.x, y - s.y) <= s.max_range_m) & (self.fade_until[index] <= t)
            seen &= rng.uniform(size=snap.n) < cfg.de_radar_pd
            sel = index[seen]
            for i in sel[self.track[sel] < 0]:  # new tracks
                self.track[i] = self._allocate(t)
                self.reports[i] = 0
            m = sel.size
            px = x[seen] + rng.normal(0.0, s.sigma_m, m)
            py = y[seen] + rng.normal(0.0, s.sigma_m, m)
            k = self.reports[sel]
            emit(t, self.track[sel], px, py, vx[seen] + rng.normal(0.0, SPEED_SIGMA_MPS, m),
                 vy[seen] + rng.normal(0.0, SPEED_SIGMA_MPS, m), (k >= TENTATIVE_REPORTS).astype(np.int8),
                 np.minimum(1.0, 0.4 + 0.1 * k))
            self.reports[sel] += 1
            self.last_seen[sel], self.last_x[sel], self.last_y[sel] = t, px, py
            fading = sel[rng.uniform(size=m) < fade_p]
            self.fade_until[fading] = t + rng.uniform(6.0, 15.0, fading.size)
            # lost: every held track (also of targets gone from the snapshot) unseen for 5 s
            lost = np.flatnonzero((self.track >= 0) & (t - self.last_seen >= LOST_AFTER_S))
            if lost.size:
                emit(t, self.track[lost], self.last_x[lost], self.last_y[lost], 0.0, 0.0, 2, 0.1)
                self.busy_until[self.track[lost]] = t
                self.track[lost] = -1
        self._false_tracks(steps, emit)
        if not out["t"]:
            return Feed.empty(s.topic)
        cols = {k: np.concatenate(v) for k, v in out.items()}
        t = cols.pop("t")
        speed = np.hypot(cols["vx"], cols["vy"])
        course = np.where(speed > 0, true_course(cols["x"], cols["y"], cols["vx"], cols["vy"]), 0.0)
        lost = cols["status"] == 2
        cols["speed_kmh"] = np.where(lost, 0.0, speed * 3.6)
        cols["course_deg"] = np.where(lost, 0.0, course)
        return Feed(s.topic, t, np.full(t.size, s.id, dtype=object), cols)

    def _false_tracks(self, steps: np.ndarray, emit) -> None:
        s, rng = self.s, self.rng
        if steps.size == 0:
            return
        n = rng.poisson(self.cfg.de_false_tracks_per_min * steps.size * s.period_s / 60.0)
        for _ in range(n):
            start = steps[rng.integers(steps.size)]
            count = int(rng.integers(4, 12))
            times = start + np.arange(count) * s.period_s
            number = self._allocate(start, until=times[-1] + LOST_AFTER_S)
            r, a = s.max_range_m * np.sqrt(rng.uniform(0.01, 1.0)), rng.uniform(0, 2 * np.pi)
            drift = rng.normal(0.0, 0.7, 2)
            x = s.x + r * np.sin(a) + drift[0] * (times - start) + rng.normal(0.0, 8.0, count)
            y = s.y + r * np.cos(a) + drift[1] * (times - start) + rng.normal(0.0, 8.0, count)
            v = rng.normal(0.0, 1.0, (2, count))
            emit(times, np.full(count, number), x, y, v[0], v[1], 0, 0.2)
