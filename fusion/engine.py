"""The fusion engine: event-ordered observations in, incidents out. Pure: no I/O, no clock.

The caller (ingest.pipeline) feeds items released by the reorder buffer, in event-time order,
together with the watermark. The engine cuts the stream into slices of `slice_s` of event time
and processes a slice only once the watermark has passed its end, so the grouping into sensor
scans does not depend on how the input was batched (live polls vs replay chunks). Inside a
slice, each sensor's observations are one scan. Track maintenance (prune, merge) and the
decisions on held crossings run on slice boundaries, i.e. on event time only; a crossing whose hold
is already over is decided at the track update that completes it. `look_ahead` decides crossings
that observations still held behind the watermark already show (a copy of the track's filter).
"""
from __future__ import annotations

import collections
from typing import Any

import attrs
import numpy as np

from borderfuse.fusion.crossing import CrossingCandidate, CrossingDetector
from borderfuse.fusion.hotlist import HotlistMatcher
from borderfuse.fusion.loitering import LoiteringDetector
from borderfuse.fusion.rules import RuleSet
from borderfuse.fusion.tracker import Tracker, TrackUpdate
from borderfuse.fusion.types import Incident, TrackReport
from borderfuse.sensors.base import Observation

SLICE_US = 500_000
MAINTAIN_US = 1_000_000


