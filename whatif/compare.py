"""What rule set B changes against A: incidents gained, lost and changed, and each side's score.

An incident is what a patrol centre was told: the first line of its id gives type, sector, time and
place (as the ICD scorer scores it); class, severity and sources are those of its latest line; an id
whose latest line is `"status": "withdrawn"` is not an incident. Incidents of A and B are paired per
type, the same id first, then nearest (|dt| + d/10, the scorer's cost) within `MATCH_WINDOW_S` and
`MATCH_RADIUS_M`; an unpaired one is lost (A only) or gained (B only), a pair that differs in time,
place, sector, class, severity or sources is changed. Ids alone never count: they follow track ids,
which shift whenever the tracker's work changes.
"""
from __future__ import annotations

import statistics
from datetime import datetime

import attrs
import numpy as np

MATCH_WINDOW_S = 120.0     # the same event, moved: within this time...
MATCH_RADIUS_M = 300.0     # ...and this distance (the scorer's radius)
# The ICD scorer's rule (../shared/tools/score_incidents.py): predicted - true time and distance.
SCORE_WINDOW_S = (-20.0, 90.0)
SCORE_RADIUS_M = 300.0
EARTH_M = 6371000.0


def _seconds(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


@attrs.frozen(slots=True)
class IncidentView:
    incident_id: str
    type: str
    sector: str
    time: str
    t: float                  # seconds since the epoch
    lat: float
    lon: float
    track_id: str | None
    cls: str | None
    severity: str | None
    sources: tuple[str, ...]

    def to_json(self) -> dict:
        return {"incident_id": self.incident_id, "type": self.type, "sector": self.sector, "time": self.time,
                "lat": self.lat, "lon": self.lon, "track_id": self.track_id, "class": self.cls,
                "severity": self.severity, "sources": list(self.sources)}


def incidents_from_lines(lines: list[dict]) -> list[IncidentView]:
    """Incident lines (updates included) -> one view per incident, in first-report order."""
    first: dict[str, dict] = {}
    latest: dict[str, dict] = {}
    for line in lines:
        iid = str(line["incident_id"])
        first.setdefault(iid, line)
        latest[iid] = line
    views = []
    for iid, f in first.items():
        last = latest[iid]
        if last.get("status") == "withdrawn":
            continue
        views.append(IncidentView(iid, f["type"], f.get("sector", ""), f["time"], _seconds(f["time"]),
                                  float(f["lat"]), float(f["lon"]), f.get("track_id"), last.get("class"),
                                  last.get("severity"), tuple(sorted(set(last.get("sources") or ())))))
    return views


def distance_m(lat1, lon1, lat2, lon2):
    """The scorer's local flat-earth distance (metres), vectorised."""
    dlat = np.radians(np.asarray(lat2) - np.asarray(lat1))
    dlon = np.radians(np.asarray(lon2) - np.asarray(lon1)) * np.cos(np.radians((np.asarray(lat1) + np.asarray(lat2)) / 2))
    return EARTH_M * np.hypot(dlat, dlon)


def _pair_costs(a: list[IncidentView], b: list[IncidentView], window: tuple[float, float], radius_m: float):
    """(cost, i, j, dt, d) for every a[i], b[j] of the same type with window[0] <= t_b - t_a <= window[1]."""
    if not a or not b:
        return []
    ta = np.array([x.t for x in a])[:, None]
    tb = np.array([x.t for x in b])[None, :]
    d = distance_m(np.array([x.lat for x in a])[:, None], np.array([x.lon for x in a])[:, None],
                   np.array([x.lat for x in b])[None, :], np.array([x.lon for x in b])[None, :])
    dt = tb - ta
    same_type = np.array([x.type for x in a])[:, None] == np.array([x.type for x in b])[None, :]
    ok = same_type & (dt >= window[0]) & (dt <= window[1]) & (d <= radius_m)
    ii, jj = np.nonzero(ok)
    return sorted((abs(dt[i, j]) + d[i, j] / 10.0, int(i), int(j), float(dt[i, j]), float(d[i, j]))
                  for i, j in zip(ii, jj))


@attrs.frozen(slots=True)
class Change:
    a: IncidentView
    b: IncidentView
    what: tuple[str, ...]      # of: time, place, sector, class, severity, sources
    dt_s: float
    moved_m: float

    def to_json(self) -> dict:
        doc = self.b.to_json()
        doc.update(what=list(self.what), dt_s=round(self.dt_s, 3), moved_m=round(self.moved_m, 1),
                   sources_added=sorted(set(self.b.sources) - set(self.a.sources)),
                   sources_removed=sorted(set(self.a.sources) - set(self.b.sources)), was=self.a.to_json())
        return doc


@attrs.frozen(slots=True)
class Diff:
    gained: list[IncidentView]
    lost: list[IncidentView]
    changed: list[Change]
    unchanged: int


def _what_changed(a: IncidentView, b: IncidentView, d_m: float) -> tuple[str, ...]:
    what = []
    if a.time != b.time:
        what.append("time")
    if d_m > 0.01:
        what.append("place")
    for name in ("sector", "cls", "severity", "sources"):
        if getattr(a, name) != getattr(b, name):
            what.append("class" if name == "cls" else name)
    return tuple(what)


def compare(a: list[IncidentView], b: list[IncidentView], *, window_s: float = MATCH_WINDOW_S,
            radius_m: float = MATCH_RADIUS_M) -> Diff:
    paired: dict[int, tuple[int, float, float]] = {}
    taken_b: set[int] = set()
    by_id = {x.incident_id: j for j, x in enumerate(b)}
    for i, x in enumerate(a):      # the same id, type and near: the same event (ids are stable when tracks are)
        j = by_id.get(x.incident_id)
        if j is not None and b[j].type == x.type:
            dt = b[j].t - x.t
            d = float(distance_m(x.lat, x.lon, b[j].lat, b[j].lon))
            if abs(dt) <= window_s and d <= radius_m:
                paired[i] = (j, dt, d)
                taken_b.add(j)
    for _, i, j, dt, d in _pair_costs(a, b, (-window_s, window_s), radius_m):
        if i not in paired and j not in taken_b:
            paired[i] = (j, dt, d)
            taken_b.add(j)
    changed, unchanged = [], 0
    for i, (j, dt, d) in sorted(paired.items()):
        what = _what_changed(a[i], b[j], d)
        if what:
            changed.append(Change(a[i], b[j], what, dt, d))
        else:
            unchanged += 1
    lost = [x for i, x in enumerate(a) if i not in paired]
    gained = [x for j, x in enumerate(b) if j not in taken_b]
    return Diff(gained, lost, changed, unchanged)


# --- against a truth file ---

@attrs.frozen(slots=True)
class Score:
    f1: float
    precision: float
    recall: float
    per_type: dict            # type -> {tp, fn, fp, dup}
    verdict: dict             # incident_id -> "hit" | "duplicate" | "false alarm"
    median_delay_s: float | None
    median_error_m: float | None

    def to_json(self) -> dict:
        return {"f1": self.f1, "precision": self.precision, "recall": self.recall, "per_type": self.per_type,
                "median_delay_s": self.median_delay_s, "median_error_m": self.median_error_m}


def score(truth: dict, views: list[IncidentView]) -> Score:
    """The ICD scorer's rule: each expected incident matched to at most one predicted one of its type within
    SCORE_WINDOW_S and SCORE_RADIUS_M (cheapest first); an unmatched prediction near an expected incident is
    a duplicate, any other a false alarm."""
    expected = [IncidentView(str(k), g["type"], g.get("sector", ""), g["time"], _seconds(g["time"]), float(g["lat"]),
                             float(g["lon"]), None, None, None, ()) for k, g in enumerate(truth.get("incidents", []))]
    pairs = _pair_costs(expected, views, SCORE_WINDOW_S, SCORE_RADIUS_M)
    matched_g, matched_p = {}, {}
    for _, gi, pi, dt, d in pairs:
        if gi in matched_g or pi in matched_p:
            continue
        matched_g[gi] = pi
        matched_p[pi] = (gi, dt, d)
    near = {pi for _, _, pi, _, _ in pairs}
    types = sorted({x.type for x in expected} | {x.type for x in views})
    per = {t: dict(tp=0, fn=0, fp=0, dup=0) for t in types}
    for gi, g in enumerate(expected):
        per[g.type]["tp" if gi in matched_g else "fn"] += 1
    verdict = {}
    for pi, p in enumerate(views):
        if pi in matched_p:
            verdict[p.incident_id] = "hit"
        elif pi in near:
            verdict[p.incident_id] = "duplicate"
            per[p.type]["dup"] += 1
        else:
            verdict[p.incident_id] = "false alarm"
            per[p.type]["fp"] += 1
    tp = sum(v["tp"] for v in per.values())
    fn = sum(v["fn"] for v in per.values())
    fp = sum(v["fp"] + v["dup"] for v in per.values())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    dts = [v[1] for v in matched_p.values()]
    ds = [v[2] for v in matched_p.values()]
    return Score(round(f1, 4), round(precision, 4), round(recall, 4), per, verdict,
                 round(statistics.median(dts), 2) if dts else None, round(statistics.median(ds), 1) if ds else None)
