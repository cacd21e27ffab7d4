"""Loitering: a track that stays near the border inside a small circle for a long time.

Per track, positions sampled every `sample_s` (confident positions only). The condition holds
at time t when the samples cover [t - duration_s, t] without a gap longer than `max_gap_s`,
every sample lies within `border_distance_m` of the border, and all fit in a circle of
`radius_m` (centred on their bounding box: never smaller than the smallest enclosing circle).
"Lingering, not walking through" (ICD): a slow walker going straight along the border covers
just under 300 m in 300 s and so fits a 150 m circle; the window's start-to-end displacement
must also stay within `max_net_displacement_m`, which a walk-through exceeds. One incident per dwell: after it is raised,
the dwell lasts while the track stays inside that circle near the border; leaving it starts over.
"""
from __future__ import annotations

import collections

import attrs
import numpy as np

from borderfuse.fusion.rules import RuleSet
from borderfuse.fusion.tracker import TrackUpdate


@attrs.define(slots=True)
class _Dwell:
    samples: collections.deque = attrs.field(factory=collections.deque)   # (t_us, x, y, near)
    raised_center: tuple[float, float] | None = None
    judged_oldest_us: int | None = None   # oldest sample of the window last judged (judge a window once)


@attrs.frozen(slots=True)
class LoiterHit:
    track_id: str
    time_us: int
    x: float   # centre of the dwell circle
    y: float
    dwell_no: int


def _window_oldest(samples, start_us: int) -> int | None:
    """Time of the oldest sample of the dwell window from `start_us` (the last one at or before it),
    None when the samples do not reach back to it."""
    if not samples or samples[0][0] > start_us:
        return None
    i = 0
    while i + 1 < len(samples) and samples[i + 1][0] <= start_us:
        i += 1
    return samples[i][0]


