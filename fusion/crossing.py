"""Border crossings of tracks: path segments against the border line, with hysteresis and a class hold.

Per track: the side it is established on (last seen on it with `side_probability`, i.e. at a
distance of at least z * sigma of its own position uncertainty, and `side_margin_m`)
and its path since it was last established there. When a confident position lies at least
the margin onto the other side, the path's segments are tested against the border line
(segment crossing, not the last point) and the first crossing is a *candidate*. The candidate
is held until the track's class is settled (at least `class_min_hold_s`) or `class_max_hold_s`
has passed, because the class may become known only after the crossing; then it becomes a
border_crossing or drone_crossing incident, or nothing (animal, lawful crossing point, outside
every sector, same event as an earlier crossing).
"""
from __future__ import annotations

import attrs
import numpy as np

from borderfuse.fusion.rules import RuleSet
from borderfuse.fusion.tracker import TrackUpdate

_MAX_PATH = 400


def _z_of(probability: float) -> float:
    """One-sided normal quantile: P(N(0,1) <= z) = probability."""
    from scipy.special import ndtri
    return float(ndtri(probability))


@attrs.define(slots=True)
class _SideState:
    side: str | None = None
    path: list = attrs.field(factory=list)   # (t_us, x, y) since the track was last established on `side`


@attrs.frozen(slots=True)
class CrossingCandidate:
    track_id: str
    time_us: int
    x: float
    y: float
    at_crossing_point: bool
    from_side: str
    to_side: str


class CrossingDetector:
    def __init__(self, geography, rules: RuleSet):
        self.geography = geography
        self.params = rules.crossing
        self._state: dict[str, _SideState] = {}

    def forget(self, track_id: str) -> None:
        self._state.pop(track_id, None)

    def observe(self, updates: list[TrackUpdate]) -> list[CrossingCandidate]:
        """Feed track updates (time order); returns the crossings they complete."""
        ups = [u for u in updates if u.sigma_m <= self.params.max_position_sigma_m]
        if not ups:
            return []
        found: list[tuple[str, list, str, str]] = []
        for u, side, far in zip(ups, *self._judge(ups)):
            st = self._state.get(u.track.id)
            if st is None:
                st = self._state[u.track.id] = _SideState()
            point = (u.time_us, u.x, u.y)
            if st.side is None:
                if far:
                    st.side, st.path = side, [point]
            elif side == st.side:
                if far:
                    st.path = [point]
                else:
                    st.path.append(point)
            else:
                st.path.append(point)
                if far:
                    found.append((u.track.id, st.path, st.side, side))
                    st.side, st.path = side, [point]
            if len(st.path) > _MAX_PATH:
                del st.path[1:len(st.path) - _MAX_PATH // 2]
        return [c for c in (self._first_crossing(*f) for f in found) if c is not None]

    def _judge(self, ups: list[TrackUpdate]) -> tuple[list[str], list[bool]]:
        """(side, far) per update: far = on that side with the rule's probability, judged on the track's own
        uncertainty across the line (the covariance projected on the border normal: a radar's range error
        along the line does not make a crossing doubtful; across it, it does)."""
        p = self.params
        xs = np.array([u.x for u in ups])
        ys = np.array([u.y for u in ups])
        sides = self.geography.border_side(xs, ys)
        dist = self.geography.distance_to_border(xs, ys)
        nx, ny = self.geography.border_normal(xs, ys)
        cov = np.array([u.cov if u.cov is not None else (u.sigma_m ** 2, 0.0, u.sigma_m ** 2) for u in ups])
        across = np.sqrt(np.maximum(cov[:, 0] * nx * nx + 2 * cov[:, 1] * nx * ny + cov[:, 2] * ny * ny, 0.0))
        across = np.where((nx == 0) & (ny == 0), np.array([u.sigma_m for u in ups]), across)
        far = dist >= np.maximum(p.side_margin_m, _z_of(p.side_probability) * across)
        return sides.tolist(), far.tolist()

    def pending_side(self, track_id: str) -> str | None:
        """The side a track is established on (None: not yet), for choosing what to look ahead on."""
        st = self._state.get(track_id)
        return None if st is None else st.side

    def look_ahead(self, updates: list[TrackUpdate]) -> list[CrossingCandidate]:
        """Crossings that provisional track updates (the tracker's filter run on observations still held
        behind the watermark, see Tracker.provisional) already show, judged exactly as `observe` judges
        the tracker's own updates, from the same per-track state, which is left unchanged: the tracker's
        own crossing follows when the observations are processed (and is then the same event)."""
        ups = [u for u in updates if u.sigma_m <= self.params.max_position_sigma_m]
        if not ups:
            return []
        out, done = [], set()
        for u, side, far in zip(ups, *self._judge(ups)):
            st = self._state.get(u.track.id)
            if u.track.id in done or st is None or st.side is None:
                continue
            if side != st.side and far:
                done.add(u.track.id)
                cand = self._first_crossing(u.track.id, st.path + [(u.time_us, u.x, u.y)], st.side, side)
                if cand is not None:
                    out.append(cand)
        return out

    def _first_crossing(self, track_id, path, from_side, to_side) -> CrossingCandidate | None:
        pts = np.array(path, dtype=float)
        crosses, cx, cy, at_cp = self.geography.crossing_points_of_segments(pts[:-1, 1], pts[:-1, 2],
                                                                             pts[1:, 1], pts[1:, 2])
        hit = np.flatnonzero(crosses)
        if hit.size == 0:   # went round the line's end: no crossing of the line itself
            return None
        i = int(hit[0])
        seg = np.hypot(pts[i + 1, 1] - pts[i, 1], pts[i + 1, 2] - pts[i, 2])
        frac = 0.0 if seg == 0 else float(np.hypot(cx[i] - pts[i, 1], cy[i] - pts[i, 2]) / seg)
        t = int(round(pts[i, 0] + frac * (pts[i + 1, 0] - pts[i, 0])))
        return CrossingCandidate(track_id, t, float(cx[i]), float(cy[i]), bool(at_cp[i]), from_side, to_side)
