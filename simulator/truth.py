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
"""
from __future__ import annotations

from datetime import datetime, timezone

import numpy as np

from borderfuse.geo.geography import Geography
from borderfuse.simulator.world import LOITER_DWELL_S, Target


def iso_z(t0_us: int, t: float) -> str:
    us = t0_us + int(round(t * 1e6))
    return datetime.fromtimestamp(us // 1_000_000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{us % 1_000_000:06d}Z"


def _point(geo: Geography, x: float, y: float) -> tuple[float, float, str]:
    lon, lat = geo.to_wgs84(x, y)
    return float(lon), float(lat), str(geo.sector_of(x, y)[0])


def build_truth(geo: Geography, targets: list[Target], anpr_reads: list[dict], hotlist: dict[str, str],
                t0_us: int, duration_s: float, seed: int) -> dict:
    """`hotlist`: normalised '<ISO country>:<PLATE>' -> plate as listed."""
    incidents, negatives = [], []

    def inside(t: float) -> bool:
        return 0.0 <= t < duration_s

    for tg in targets:
        for c in tg.crossings:
            if not inside(c.time):
                continue
            lon, lat, sector = _point(geo, c.x, c.y)
            if tg.cls == "drone" or (tg.cls in ("person", "vehicle") and not c.at_crossing_point):
                if sector:
                    incidents.append({"type": "drone_crossing" if tg.cls == "drone" else "border_crossing",
                                      "target": tg.id, "lon": lon, "lat": lat, "sector": sector,
                                      "time": iso_z(t0_us, c.time), "_t": c.time})
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
    return {
        "t0": iso_z(t0_us, 0.0).replace(".000000Z", "Z"),
        "minutes": duration_s / 60.0,
        "seed": seed,
        "targets": [{"id": tg.id, "kind": tg.kind, "cls": tg.cls, "plate": tg.plate, "nat": tg.nat,
                     "hotlisted": tg.hotlisted} for tg in targets if tg.t_start < duration_s],
        "incidents": incidents,
        "negatives": negatives,
    }