class LoiteringDetector:
    def __init__(self, geography, rules: RuleSet, max_position_sigma_m: float):
        self.geography = geography
        self.rule = rules.loitering
        self.max_sigma = max_position_sigma_m
        self._state: dict[str, _Dwell] = {}
        self._count: collections.Counter = collections.Counter()

    def forget(self, track_id: str) -> None:
        self._state.pop(track_id, None)

    def observe(self, updates: list[TrackUpdate], classes: dict[str, str]) -> list[LoiterHit]:
        """`classes`: current class per track id; only tracks of the rule's classes are judged."""
        r = self.rule
        step = int(r.sample_s * 1e6)
        span, gap = int(r.duration_s * 1e6), int(r.max_gap_s * 1e6)
        ups = []   # (update, sampled): between samples, an update only checks whether the dwell is complete
        for u in updates:
            if u.sigma_m > self.max_sigma or not u.track.confirmed:
                continue
            st = self._state.get(u.track.id)
            if st is not None and st.samples and u.time_us - st.samples[-1][0] < step:
                # the dwell is decided the moment it completes, not at the next sample: checked again
                # only when the window changed since the last sample (it now covers `span`, or a sample left it)
                if st.raised_center is None:
                    oldest = _window_oldest(st.samples, u.time_us - span)
                    if oldest is not None and oldest != st.judged_oldest_us:
                        ups.append((u, False))
                continue
            ups.append((u, True))
        if not ups:
            return []
        near = self.geography.distance_to_border(np.array([u.x for u, _ in ups]), np.array([u.y for u, _ in ups]))
        hits = []
        for (u, sampled), d in zip(ups, near.tolist()):
            st = self._state.setdefault(u.track.id, _Dwell())
            if not sampled:
                oldest = _window_oldest(st.samples, u.time_us - span)
                if st.raised_center is not None or oldest is None or oldest == st.judged_oldest_us:
                    continue
                st.judged_oldest_us = oldest
                if classes.get(u.track.id, "unknown") not in r.classes or d > r.border_distance_m:
                    continue
                hit = self._dwell_complete(u, st, list(st.samples) + [(u.time_us, u.x, u.y, True)], span)
                if hit is not None:
                    st.samples.append((u.time_us, u.x, u.y, True))
                    hits.append(hit)
                continue
            s = st.samples
            if s and u.time_us - s[-1][0] > gap:
                s.clear()
                st.raised_center = None
            s.append((u.time_us, u.x, u.y, d <= r.border_distance_m))
            if st.raised_center is not None:
                cx, cy = st.raised_center
                if d > r.border_distance_m or np.hypot(u.x - cx, u.y - cy) > r.radius_m:
                    st.raised_center = None          # the dwell is over
                    s.clear()
                    s.append((u.time_us, u.x, u.y, d <= r.border_distance_m))
                continue
            while len(s) > 1 and s[1][0] <= u.time_us - span:
                s.popleft()
            if s[0][0] > u.time_us - span:
                continue
            st.judged_oldest_us = s[0][0]
            if classes.get(u.track.id, "unknown") not in r.classes:
                continue
            hit = self._dwell_complete(u, st, s, span)
            if hit is not None:
                hits.append(hit)
        return hits

    def may_complete(self, track_id: str, time_us: int) -> bool:
        """Whether an update of the track at `time_us` could complete a dwell not raised yet: the cheap test
        that chooses what to look ahead on. Necessary conditions only, each of which one more point cannot
        mend: the samples reach back `duration_s`, those of the window are all near the border, and their
        extent on each axis fits the circle's diameter (the circle of `_dwell_complete` is centred on the
        bounding box, so it needs at least half the width and half the height)."""
        st = self._state.get(track_id)
        if st is None or st.raised_center is not None or not st.samples or not st.samples[-1][3]:
            return False   # (the newest sample is in every window: one away from the border ends it at once)
        oldest = _window_oldest(st.samples, time_us - int(self.rule.duration_s * 1e6))
        if oldest is None:
            return False
        window = [s for s in st.samples if s[0] >= oldest]
        if not all(s[3] for s in window):
            return False
        xs, ys = [s[1] for s in window], [s[2] for s in window]
        return max(max(xs) - min(xs), max(ys) - min(ys)) <= 2.0 * self.rule.radius_m

    def look_ahead(self, updates: list[TrackUpdate], classes: dict[str, str]) -> list[LoiterHit]:
        """Dwells that provisional track updates (the tracker's filter run on observations still held behind
        the watermark, see Tracker.provisional) complete, judged as `observe` judges the update that completes
        a dwell. Only a hit changes the state (the dwell is raised, once); the samples stay the tracker's own."""
        r = self.rule
        span = int(r.duration_s * 1e6)
        ups = [u for u in updates if u.sigma_m <= self.max_sigma and u.track.confirmed
               and classes.get(u.track.id, "unknown") in r.classes and self.may_complete(u.track.id, u.time_us)]
        if not ups:
            return []
        near = self.geography.distance_to_border(np.array([u.x for u in ups]), np.array([u.y for u in ups]))
        hits = []
        for u, d in zip(ups, near.tolist()):
            st = self._state[u.track.id]
            if st.raised_center is not None or d > r.border_distance_m:
                continue
            hit = self._dwell_complete(u, st, list(st.samples) + [(u.time_us, u.x, u.y, True)], span)
            if hit is not None:
                hits.append(hit)
        return hits

    def _dwell_complete(self, u: TrackUpdate, st: _Dwell, samples, span: int) -> LoiterHit | None:
        """The hit when `samples` (the last one is `u`) make a complete dwell: the window since
        u.time - span all near the border, inside the circle, lingering; the dwell is then raised."""
        r = self.rule
        pts = np.array(samples, dtype=float)
        pts = pts[max(0, int(np.searchsorted(pts[:, 0], u.time_us - span, side="right")) - 1):]
        if not pts[:, 3].all():
            return None
        cx = 0.5 * (pts[:, 1].min() + pts[:, 1].max())
        cy = 0.5 * (pts[:, 2].min() + pts[:, 2].max())
        net = np.hypot(pts[-1, 1] - pts[0, 1], pts[-1, 2] - pts[0, 2])
        if np.hypot(pts[:, 1] - cx, pts[:, 2] - cy).max() > r.radius_m or net > r.max_net_displacement_m:
            return None
        st.raised_center = (float(cx), float(cy))
        self._count[u.track.id] += 1
        return LoiterHit(u.track.id, u.time_us, float(cx), float(cy), self._count[u.track.id])
