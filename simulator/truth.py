"""Ground truth of a simulated recording, in the format of shared/scenarios/sample/truth.json.

`incidents` are what the ICD's default rules should raise, from the targets' TRUE paths:
- border_crossing: a person or vehicle path crossing the border line outside every crossing-point
  polygon; time and place of the crossing.
- drone_crossing: a drone path crossing the border anywhere.
- loitering: a loiterer appears at its spot and lingers within 40 m of it, 80-260 m from the
  border, for at least 420 s: the dwell condition (300 s within 300 m of the border inside a
  150 m circle) is first met 300 s after it appears, where it is then.
- hotlist_vehicle: per hotlisted vehicle passage, the first ANPR read (either side) whose plate and
  country match the hotlist after normalising; its time, at that camera's site.
Only events inside a sector and inside the recording count. `negatives` are crossings that must
not raise one (animals, traffic and pedestrians at the crossing points) and the closest approach
of people walking along the border.
Hard nights (stressors.py) add: a `stressor` tag on their targets, incidents and negatives; one
border_crossing per group (its leader's, with the members in `group`); loitering of every person
by the ICD's rule on its true path (dwell.py: a turn-back meets it; loiterers as above); each stressor's
negatives every few seconds of its window; and the `outages`.
"""
from __future__ import annotations

from datetime import datetime, timezone

import numpy as np

from borderfuse.geo.geography import Geography
from borderfuse.simulator.dwell import dwell_hits
from borderfuse.simulator.world import LOITER_DWELL_S, Target


