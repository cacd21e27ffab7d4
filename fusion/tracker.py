"""Multi-sensor multi-target tracker: constant-velocity Kalman filters in the shared frame.

One scan = the observations of one sensor inside one processing slice. Every scan is gated
against every live track at once (Mahalanobis, each pair predicted to the detection's own time
with the observation's own covariance) and assigned by global nearest neighbour
(`linear_sum_assignment` on d^2 + ln det S). Unassigned detections start tentative tracks; a
tentative track is confirmed after `confirm_hits` qualifying hits within `confirm_window_s`
(DE radar reports still `tentative` at the radar do not qualify: the radar's own short false
tracks then never confirm, and PL clutter plots never collect a second hit). Tracks are
deleted after a coast time without updates.

DE radar tracks and camera objects carry the sensor's local id: while the local id lives it
is an association hint (cheaper cost, wider gate) for the fused track it last fed, so a
target keeps its track through a sensor's noise; hints expire after `hint_ttl_s` without use
or when the radar reports the track `lost`, because radars reuse their numbers.

Tracks of one target started by two sensors before either could gate the other are merged
(into the confirmed one, else the older) when their positions and velocities agree, so a target seen from both
sides of the border is one fused track with one id. Track ids come from a counter, so the
same input order gives the same ids.
"""
from __future__ import annotations

import attrs
import numpy as np
from scipy.optimize import linear_sum_assignment

from borderfuse.fusion import kalman
from borderfuse.sensors.base import CLASSES, Observation

CLASS_INDEX = {c: i for i, c in enumerate(CLASSES)}
_UNKNOWN = CLASS_INDEX["unknown"]
_INFEASIBLE = 1e9


@attrs.frozen(slots=True)
class TrackerConfig:
    process_noise: float = 1.0        # q of the CV model, m^2/s^3
    gate_d2: float = kalman.CHI2_2DOF_999
    hint_gate_factor: float = 4.0     # gate multiplier for a detection whose local id hints at the track
    hint_bonus: float = 10.0          # cost reduction for the hinted pair
    hint_ttl_s: float = 15.0
    init_sigma_v: float = 8.0         # m/s, velocity 1-sigma of a new track without a measured velocity
    confirm_hits: int = 4
    confirm_window_s: float = 30.0
    tentative_coast_s: float = 6.0
    coast_s: float = 20.0
    merge_d2: float = 9.0
    merge_distance_m: float = 80.0
    merge_speed_mps: float = 2.5
    settle_weight: float = 2.0        # summed classifier confidence that makes a class settled
    settle_share: float = 0.7


@attrs.define(slots=True, eq=False)
class Track:
    """Bookkeeping of one fused track (the filter state lives in the tracker's arrays)."""

    id: str
    created_us: int
    hits: int = 0
    confirmed: bool = False
    confirmed_us: int | None = None
    sources: set = attrs.field(factory=set)
    class_weight: np.ndarray = attrs.field(factory=lambda: np.zeros(len(CLASSES)))
    plate: str | None = None
    country: str | None = None

    def class_state(self, settle_weight: float, settle_share: float) -> tuple[str, bool]:
        """(class, settled): the best-supported class once its evidence is strong enough, else unknown."""
        w = self.class_weight
        total = w.sum()
        best = int(np.argmax(w))
        if total <= 0 or w[best] < settle_weight or w[best] < settle_share * total:
            return "unknown", False
        return CLASSES[best], True


@attrs.frozen(slots=True)
class TrackUpdate:
    """A track after one measurement: what the rules look at."""

    track: Track
    time_us: int
    x: float
    y: float
    vx: float
    vy: float
    sigma_m: float  # 1-sigma of the position along its worst axis


