"""Multi-sensor multi-target tracker: constant-velocity Kalman filters in the shared frame.

One scan = the observations of one sensor inside one processing slice. A scan is gated through a
KD-tree of its detections (`association`: only tracks and detections near each other are
compared; Mahalanobis, each pair predicted to the detection's own time with the observation's own
covariance) and assigned by global nearest neighbour on d^2 + ln det S, in two stages: confirmed
tracks first, then tentative tracks on the detections the confirmed ones left (Stone Soup's
split between its tracker and its initiator), so a tentative track can never outbid the
confirmed track of the same target. Leftover detections start tentative tracks, except a near
miss (just outside the gate, inside `near_miss_d2`) of a confirmed track that got no detection
in this scan: that is the track's own outlier, and a track founded on it would split the target.
A tentative track is confirmed after `confirm_hits` qualifying hits within `confirm_window_s`
(DE radar reports still `tentative` at the radar do not qualify: the radar's own short false
tracks then never confirm, and PL clutter plots never collect a second hit). Tracks are
deleted after a coast time without updates.

DE radar tracks and camera objects carry the sensor's local id: while the local id lives it
is an association hint (cheaper cost, wider gate, first stage) for the fused track it last fed,
so a target keeps its track through a sensor's noise; hints expire after `hint_ttl_s` without use
or when the radar reports the track `lost`, because radars reuse their numbers.

Tracks of one target started by two sensors before either could gate the other are merged
(into the confirmed one, else the older) when their positions and velocities agree; candidate
pairs come from a KD-tree (`merge`), so a target seen from both sides of the border is one fused
track with one id. Track ids come from a counter, so the same input order gives the same ids.
"""
from __future__ import annotations

import attrs
import numpy as np

from borderfuse.fusion import association, kalman, merge
from borderfuse.sensors.base import CLASSES, Observation

RECENT_SCANS = 8      # updates remembered per track: more than a crossing's worth of missed detections
CLASS_INDEX = {c: i for i, c in enumerate(CLASSES)}
_UNKNOWN = CLASS_INDEX["unknown"]


@attrs.frozen(slots=True)
class TrackerConfig:
    process_noise: float = 1.0        # q of the CV model, m^2/s^3
    gate_d2: float = kalman.CHI2_2DOF_999
    # a leftover detection this close to a confirmed track that got nothing is its outlier, not a new target
    near_miss_d2: float = kalman.CHI2_2DOF_999999
    hint_gate_factor: float = 4.0     # gate multiplier for a detection whose local id hints at the track
    hint_bonus: float = 10.0          # cost reduction for the hinted pair
    hint_ttl_s: float = 15.0
    init_sigma_v: float = 8.0         # m/s, velocity 1-sigma of a new track without a measured velocity
    confirm_hits: int = 4
    # a hit in a gate this many times the detection's own error area (a tentative track that coasted
    # without a known velocity) is as likely clutter as the target: it updates but does not count
    weak_hit_area_ratio: float = 6.0
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
    cov: tuple[float, float, float] | None = None  # position covariance (xx, xy, yy), m^2