def iso_z(t0_us: int, t: float) -> str:
    us = t0_us + int(round(t * 1e6))
    return datetime.fromtimestamp(us // 1_000_000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{us % 1_000_000:06d}Z"


def _point(geo: Geography, x: float, y: float) -> tuple[float, float, str]:
    lon, lat = geo.to_wgs84(x, y)
    return float(lon), float(lat), str(geo.sector_of(x, y)[0])


def build_truth(geo: Geography, targets: list[Target], anpr_reads: list[dict], hotlist: dict[str, str],
                t0_us: int, duration_s: float, seed: int, outages: list | None = None,
                hard: bool = False) -> dict:
    """`hotlist`: normalised '<ISO country>:<PLATE>' -> plate as listed. `outages` (hard nights):
    stressors.Outage of sensors silent for a while, listed in the truth. `hard`: judge every
    person's path (but the loiterers', planned as such) by the ICD's loitering rule."""
    incidents, negatives = [], []

    def inside(t: float) -> bool:
        return 0.0 <= t < duration_s

    for tg in targets:
        for c in tg.crossings:
            if not inside(c.time) or tg.group_member:  # a group's crossing is its leader's incident
                continue
            lon, lat, sector = _point(geo, c.x, c.y)
            if tg.cls == "drone" or (tg.cls in ("person", "vehicle") and not c.at_crossing_point):
                if sector:
                    incidents.append({"type": "drone_crossing" if tg.cls == "drone" else "border_crossing",
                                      "target": tg.id, "lon": lon, "lat": lat, "sector": sector,
                                      **_stressor_tags(tg), "time": iso_z(t0_us, c.time), "_t": c.time})
            else:
                what = {"animal": "animal crossing"}.get(tg.cls, f"{tg.cls} crossing at a crossing point")
                negatives.append({"kind": what, "target": tg.id, "cls": tg.cls, "lon": lon, "lat": lat,
                                  "sector": sector, "at_crossing_point": c.at_crossing_point,
                                  "time": iso_z(t0_us, c.time), "_t": c.time})
        if tg.dwell_start is not None:
            t = tg.dwell_start + LOITER_DWELL_S
            if inside(t) and t <= tg.t_end:
                lon, lat, sector = _point(geo, *tg.position(t))
                if sector:
                    incidents.append({"type": "loitering", "target": tg.id, "lon": lon, "lat": lat,
                                      "sector": sector, "time": iso_z(t0_us, t), "_t": t})
        if hard and tg.cls == "person" and tg.dwell_start is None:  # the ICD's rule on the true path
            for t, x, y in dwell_hits(geo, tg.tw, tg.xw, tg.yw, t_from=tg.t_start):
                lon, lat, sector = _point(geo, x, y)
                if inside(t) and sector:
                    incidents.append({"type": "loitering", "target": tg.id, "lon": lon, "lat": lat,
                                      "sector": sector, **_stressor_tags(tg), "time": iso_z(t0_us, t), "_t": t})
        if tg.negative_kind is not None:
            negatives += _sampled_negatives(geo, tg, t0_us, duration_s)
        if tg.kind == "walker":
            dist = geo.distance_to_border(tg.xw, tg.yw)
            i = int(np.argmin(dist))
            t = max(float(tg.tw[i]), tg.t_start)
            if inside(t):
                lon, lat, sector = _point(geo, *tg.position(t))
                negatives.append({"kind": "person walking along the border", "target": tg.id, "cls": "person",
                                  "lon": lon, "lat": lat, "sector": sector, "at_crossing_point": False,
                                  "distance_m": round(float(dist[i]), 1), "time": iso_z(t0_us, t), "_t": t})
    seen = set()
    for read in sorted(anpr_reads, key=lambda r: r["time"]):
        normalised = "".join(ch for ch in read["plate"].upper() if ch.isalnum())
        key = f"{read['nat']}:{normalised}"
        if read["target"] in seen or key not in hotlist or not inside(read["time"]):
            continue
        seen.add(read["target"])  # one passage per vehicle target: one incident
        sensor = geo.sensors[read["sensor"]]
        lon, lat, sector = _point(geo, sensor.x, sensor.y)
        if sector:
            incidents.append({"type": "hotlist_vehicle", "target": read["target"], "lon": lon, "lat": lat,
                              "sector": sector, "plate": read["plate"], "time": iso_z(t0_us, read["time"]),
                              "_t": read["time"]})
    for items in (incidents, negatives):
        items.sort(key=lambda d: d["_t"])
        for d in items:
            del d["_t"]
    truth = {
        "t0": iso_z(t0_us, 0.0).replace(".000000Z", "Z"),
        "minutes": duration_s / 60.0,
        "seed": seed,
        "targets": [{"id": tg.id, "kind": tg.kind, "cls": tg.cls, "plate": tg.plate, "nat": tg.nat,
                     "hotlisted": tg.hotlisted, **({"stressor": tg.stressor} if tg.stressor else {})}
                    for tg in targets if tg.t_start < duration_s],
        "incidents": incidents,
        "negatives": negatives,
    }
    if outages is not None:
        truth["outages"] = [{"sensor": o.sensor, "time_from": iso_z(t0_us, o.t_from),
                             "time_to": iso_z(t0_us, min(o.t_to, duration_s))}
                            for o in outages if o.t_from < duration_s]
    return truth


def _stressor_tags(tg: Target) -> dict:
    if tg.stressor is None:
        return {}
    return {"stressor": tg.stressor, **({"group": list(tg.group)} if tg.group else {})}


def _sampled_negatives(geo: Geography, tg: Target, t0_us: int, duration_s: float) -> list[dict]:
    """A stressor target's negatives: where it was every `negative_every_s` of its window (in a sector)."""
    a, b = tg.negative_window or (tg.t_start, tg.t_end)
    times = np.arange(max(a, tg.t_start, 0.0), min(b, tg.t_end, duration_s), tg.negative_every_s)
    if times.size == 0:
        return []
    x, y = tg.position(times)
    lon, lat = geo.to_wgs84(x, y)
    sectors = geo.sector_of(x, y)
    return [{"kind": tg.negative_kind, "target": tg.id, "stressor": tg.stressor, "lon": float(lo), "lat": float(la),
             "sector": str(sec), "time": iso_z(t0_us, float(t)), "_t": float(t)}
            for t, lo, la, sec in zip(times.tolist(), np.atleast_1d(lon), np.atleast_1d(lat), sectors) if sec]