class Tracker:
    def __init__(self, config: TrackerConfig = TrackerConfig()):
        self.config = config
        self.x = np.zeros((0, 4))
        self.P = np.zeros((0, 4, 4))
        self.t_us = np.zeros(0, dtype=np.int64)
        self.tracks: list[Track] = []
        self._index: dict[str, int] = {}
        self._hints: dict[tuple[str, str], tuple[str, int]] = {}
        self._next_id = 1
        self.confirmed_total = 0

    @property
    def started(self) -> int:
        return self._next_id - 1

    # --- queries ---
    def __len__(self) -> int:
        return len(self.tracks)

    def confirmed_count(self) -> int:
        return sum(1 for t in self.tracks if t.confirmed)

    def get(self, track_id: str) -> Track | None:
        i = self._index.get(track_id)
        return None if i is None else self.tracks[i]

    def last_update_us(self, track_id: str) -> int | None:
        i = self._index.get(track_id)
        return None if i is None else int(self.t_us[i])

    def hinted_track(self, o: Observation) -> str | None:
        """The live track the observation's local id last fed, if any."""
        if o.local_id is None:
            return None
        hint = self._hints.get((o.sensor_id, o.local_id))
        if hint is None or hint[0] not in self._index:
            return None
        return hint[0]

    def add_class_evidence(self, track_id: str, o: Observation) -> None:
        track = self.get(track_id)
        if track is not None and o.cls is not None and o.cls != "unknown":
            track.class_weight[CLASS_INDEX[o.cls]] += 1.0 if o.confidence is None else o.confidence
            track.sources.add(o.sensor_id)

    def positions_at(self, time_us: int) -> tuple[np.ndarray, np.ndarray]:
        """Predicted (x, y) of every track at `time_us` (no covariance): for attaching ANPR reads."""
        dt = np.maximum(0.0, (time_us - self.t_us) / 1e6)
        return self.x[:, 0] + self.x[:, 2] * dt, self.x[:, 1] + self.x[:, 3] * dt

    # --- the scan ---
    def process_scan(self, obs: list[Observation]) -> list[TrackUpdate]:
        """Associate one sensor's detections with the tracks, update, start new tracks."""
        cfg = self.config
        k = len(obs)
        z = np.array([o.xy for o in obs])
        R = np.array([o.cov for o in obs])
        t_obs = np.array([o.time_us for o in obs], dtype=np.int64)
        n = len(self.tracks)
        assigned_t = np.zeros(0, dtype=np.intp)
        assigned_k = np.zeros(0, dtype=np.intp)
        if n:
            dt = np.maximum(0.0, (t_obs[None, :] - self.t_us[:, None]) / 1e6)        # (T,K)
            d2, cost = _pair_costs(self.x, self.P, dt, z, R, cfg.process_noise)
            gate = np.full((n, k), cfg.gate_d2)
            hinted = self._hint_matrix(obs, t_obs)
            if hinted is not None:
                gate = np.where(hinted, cfg.gate_d2 * cfg.hint_gate_factor, gate)
                cost = np.where(hinted, cost - cfg.hint_bonus, cost)
            feasible = d2 <= gate
            if feasible.any():
                rows = np.flatnonzero(feasible.any(axis=1))
                cols = np.flatnonzero(feasible.any(axis=0))
                sub = np.where(feasible[np.ix_(rows, cols)], cost[np.ix_(rows, cols)], _INFEASIBLE)
                r, c = linear_sum_assignment(sub)
                ok = sub[r, c] < _INFEASIBLE
                assigned_t, assigned_k = rows[r[ok]], cols[c[ok]]
        updates = []
        if assigned_t.size:
            order = np.argsort(assigned_k, kind="stable")           # detection order: deterministic output
            assigned_t, assigned_k = assigned_t[order], assigned_k[order]
            t_new = np.maximum(self.t_us[assigned_t], t_obs[assigned_k])
            dt = (t_new - self.t_us[assigned_t]) / 1e6
            xp, Pp = kalman.predict(self.x[assigned_t], self.P[assigned_t], dt, cfg.process_noise)
            xn, Pn = kalman.update(xp, Pp, z[assigned_k], R[assigned_k])
            self.x[assigned_t], self.P[assigned_t], self.t_us[assigned_t] = xn, Pn, t_new
            for ti, ki in zip(assigned_t.tolist(), assigned_k.tolist()):
                self._credit(self.tracks[ti], obs[ki])
            updates.extend(self._updates(assigned_t))
        new_k = np.setdiff1d(np.arange(k), assigned_k)
        if new_k.size:
            updates.extend(self._start(obs, new_k, z, R, t_obs))
        return updates

    def _hint_matrix(self, obs: list[Observation], t_obs: np.ndarray) -> np.ndarray | None:
        if not self._hints:
            return None
        ttl = int(self.config.hint_ttl_s * 1e6)
        out = None
        for j, o in enumerate(obs):
            if o.local_id is None:
                continue
            hint = self._hints.get((o.sensor_id, o.local_id))
            if hint is None or t_obs[j] - hint[1] > ttl:
                continue
            i = self._index.get(hint[0])
            if i is None:
                continue
            if out is None:
                out = np.zeros((len(self.tracks), len(obs)), dtype=bool)
            out[i, j] = True
        return out

    def _credit(self, track: Track, o: Observation) -> None:
        cfg = self.config
        track.sources.add(o.sensor_id)
        if not (o.sensor_kind == "radar" and o.status == "tentative"):
            track.hits += 1
        if o.cls is not None and o.cls != "unknown" and o.sensor_kind in ("camera", "uav"):
            track.class_weight[CLASS_INDEX[o.cls]] += 1.0 if o.confidence is None else o.confidence
        if o.local_id is not None:
            key = (o.sensor_id, o.local_id)
            if o.status == "lost":
                self._hints.pop(key, None)
            else:
                self._hints[key] = (track.id, o.time_us)
        if not track.confirmed and track.hits >= cfg.confirm_hits:
            track.confirmed = True
            track.confirmed_us = o.time_us
            self.confirmed_total += 1

    def _start(self, obs, new_k, z, R, t_obs) -> list[TrackUpdate]:
        vel = np.array([o.velocity if o.velocity is not None else (np.nan, np.nan) for o in (obs[j] for j in new_k)])
        x0, P0 = kalman.initial_state(z[new_k], R[new_k], vel, self.config.init_sigma_v)
        first = len(self.tracks)
        self.x = np.concatenate([self.x, x0])
        self.P = np.concatenate([self.P, P0])
        self.t_us = np.concatenate([self.t_us, t_obs[new_k]])
        for j in new_k.tolist():
            track = Track(id=f"trk-{self._next_id:06d}", created_us=int(t_obs[j]))
            self._next_id += 1
            self._index[track.id] = len(self.tracks)
            self.tracks.append(track)
            self._credit(track, obs[j])
        return self._updates(np.arange(first, len(self.tracks)))

    def _updates(self, idx: np.ndarray) -> list[TrackUpdate]:
        pos = self.P[idx, 0:2, 0:2]
        # largest eigenvalue of a symmetric 2x2, closed form
        a, b, d = pos[:, 0, 0], pos[:, 0, 1], pos[:, 1, 1]
        worst = np.sqrt(np.maximum(0.0, 0.5 * (a + d) + np.sqrt(0.25 * (a - d) ** 2 + b * b)))
        x = self.x[idx]
        t = self.t_us[idx]
        return [TrackUpdate(self.tracks[i], int(ti), float(xi[0]), float(xi[1]), float(xi[2]), float(xi[3]), float(w))
                for i, ti, xi, w in zip(idx.tolist(), t.tolist(), x, worst.tolist())]

    # --- maintenance ---
    def prune(self, now_us: int) -> list[Track]:
        """Delete tracks that coasted too long (or never confirmed in time); returns them."""
        if not self.tracks:
            return []
        cfg = self.config
        confirmed = np.array([t.confirmed for t in self.tracks])
        created = np.array([t.created_us for t in self.tracks], dtype=np.int64)
        idle = (now_us - self.t_us) / 1e6
        dead = np.where(confirmed, idle > cfg.coast_s,
                        (idle > cfg.tentative_coast_s) | ((now_us - created) / 1e6 > cfg.confirm_window_s))
        if not dead.any():
            return []
        gone = [t for t, d in zip(self.tracks, dead) if d]
        self._keep(~dead)
        return gone

    def merge(self, now_us: int) -> list[tuple[Track, Track]]:
        """Merge tracks that follow the same target; returns (kept, absorbed) pairs."""
        n = len(self.tracks)
        if n < 2:
            return []
        cfg = self.config
        dt = np.maximum(0.0, (now_us - self.t_us) / 1e6)
        xp, Pp = kalman.predict(self.x, self.P, dt, cfg.process_noise)
        d2 = kalman.merge_distances(xp, Pp, xp, Pp)
        dist = np.hypot(xp[:, None, 0] - xp[None, :, 0], xp[:, None, 1] - xp[None, :, 1])
        dv = np.hypot(xp[:, None, 2] - xp[None, :, 2], xp[:, None, 3] - xp[None, :, 3])
        close = (d2 < cfg.merge_d2) & (dist < cfg.merge_distance_m) & (dv < cfg.merge_speed_mps)
        close = np.triu(close, k=1)
        if not close.any():
            return []
        absorbed = np.zeros(n, dtype=bool)
        pairs = []
        for i, j in zip(*np.nonzero(close)):      # only the few close pairs, in index (= age) order
            if absorbed[i] or absorbed[j]:
                continue
            keep, drop = (i, j) if self._older(i, j) else (j, i)
            self._absorb(keep, drop)
            absorbed[drop] = True
            pairs.append((self.tracks[keep], self.tracks[drop]))
        self._keep(~absorbed)
        return pairs

    def _older(self, i: int, j: int) -> bool:
        a, b = self.tracks[i], self.tracks[j]
        if a.confirmed != b.confirmed:
            return a.confirmed
        return (a.created_us, a.id) <= (b.created_us, b.id)

    def _absorb(self, keep: int, drop: int) -> None:
        k, d = self.tracks[keep], self.tracks[drop]
        k.sources |= d.sources
        k.class_weight = k.class_weight + d.class_weight
        k.hits += d.hits
        if not k.confirmed and d.confirmed:
            k.confirmed, k.confirmed_us = True, d.confirmed_us
        k.plate, k.country = k.plate or d.plate, k.country or d.country
        if self.t_us[drop] > self.t_us[keep]:       # keep the fresher filter state under the older id
            self.x[keep], self.P[keep], self.t_us[keep] = self.x[drop], self.P[drop], self.t_us[drop]
        for key, (tid, t) in list(self._hints.items()):
            if tid == d.id:
                self._hints[key] = (k.id, t)

    def _keep(self, mask: np.ndarray) -> None:
        self.x, self.P, self.t_us = self.x[mask], self.P[mask], self.t_us[mask]
        self.tracks = [t for t, m in zip(self.tracks, mask) if m]
        self._index = {t.id: i for i, t in enumerate(self.tracks)}
        alive = self._index
        self._hints = {k: v for k, v in self._hints.items() if v[0] in alive}