class Tracker:
    def __init__(self, config: TrackerConfig = TrackerConfig()):
        self.config = config
        self.x = np.zeros((0, 4))
        self.P = np.zeros((0, 4, 4))
        self.t_us = np.zeros(0, dtype=np.int64)
        # scan numbers of each track's last RECENT_SCANS updates (-1 = none): two confirmed tracks
        # updated in one scan saw two objects, so `merge` never joins them
        self.recent_scans = np.zeros((0, RECENT_SCANS), dtype=np.int64)
        self._scan_no = 0
        self.tracks: list[Track] = []
        self._index: dict[str, int] = {}
        self._hints: dict[tuple[str, str], tuple[str, int]] = {}
        self._next_id = 1
        self.confirmed_total = 0
        self.near_misses = 0          # detections kept from founding a rival of a confirmed track

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

    def provisional(self, hinted: dict[str, list[Observation]]) -> list[TrackUpdate]:
        """What observations not processed yet would make of the tracks their local ids hint at: per track
        (id -> its observations in event order), the filter is run on a copy of its state, an observation
        outside the hinted gate is skipped; one update per observation used. The tracker is unchanged."""
        cfg = self.config
        out = []
        for track_id, obs in hinted.items():
            i = self._index.get(track_id)
            if i is None:
                continue
            x, P, t = self.x[i:i + 1], self.P[i:i + 1], int(self.t_us[i])
            for o in obs:
                if o.time_us < t:
                    continue
                xp, Pp = kalman.predict(x, P, np.array([(o.time_us - t) / 1e6]), cfg.process_noise)
                z, R = np.asarray(o.xy, float)[None], np.asarray(o.cov, float)[None]
                d2, _ = kalman.gating_costs(xp, Pp, z, R)
                if float(np.ravel(d2)[0]) > cfg.gate_d2 * cfg.hint_gate_factor:
                    continue
                x, P = kalman.update(xp, Pp, z, R)
                t = o.time_us
                a, b, d = float(P[0, 0, 0]), float(P[0, 0, 1]), float(P[0, 1, 1])
                worst = float(np.sqrt(max(0.0, 0.5 * (a + d) + np.sqrt(0.25 * (a - d) ** 2 + b * b))))
                out.append(TrackUpdate(self.tracks[i], t, float(x[0, 0]), float(x[0, 1]), float(x[0, 2]),
                                       float(x[0, 3]), worst, (a, b, d)))
        return out

    def positions_at(self, time_us: int) -> tuple[np.ndarray, np.ndarray]:
        """Predicted (x, y) of every track at `time_us` (no covariance): for attaching ANPR reads."""
        dt = np.maximum(0.0, (time_us - self.t_us) / 1e6)
        return self.x[:, 0] + self.x[:, 2] * dt, self.x[:, 1] + self.x[:, 3] * dt

    # --- the scan ---
    def process_scan(self, obs: list[Observation]) -> list[TrackUpdate]:
        """Associate one sensor's detections with the tracks, update, start new tracks.

        Two stages, so a target is not split: confirmed tracks (and any track a detection's local id
        hints at) are assigned first; tentative tracks compete only for what that leaves. A leftover
        detection that is a near miss of a confirmed track which got nothing in this scan (inside
        `near_miss_d2`, outside the gate) is the track's own outlier, so it starts no rival track.
        """
        cfg = self.config
        k = len(obs)
        if not k:
            return []
        z = np.array([o.xy for o in obs], dtype=float).reshape(k, 2)
        R = np.array([o.cov for o in obs], dtype=float).reshape(k, 2, 2)
        t_obs = np.array([o.time_us for o in obs], dtype=np.int64)
        self._scan_no += 1
        assigned_t, assigned_k, weak, near_miss = self._associate(obs, z, R, t_obs)
        updates = []
        if assigned_t.size:
            t_new = np.maximum(self.t_us[assigned_t], t_obs[assigned_k])
            dt = (t_new - self.t_us[assigned_t]) / 1e6
            xp, Pp = kalman.predict(self.x[assigned_t], self.P[assigned_t], dt, cfg.process_noise)
            xn, Pn = kalman.update(xp, Pp, z[assigned_k], R[assigned_k])
            updates.extend(self._apply(obs, assigned_t, assigned_k, weak, xn, Pn, t_new))
        free = np.ones(k, dtype=bool)
        free[assigned_k] = False
        new_k = np.flatnonzero(free & ~near_miss)
        if new_k.size:
            vel = np.array([o.velocity if o.velocity is not None else (np.nan, np.nan)
                            for o in (obs[j] for j in new_k)])
            x0, P0 = kalman.initial_state(z[new_k], R[new_k], vel, self.config.init_sigma_v)
            updates.extend(self._start(obs, new_k, x0, P0, t_obs[new_k]))
        return updates

    def _associate(self, obs, z, R, t_obs) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The scan's association: (assigned track indices, their detection indices, in detection order;
        whether each hit is weak; which detections are near misses of a confirmed track). No state but the
        near-miss counter changes (a what-if tape records exactly this and replays the rest)."""
        cfg = self.config
        k = len(obs)
        n = len(self.tracks)
        near_miss = np.zeros(k, dtype=bool)
        if not n:
            empty = np.zeros(0, dtype=np.intp)
            return empty, empty, np.zeros(0, dtype=bool), near_miss
        ti, kj, d2, cost, gate = self._candidates(obs, z, R, t_obs)
        log_det_s = cost - d2 + np.where(gate > cfg.gate_d2, cfg.hint_bonus, 0.0)
        feasible = d2 <= gate
        confirmed = np.fromiter((t.confirmed for t in self.tracks), dtype=bool, count=n)[ti]
        first = feasible & (confirmed | (gate > cfg.gate_d2))      # wider gate = hinted pair
        t1, k1 = association.solve_gnn(ti[first], kj[first], cost[first], n, k)
        taken_t = np.zeros(n, dtype=bool)
        taken_k = np.zeros(k, dtype=bool)
        taken_t[t1] = True
        taken_k[k1] = True
        second = feasible & ~confirmed & ~taken_t[ti] & ~taken_k[kj]
        t2, k2 = association.solve_gnn(ti[second], kj[second], cost[second], n, k)
        taken_k[k2] = True
        assigned_t, assigned_k = np.concatenate([t1, t2]), np.concatenate([k1, k2])
        # ln of (gate area / the detection's own error area)^2 of each assigned pair
        pair = np.searchsorted(ti * k + kj, assigned_t * k + assigned_k)
        spread = log_det_s[pair] - np.log(R[assigned_k, 0, 0] * R[assigned_k, 1, 1] - R[assigned_k, 0, 1] ** 2)
        miss = confirmed & ~taken_t[ti] & ~taken_k[kj] & (d2 <= cfg.near_miss_d2)
        near_miss[kj[miss]] = True
        self.near_misses += int(near_miss.sum())
        order = np.argsort(assigned_k, kind="stable")           # detection order: deterministic output
        assigned_t, assigned_k, spread = assigned_t[order], assigned_k[order], spread[order]
        return assigned_t, assigned_k, spread > 2.0 * np.log(cfg.weak_hit_area_ratio), near_miss

    def _apply(self, obs, assigned_t, assigned_k, weak, xn, Pn, t_new) -> list[TrackUpdate]:
        """The assigned tracks take their updated filter states (xn, Pn at t_new) and credit their detections."""
        self.x[assigned_t], self.P[assigned_t], self.t_us[assigned_t] = xn, Pn, t_new
        self.recent_scans[assigned_t, 1:] = self.recent_scans[assigned_t, :-1]
        self.recent_scans[assigned_t, 0] = self._scan_no
        for ti_, ki_, weak_ in zip(assigned_t.tolist(), assigned_k.tolist(), weak.tolist()):
            self._credit(self.tracks[ti_], obs[ki_], weak_)
        return self._updates(assigned_t)

    def _candidates(self, obs, z, R, t_obs):
        """Candidate (track, detection) pairs from the KD-tree, with d^2, cost and each pair's gate."""
        cfg = self.config
        dt_lo = np.maximum(0.0, (t_obs.min() - self.t_us) / 1e6)
        dt_hi = np.maximum(0.0, (t_obs.max() - self.t_us) / 1e6)
        reach = max(cfg.gate_d2, cfg.near_miss_d2)
        max_r_trace = float((R[:, 0, 0] + R[:, 1, 1]).max())
        centres, radii = association.gate_radii(self.x, self.P, dt_lo, dt_hi, cfg.process_noise, max_r_trace, reach)
        ti, kj = association.candidate_pairs(centres, radii, z)
        k = len(obs)
        hint_t, hint_k = self._hint_pairs(obs, t_obs)
        hinted = np.zeros(ti.size, dtype=bool)
        if hint_t.size:
            code = ti * k + kj
            hint_code = hint_t * k + hint_k
            code = np.union1d(code, hint_code)                       # sorted: track-major order again
            ti, kj = code // k, code % k
            hinted = np.isin(code, hint_code)
        dt = np.maximum(0.0, (t_obs[kj] - self.t_us[ti]) / 1e6)
        d2, cost = association.pair_costs(self.x[ti], self.P[ti], dt, z[kj], R[kj], cfg.process_noise)
        gate = np.where(hinted, cfg.gate_d2 * cfg.hint_gate_factor, cfg.gate_d2)
        cost = np.where(hinted, cost - cfg.hint_bonus, cost)
        return ti, kj, d2, cost, gate

    def _hint_pairs(self, obs: list[Observation], t_obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(track index, detection index) of detections whose local id hints at a live track."""
        pairs = []
        if self._hints:
            ttl = int(self.config.hint_ttl_s * 1e6)
            for j, o in enumerate(obs):
                if o.local_id is None:
                    continue
                hint = self._hints.get((o.sensor_id, o.local_id))
                if hint is None or t_obs[j] - hint[1] > ttl:
                    continue
                i = self._index.get(hint[0])
                if i is not None:
                    pairs.append((i, j))
        if not pairs:
            return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
        arr = np.array(pairs, dtype=np.intp)
        return arr[:, 0], arr[:, 1]

    def _credit(self, track: Track, o: Observation, weak: bool = False) -> None:
        cfg = self.config
        track.sources.add(o.sensor_id)
        if not weak and not (o.sensor_kind == "radar" and o.status == "tentative"):
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

    def _start(self, obs, new_k, x0, P0, t0) -> list[TrackUpdate]:
        """New tracks on detections `new_k`, with initial filter states x0, P0 at times t0."""
        first = len(self.tracks)
        self.x = np.concatenate([self.x, x0])
        self.P = np.concatenate([self.P, P0])
        self.t_us = np.concatenate([self.t_us, t0])
        recent = np.full((new_k.size, RECENT_SCANS), -1, dtype=np.int64)
        recent[:, 0] = self._scan_no
        self.recent_scans = np.concatenate([self.recent_scans, recent])
        for j, t in zip(new_k.tolist(), t0.tolist()):
            track = Track(id=f"trk-{self._next_id:06d}", created_us=int(t))
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
        return [TrackUpdate(self.tracks[i], int(ti), float(xi[0]), float(xi[1]), float(xi[2]), float(xi[3]), float(w),
                            (ai, bi, di))
                for i, ti, xi, w, ai, bi, di in zip(idx.tolist(), t.tolist(), x, worst.tolist(), a.tolist(), b.tolist(),
                                                    d.tolist())]

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
        xp = self.x.copy()
        xp[:, 0:2] += self.x[:, 2:4] * dt[:, None]
        pos_cov = kalman.predicted_position_cov(self.P, dt, cfg.process_noise)
        close_i, close_j = merge.close_pairs(xp, pos_cov, cfg.merge_d2, cfg.merge_distance_m, cfg.merge_speed_mps)
        if close_i.size:
            confirmed = np.fromiter((t.confirmed for t in self.tracks), dtype=bool, count=n)
            distinct = (confirmed[close_i] & confirmed[close_j]
                        & merge.updated_together(self.recent_scans[close_i], self.recent_scans[close_j]))
            close_i, close_j = close_i[~distinct], close_j[~distinct]
        if not close_i.size:
            return []
        absorbed = np.zeros(n, dtype=bool)
        pairs = []
        for i, j in zip(close_i.tolist(), close_j.tolist()):   # in index (= age) order
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
            self.recent_scans[keep] = self.recent_scans[drop]
        for key, (tid, t) in list(self._hints.items()):
            if tid == d.id:
                self._hints[key] = (k.id, t)

    def _keep(self, mask: np.ndarray) -> None:
        self.x, self.P, self.t_us = self.x[mask], self.P[mask], self.t_us[mask]
        self.recent_scans = self.recent_scans[mask]
        self.tracks = [t for t, m in zip(self.tracks, mask) if m]
        self._index = {t.id: i for i, t in enumerate(self.tracks)}
        alive = self._index
        self._hints = {k: v for k, v in self._hints.items() if v[0] in alive}