class FusionEngine:
    def __init__(self, geography, rules: RuleSet, collect_tracks: bool = False):
        self.geography = geography
        self.rules = rules
        self.tracker = Tracker(rules.tracker)
        self.crossings = CrossingDetector(geography, rules)
        self.loitering = LoiteringDetector(geography, rules, rules.crossing.max_position_sigma_m)
        self.hotlist = HotlistMatcher(rules.hotlist_vehicle)
        self.collect_tracks = collect_tracks
        self.track_reports: list[TrackReport] = []
        self.stats: collections.Counter = collections.Counter()
        self._pending: list[Any] = []             # released, waiting for their slice to complete
        self._held: list[CrossingCandidate] = []  # crossings waiting for the track's class
        self._raised: list[tuple[str, int, float, float, str]] = []  # (type, t, x, y, track) of recent crossings
        self._last_class: dict[str, str] = {}
        self._last_confirmed: dict[str, bool] = {}
        self._track_sources: dict[str, set] = {}
        self._next_maintain: int | None = None
        self._crossing_no: collections.Counter = collections.Counter()
        # raised crossings that still follow their track's class: track id -> (incident, candidate, until µs)
        self._following: dict[str, tuple[Incident, CrossingCandidate, int]] = {}

    # --- input ---
    def process(self, items: list[Any], watermark_us: int | None) -> list[Incident]:
        """Items (Observation or hotlist update, event order) released up to `watermark_us`."""
        self._pending.extend(items)
        if watermark_us is None:
            return []
        return self._run(watermark_us - watermark_us % SLICE_US)

    def flush(self, final: bool = True) -> list[Incident]:
        """Process everything released so far.

        `final` (end of input): also run event time on past the class hold and decide every held
        crossing. Not final (the live feed went quiet): nothing is decided early; held crossings
        wait for later data as usual.
        """
        if not self._pending and not (final and self._held):
            return []
        end = max([_time_of(i) for i in self._pending] + [c.time_us for c in self._held] + [0])
        if not final:
            return self._run(end - end % SLICE_US + SLICE_US)
        far = end + int(max(self.rules.crossing.class_max_hold_s, 1.0) * 1e6) + 2 * SLICE_US
        out = self._run(far - far % SLICE_US + SLICE_US)
        return out + self._decide(far, final=True)

    def set_rules(self, rules: RuleSet) -> None:
        """Switch to another rule set and keep every track and every rule's state (a live rule change)."""
        self.rules = rules
        self.tracker.config = rules.tracker
        self.crossings.params = rules.crossing
        self.loitering.rule = rules.loitering
        self.loitering.max_sigma = rules.crossing.max_position_sigma_m
        self.hotlist.rule = rules.hotlist_vehicle

    def read_anpr(self, obs: Observation) -> list[Incident]:
        """An ANPR read, judged at once (the caller feeds reads in arrival order, not event order):
        a hotlist hit needs only the read and the list, and passages do not depend on order."""
        return self._anpr([obs])

    def late(self, obs: Observation) -> tuple[str, list[Incident]]:
        """An observation behind the watermark: use what is still sound.

        Returns (what was done, incidents). An ANPR read is judged as usual (passages do not
        depend on order); a detection whose local id hints at a track that has not moved past
        it updates that track; otherwise its classification still counts for the hinted track;
        anything else is counted as late and not used.
        """
        if obs.sensor_kind == "anpr":
            return "anpr_read_used", self._anpr([obs])
        track_id = self.tracker.hinted_track(obs)
        if track_id is not None:
            last = self.tracker.last_update_us(track_id)
            if last is not None and last <= obs.time_us:
                return "position_used", self._incidents_from_updates(self.tracker.process_scan([obs]))
            if obs.cls is not None and obs.cls != "unknown":
                self.tracker.add_class_evidence(track_id, obs)
                return "class_used", []
        return "behind_track", []

    def look_ahead(self, held: list[Any]) -> list[Incident]:
        """Decisions that observations still waiting behind the watermark (`held`: the items the reorder
        buffer holds, in event order) already allow, so that a well-observed target is called as soon as its
        own sensors show it, not a whole allowed lateness later: crossings, and dwells that complete. Only
        observations whose local id hints at a track count; the tracker's filter runs on a copy
        (Tracker.provisional) and the rule judges exactly as on the tracker's own updates."""
        hinted: dict[str, list[Observation]] = {}
        for item in held:
            if isinstance(item, HotlistItem) or item.local_id is None or item.sensor_kind == "anpr":
                continue
            track_id = self.tracker.hinted_track(item)
            if track_id is not None:
                hinted.setdefault(track_id, []).append(item)
        if not hinted:
            return []
        out = self._look_ahead_crossings({t: obs for t, obs in hinted.items()
                                          if self.crossings.pending_side(t) is not None})
        if self.rules.loitering.enabled:
            out += self._look_ahead_loitering({t: obs for t, obs in hinted.items()
                                               if self.loitering.may_complete(t, obs[-1].time_us)})
        return out

    def _look_ahead_crossings(self, hinted: dict[str, list[Observation]]) -> list[Incident]:
        """Only tracks established on a side that one of their held observations puts on the other side;
        the crossing is judged as on the tracker's updates (CrossingDetector.look_ahead), the class hold
        applies as usual, and the tracker's own crossing of the track later is the same event."""
        if not hinted:
            return []
        ids = list(hinted)
        last = [hinted[t][-1] for t in ids]
        sides = self.geography.border_side(np.array([float(o.xy[0]) for o in last]),
                                           np.array([float(o.xy[1]) for o in last])).tolist()
        p, cfg = self.rules.crossing, self.rules.tracker
        now_us = max(o.time_us for o in last)
        crossing = {}
        for track_id, side in zip(ids, sides):
            track = self.tracker.get(track_id)
            if side == self.crossings.pending_side(track_id) or track is None or not track.confirmed:
                continue
            if any(c.track_id == track_id for c in self._held) or any(
                    r[4] == track_id and now_us - r[1] <= p.recross_s * 1e6 for r in self._raised):
                continue
            crossing[track_id] = hinted[track_id]
        if not crossing:
            return []
        out = []
        for cand in self.crossings.look_ahead(self.tracker.provisional(crossing)):
            cls, settled = self.tracker.get(cand.track_id).class_state(cfg.settle_weight, cfg.settle_share)
            waited = (now_us - cand.time_us) / 1e6
            if (settled and waited >= p.class_min_hold_s) or waited >= p.class_max_hold_s:
                self.stats["crossing_looked_ahead"] += 1
                out += self._crossing_incident(cand, cls)
        return out

    def _look_ahead_loitering(self, hinted: dict[str, list[Observation]]) -> list[Incident]:
        """Dwells whose 300 s a held observation completes (LoiteringDetector.look_ahead): raised then,
        once; the tracker's own update of the track later finds the dwell already raised."""
        if not hinted:
            return []
        cfg = self.rules.tracker
        classes = {}
        for track_id in hinted:
            track = self.tracker.get(track_id)
            classes[track_id] = track.class_state(cfg.settle_weight, cfg.settle_share)[0] if track else "unknown"
        out = []
        for hit in self.loitering.look_ahead(self.tracker.provisional(hinted), classes):
            self.stats["loitering_looked_ahead"] += 1
            out += self._loitering_incident(hit)
        return out

    # --- slices ---
    def _run(self, upto_us: int) -> list[Incident]:
        out: list[Incident] = []
        ready = [i for i in self._pending if _time_of(i) < upto_us]
        self._pending = [i for i in self._pending if _time_of(i) >= upto_us]
        start = 0
        while start < len(ready):
            slice_no = _time_of(ready[start]) // SLICE_US
            end = start
            while end < len(ready) and _time_of(ready[end]) // SLICE_US == slice_no:
                end += 1
            out += self._slice(ready[start:end], (slice_no + 1) * SLICE_US)
            start = end
        out += self._maintain(upto_us)
        return out

    def _slice(self, items: list[Any], slice_end_us: int) -> list[Incident]:
        out = self._maintain(slice_end_us - SLICE_US)
        scans: dict[str, list[Observation]] = {}
        anpr = []
        for item in items:
            if isinstance(item, HotlistItem):
                self.hotlist.apply(item.update)
                self.stats["applied_hotlist_updates"] += 1
            elif item.sensor_kind == "anpr":
                anpr.append(item)
            else:
                scans.setdefault(item.sensor_id, []).append(item)
        updates: list[TrackUpdate] = []
        for obs in scans.values():            # insertion order = first appearance in event order
            updates += self.tracker.process_scan(obs)
        out += self._incidents_from_updates(updates)
        if anpr:
            out += self._anpr(anpr)
        return out

    def _maintain(self, now_us: int) -> list[Incident]:
        if self._next_maintain is None:
            self._next_maintain = now_us - now_us % MAINTAIN_US
        out = []
        while self._next_maintain <= now_us:
            t = self._next_maintain
            for kept, gone in self.tracker.merge(t):
                self._on_merge(kept.id, gone.id)
            for track in self.tracker.prune(t):
                self._on_delete(track.id)
            out += self._decide(t)
            out += self._follow_classes(t)
            self._next_maintain += MAINTAIN_US
        return out

    # --- rules ---
    def _incidents_from_updates(self, updates: list[TrackUpdate]) -> list[Incident]:
        if not updates:
            return []
        cfg = self.rules.tracker
        classes = {}
        for u in updates:
            cls, _ = u.track.class_state(cfg.settle_weight, cfg.settle_share)
            classes[u.track.id] = self._last_class[u.track.id] = cls
            self._last_confirmed[u.track.id] = u.track.confirmed
            self._track_sources[u.track.id] = u.track.sources
        if self.collect_tracks:
            self._report(updates, classes)
        found = self.crossings.observe(updates)
        self._held += found
        out = []
        if found:
            # decided at once when the evidence is complete (a confirmed track, its class settled or no
            # hold to wait), not at the next maintenance tick: the track's own update is the moment
            out += self._decide(max(u.time_us for u in updates), only_confirmed=True)
        if self.rules.loitering.enabled:
            for hit in self.loitering.observe(updates, classes):
                out += self._loitering_incident(hit)
        return out

    def _decide(self, now_us: int, final: bool = False, only_confirmed: bool = False) -> list[Incident]:
        """Decide the held crossings whose hold is over at `now_us`; `only_confirmed`: a candidate of a track
        not confirmed yet stays held (it may still be confirmed before its hold ends)."""
        p = self.rules.crossing
        keep, out = [], []
        for cand in self._held:
            track = self.tracker.get(cand.track_id)
            cfg = self.rules.tracker
            if track is not None:
                cls, settled = track.class_state(cfg.settle_weight, cfg.settle_share)
                confirmed = track.confirmed
            else:
                cls, settled = self._last_class.get(cand.track_id, "unknown"), True
                confirmed = self._last_confirmed.get(cand.track_id, False)
            waited = (now_us - cand.time_us) / 1e6
            if not final and not ((settled and waited >= p.class_min_hold_s) or waited >= p.class_max_hold_s):
                keep.append(cand)
                continue
            if not confirmed and only_confirmed and track is not None:
                keep.append(cand)
                continue
            if not confirmed:
                self.stats["crossing_unconfirmed_track"] += 1
                continue
            out += self._crossing_incident(cand, cls)
        self._held = keep
        return out

    def _follow_classes(self, now_us: int) -> list[Incident]:
        """A raised crossing follows its track's class for `follow_class_s`: a settled change is an
        update (same id, higher seq); a class its rule does not raise withdraws it (an animal), and a
        drone first raised as an unknown border crossing becomes a drone_crossing."""
        out: list[Incident] = []
        cfg = self.rules.tracker
        for track_id, (incident, cand, until) in list(self._following.items()):
            track = self.tracker.get(track_id)
            if track is None or now_us > until:
                del self._following[track_id]
                continue
            cls, settled = track.class_state(cfg.settle_weight, cfg.settle_share)
            if not settled or cls == incident.cls:
                continue
            rule = self.rules.drone_crossing if incident.type == "drone_crossing" else self.rules.border_crossing
            if cls in rule.classes:
                incident = attrs.evolve(incident, cls=cls, seq=incident.seq + 1,
                                        summary=incident.summary.replace(f"{incident.cls} crossed", f"{cls} crossed"))
                self._following[track_id] = (incident, cand, until)
                self.stats["crossing_class_updated"] += 1
                out.append(incident)
                continue
            del self._following[track_id]
            self.stats[f"crossing_withdrawn_{cls}"] += 1
            out.append(attrs.evolve(incident, cls=cls, seq=incident.seq + 1, status="withdrawn",
                                    summary=f"withdrawn: the track turned out to be {cls}"))
            self._raised = [r for r in self._raised if not (r[4] == track_id and r[1] == cand.time_us)]
            if cls in self.rules.drone_crossing.classes:
                out += self._crossing_incident(cand, cls)
        return out

    def _crossing_incident(self, cand: CrossingCandidate, cls: str) -> list[Incident]:
        if cls in self.rules.drone_crossing.classes and self.rules.drone_crossing.enabled:
            kind, rule = "drone_crossing", self.rules.drone_crossing
        elif cls in self.rules.border_crossing.classes and self.rules.border_crossing.enabled:
            if cand.at_crossing_point:
                self.stats["crossing_lawful"] += 1
                return []
            kind, rule = "border_crossing", self.rules.border_crossing
        else:
            self.stats[f"crossing_suppressed_{cls}"] += 1
            return []
        p = self.rules.crossing
        recross, dup, radius = int(p.recross_s * 1e6), int(p.duplicate_s * 1e6), p.duplicate_radius_m
        self._raised = [r for r in self._raised if cand.time_us - r[1] <= 2 * max(recross, dup)]
        for r_kind, r_t, r_x, r_y, r_track in self._raised:
            if r_kind != kind:
                continue
            if (r_track == cand.track_id and abs(cand.time_us - r_t) <= recross) or (
                    abs(cand.time_us - r_t) <= dup and np.hypot(cand.x - r_x, cand.y - r_y) <= radius):
                self.stats["crossing_same_event"] += 1
                return []
        sector = self._sector(cand.x, cand.y)
        if not sector:
            self.stats["crossing_outside_sectors"] += 1
            return []
        self._raised.append((kind, cand.time_us, cand.x, cand.y, cand.track_id))
        self._crossing_no[cand.track_id] += 1
        lon, lat = self._wgs84(cand.x, cand.y)
        what = "drone" if kind == "drone_crossing" else cls
        incident = Incident(f"{kind}-{cand.track_id}-{self._crossing_no[cand.track_id]}", kind, sector, cand.time_us,
                            lat, lon, cand.track_id, self._track_sources.get(cand.track_id, ()), rule.severity,
                            f"{what} crossed the border {cand.from_side}->{cand.to_side} outside crossing points"
                            if kind == "border_crossing" else f"drone crossed the border {cand.from_side}->{cand.to_side}",
                            cls=cls)
        self._following[cand.track_id] = (incident, cand, cand.time_us + int(p.follow_class_s * 1e6))
        return [incident]

    def _loitering_incident(self, hit) -> list[Incident]:
        sector = self._sector(hit.x, hit.y)
        if not sector:
            self.stats["loitering_outside_sectors"] += 1
            return []
        lon, lat = self._wgs84(hit.x, hit.y)
        r = self.rules.loitering
        return [Incident(f"loitering-{hit.track_id}-{hit.dwell_no}", "loitering", sector, hit.time_us, lat, lon,
                         hit.track_id, self._track_sources.get(hit.track_id, ()), r.severity,
                         f"{self._last_class.get(hit.track_id, 'unknown')} stayed within {r.radius_m:.0f} m for "
                         f"{r.duration_s:.0f} s near the border", cls=self._last_class.get(hit.track_id))]

    def _anpr(self, reads: list[Observation]) -> list[Incident]:
        out = []
        rule = self.rules.hotlist_vehicle
        for obs in reads:
            track_id = self._track_at(obs)
            if track_id is not None:
                track = self.tracker.get(track_id)
                track.plate, track.country = obs.plate, obs.country
            if not rule.enabled:
                continue
            event = self.hotlist.read(obs, track_id)
            if event is None:
                continue
            passage = event.passage
            x, y = float(obs.xy[0]), float(obs.xy[1])
            if not event.new:   # an update keeps the first read's time and place
                x, y = passage.first_xy
            else:
                passage.first_xy = (x, y)
            sector = self._sector(x, y)
            if not sector:
                self.stats["hotlist_outside_sectors"] += 1
                continue
            lon, lat = self._wgs84(x, y)
            # The read holds only a pseudonym; the hit shows the hotlist entry's own plate (none once delisted).
            plate = event.plate or None
            out.append(Incident(passage.incident_id, "hotlist_vehicle", sector, passage.first_us, lat, lon,
                                passage.track_id, passage.sources, rule.severity,
                                f"hotlisted vehicle {obs.country} {plate or '(delisted)'} ({event.reason}) "
                                f"read {obs.direction}", cls="vehicle", plate=plate, country=obs.country,
                                seq=passage.seq))
        return out

    def _track_at(self, obs: Observation) -> str | None:
        if not len(self.tracker):
            return None
        x, y = self.tracker.positions_at(obs.time_us)
        d = np.hypot(x - obs.xy[0], y - obs.xy[1])
        cfg = self.rules.tracker
        ok = np.array([t.confirmed and t.class_state(cfg.settle_weight, cfg.settle_share)[0] in ("vehicle", "unknown")
                       for t in self.tracker.tracks]) & (d <= self.rules.hotlist_vehicle.attach_radius_m)
        if not ok.any():
            return None
        return self.tracker.tracks[int(np.argmin(np.where(ok, d, np.inf)))].id

    # --- bookkeeping ---
    def _on_merge(self, kept_id: str, gone_id: str) -> None:
        self.stats["tracks_merged"] += 1
        for i, c in enumerate(self._held):
            if c.track_id == gone_id:
                self._held[i] = CrossingCandidate(kept_id, c.time_us, c.x, c.y, c.at_crossing_point, c.from_side,
                                                  c.to_side)
        self._raised = [(k, t, x, y, kept_id if tr == gone_id else tr) for k, t, x, y, tr in self._raised]
        if gone_id in self._following and kept_id not in self._following:
            self._following[kept_id] = self._following.pop(gone_id)
        self._on_delete(gone_id, merged=True)

    def _on_delete(self, track_id: str, merged: bool = False) -> None:
        self.crossings.forget(track_id)
        self.loitering.forget(track_id)
        if not merged:
            self.stats["tracks_deleted"] += 1
        if not any(c.track_id == track_id for c in self._held):
            self._last_class.pop(track_id, None)
            self._last_confirmed.pop(track_id, None)
            self._track_sources.pop(track_id, None)

    def _report(self, updates: list[TrackUpdate], classes: dict[str, str]) -> None:
        ups = [u for u in updates if u.track.confirmed]
        if not ups:
            return
        lon, lat = self.geography.to_wgs84(np.array([u.x for u in ups]), np.array([u.y for u in ups]))
        for u, lo, la in zip(ups, np.atleast_1d(lon).tolist(), np.atleast_1d(lat).tolist()):
            self.track_reports.append(TrackReport(u.track.id, u.time_us, la, lo, u.x, u.y, u.vx, u.vy, u.sigma_m,
                                                  classes[u.track.id], tuple(sorted(u.track.sources))))

    def _sector(self, x: float, y: float) -> str:
        return str(self.geography.sector_of(np.array([x]), np.array([y]))[0])

    def _wgs84(self, x: float, y: float) -> tuple[float, float]:
        lon, lat = self.geography.to_wgs84(np.array([x]), np.array([y]))
        return float(np.atleast_1d(lon)[0]), float(np.atleast_1d(lat)[0])


@attrs.frozen(slots=True)
class HotlistItem:
    """A hotlist update placed in event order at its broker time."""

    time_us: int
    update: Any


def _time_of(item: Any) -> int:
    return item.time_us