def _pair_costs(x, P, dt, z, R, q):
    """(T,K) d^2 and cost of every track predicted to every detection's own time.

    Written on the three distinct entries of the symmetric 2x2 innovation covariance, so the
    work is a handful of (T,K) array operations and no (T,K,2,2) stacks.
    """
    d = dt
    col = lambda v: v[:, None]  # noqa: E731 - per-track column
    s00 = col(P[:, 0, 0]) + d * col(P[:, 0, 2] + P[:, 2, 0]) + d * d * col(P[:, 2, 2]) + q * d ** 3 / 3.0 + R[None, :, 0, 0]
    s11 = col(P[:, 1, 1]) + d * col(P[:, 1, 3] + P[:, 3, 1]) + d * d * col(P[:, 3, 3]) + q * d ** 3 / 3.0 + R[None, :, 1, 1]
    s01 = col(P[:, 0, 1]) + d * col(P[:, 0, 3] + P[:, 2, 1]) + d * d * col(P[:, 2, 3]) + R[None, :, 0, 1]
    det = s00 * s11 - s01 * s01
    nx = z[None, :, 0] - (col(x[:, 0]) + col(x[:, 2]) * d)
    ny = z[None, :, 1] - (col(x[:, 1]) + col(x[:, 3]) * d)
    d2 = (nx * nx * s11 - 2.0 * nx * ny * s01 + ny * ny * s00) / det
    return d2, d2 + np.log(det)
