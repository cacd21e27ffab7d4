"""Observation models, one per sensor of the registry, vectorised over (time, target) pairs.

Each model keeps its own state across chunks (scan ids, camera object ids, DE radar tracks) and
turns one `Snapshot` into a `Feed`: the columns of its topic's records for event times in
[ta, tb). Accuracy, period and range come from the registry (geo/data/sensors.json).
"""
from __future__ import annotations

import attrs
import numpy as np

from borderfuse.geo import frames
from borderfuse.geo.geography import SensorInfo
from borderfuse.simulator.scenario import ScenarioConfig
from borderfuse.simulator.snapshot import CLASS_CODES, Snapshot, geodesic_from
from borderfuse.simulator.world import World

UNKNOWN = CLASS_CODES.index("unknown")
RCS_BY_CLASS = np.array([[-1.0, 3.0], [12.0, 4.0], [-4.0, 3.0], [-14.0, 3.0], [-8.0, 5.0]])  # mean, sd dBsm
CAMERA_LOST_AFTER_S = 10.0   # a camera's tracker gives a new object id after this long unseen
RADAR_MIN_RANGE_M = 100.0


@attrs.define(slots=True)
class Feed:
    """Columns of one topic's records: `t` event time (s from t0), `sensor` ids, then fields."""

    topic: str
    t: np.ndarray
    sensor: np.ndarray
    cols: dict

    @classmethod
    def empty(cls, topic: str) -> "Feed":
        return cls(topic, np.empty(0), np.empty(0, dtype=object), {})

    def __len__(self) -> int:
        return self.t.size

    def take(self, keep: np.ndarray) -> "Feed":
        """The records where `keep` (a boolean mask) is true."""
        return Feed(self.topic, self.t[keep], self.sensor[keep], {k: v[keep] for k, v in self.cols.items()})

    @staticmethod
    def concat(topic: str, feeds: list["Feed"]) -> "Feed":
        feeds = [f for f in feeds if len(f)]
        if not feeds:
            return Feed.empty(topic)
        cols = {k: np.concatenate([f.cols[k] for f in feeds]) for k in feeds[0].cols}
        return Feed(topic, np.concatenate([f.t for f in feeds]), np.concatenate([f.sensor for f in feeds]), cols)


def _ticks(phase: float, period: float, ta: float, tb: float) -> tuple[np.ndarray, np.ndarray]:
    """Tick numbers k and times phase + k*period within [ta, tb)."""
    k = np.arange(np.ceil((ta - phase) / period), np.ceil((tb - phase) / period)).astype(np.int64)
    return k, phase + k * period


def _live(times: np.ndarray, silent: tuple[tuple[float, float], ...]) -> np.ndarray:
    """Which of `times` fall outside every [from, to) the sensor is silent (a hard night's outage)."""
    live = np.ones(times.size, dtype=bool)
    for a, b in silent:
        live &= (times < a) | (times >= b)
    return live


def _classify(rng, true_code: np.ndarray, p_correct: float) -> np.ndarray:
    return np.where(rng.uniform(size=true_code.size) < p_correct, true_code, UNKNOWN).astype(np.int8)


class PlRadar:
    """Raw plots, polar from the site; one scan per period, plot time follows the antenna azimuth."""

    silent: tuple[tuple[float, float], ...] = ()  # outages, set by the engine on hard nights

    def __init__(self, sensor: SensorInfo, config: ScenarioConfig, rng: np.random.Generator):
        self.s, self.cfg, self.rng = sensor, config, rng
        self.phase = rng.uniform(0.0, sensor.period_s)

    def observe(self, snap: Snapshot, ta: float, tb: float) -> Feed:
        s, rng, period = self.s, self.rng, self.s.period_s
        scans, starts = _ticks(self.phase, period, ta, tb)
        if self.silent:
            live = _live(starts, self.silent)
            scans, starts = scans[live], starts[live]
        tt, jj = snap.pairs(starts)
        kk = np.repeat(scans, snap.n)
        x, y, _, _, active = snap.state(tt, jj)
        az0, _ = geodesic_from(s.lon, s.lat, x, y)
        t_plot = tt + az0 / 360.0 * period  # the beam reaches the target this far into the scan
        x, y, vx, vy, active2 = snap.state(t_plot, jj)
        az, dist = geodesic_from(s.lon, s.lat, x, y)
        hit = active & active2 & (dist >= RADAR_MIN_RANGE_M) & (dist <= s.max_range_m)
        hit &= rng.uniform(size=hit.size) < self.cfg.radar_pd
        ux, uy = x - s.x, y - s.y
        radial = (vx * ux + vy * uy) / np.maximum(np.hypot(ux, uy), 1.0)
        m = int(hit.sum())
        cls = snap.cls_code[jj[hit]]
        rng_m = np.abs(dist[hit] + rng.normal(0.0, s.sigma_range_m, m))
        az_m = np.mod(az[hit] + rng.normal(0.0, s.sigma_azimuth_deg, m), 360.0)
        dop = radial[hit] + rng.normal(0.0, 0.3, m)
        rcs = RCS_BY_CLASS[cls, 0] + rng.normal(0.0, 1.0, m) * RCS_BY_CLASS[cls, 1]
        # clutter: about `clutter_per_scan` spurious plots anywhere in range
        n_clutter = rng.poisson(self.cfg.clutter_per_scan, scans.size)
        c_scan = np.repeat(np.arange(scans.size), n_clutter)
        c_az = rng.uniform(0.0, 360.0, c_scan.size)
        t = np.concatenate([t_plot[hit], starts[c_scan] + c_az / 360.0 * period])
        cols = {"scan_id": np.concatenate([kk[hit], scans[c_scan]]),
                "range_m": np.concatenate([rng_m, rng.uniform(150.0, s.max_range_m, c_scan.size)]),
                "azimuth_deg": np.concatenate([az_m, c_az]),
                "doppler_mps": np.concatenate([dop, rng.normal(0.0, 0.8, c_scan.size)]),
                "rcs_dbsm": np.concatenate([rcs, rng.normal(*RCS_BY_CLASS[UNKNOWN], c_scan.size)])}
        return Feed(s.topic, t, np.full(t.size, s.id, dtype=object), cols)


class Camera:
    """A tower camera (PL: polar from the site; DE: geolocated in the shared frame)."""

    silent: tuple[tuple[float, float], ...] = ()  # outages, set by the engine on hard nights

    def __init__(self, sensor: SensorInfo, config: ScenarioConfig, rng: np.random.Generator):
        self.s, self.cfg, self.rng = sensor, config, rng
        self.phase = rng.uniform(0.0, sensor.period_s)
        self.objects: dict[int, tuple[int, float]] = {}  # target index -> (object number, last seen)
        self.next_object = 1

    def _object_ids(self, snap: Snapshot, t: np.ndarray, j: np.ndarray) -> np.ndarray:
        ids = np.empty(t.size, dtype=object)
        for col in np.unique(j):
            sel = np.flatnonzero(j == col)  # already in time order
            index = snap.targets[col].index
            number, last = self.objects.get(index, (0, -np.inf))
            gaps = np.diff(np.concatenate(([last], t[sel]))) > CAMERA_LOST_AFTER_S
            numbers = np.empty(sel.size, dtype=np.int64)
            for i, new in enumerate(gaps):  # few ids per chunk: the loop is over new objects only
                if new:
                    number, self.next_object = self.next_object, self.next_object + 1
                numbers[i] = number
            self.objects[index] = (number, float(t[sel[-1]]))
            ids[sel] = [f"{self.s.id}-{n:05d}" for n in numbers]
        return ids

    def observe(self, snap: Snapshot, ta: float, tb: float) -> Feed:
        s, rng = self.s, self.rng
        _, frames_t = _ticks(self.phase, s.period_s, ta, tb)
        frames_t = frames_t[_live(frames_t, self.silent)]
        tt, jj = snap.pairs(frames_t)
        x, y, _, _, active = snap.state(tt, jj)
        az, dist = geodesic_from(s.lon, s.lat, x, y)
        hit = active & (dist >= 20.0) & (dist <= s.max_range_m) & (rng.uniform(size=tt.size) < self.cfg.camera_pd)
        t, j = tt[hit], jj[hit]
        m = t.size
        cols = {"object_id": self._object_ids(snap, t, j),
                "cls": _classify(rng, snap.cls_code[j], 0.9),
                "confidence": rng.uniform(0.55, 0.98, m)}
        if s.side == "PL":
            cols["bearing_deg"] = np.mod(az[hit] + rng.normal(0.0, s.sigma_bearing_deg, m), 360.0)
            cols["range_m"] = dist[hit] * np.maximum(1.0 + rng.normal(0.0, s.sigma_range_frac, m), 0.05)
        else:
            cols["e"] = x[hit] + rng.normal(0.0, s.sigma_m, m)
            cols["n"] = y[hit] + rng.normal(0.0, s.sigma_m, m)
            cols["sigma_m"] = np.full(m, s.sigma_m)
        return Feed(s.topic, t, np.full(m, s.id, dtype=object), cols)


class Uav:
    """A patrol UAV on station over its registry site during sorties; WGS84 detections."""

    silent: tuple[tuple[float, float], ...] = ()  # outages, set by the engine on hard nights

    def __init__(self, sensor: SensorInfo, config: ScenarioConfig, rng: np.random.Generator):
        self.s, self.cfg, self.rng = sensor, config, rng
        self.phase = rng.uniform(0.0, sensor.period_s)
        start = rng.uniform(0.0, config.uav_first_sortie_within_s)
        self.sorties = [(start, start + rng.uniform(480.0, 1200.0))]

    def _on_station(self, t: np.ndarray) -> np.ndarray:
        while self.sorties[-1][1] < t.max(initial=-np.inf):
            begin = self.sorties[-1][1] + self.rng.uniform(180.0, 600.0)
            self.sorties.append((begin, begin + self.rng.uniform(480.0, 1200.0)))
        on = np.zeros(t.size, dtype=bool)
        for a, b in self.sorties[-3:]:
            on |= (t >= a) & (t < b)
        return on

    def observe(self, snap: Snapshot, ta: float, tb: float) -> Feed:
        s, rng = self.s, self.rng
        _, ticks = _ticks(self.phase, s.period_s, ta, tb)
        ticks = ticks[self._on_station(ticks) & _live(ticks, self.silent)]
        tt, jj = snap.pairs(ticks)
        x, y, _, _, active = snap.state(tt, jj)
        hit = active & (np.hypot(x - s.x, y - s.y) <= s.max_range_m) & (rng.uniform(size=tt.size) < self.cfg.uav_pd)
        m = int(hit.sum())
        lon, lat = frames.to_wgs84(x[hit] + rng.normal(0.0, s.sigma_m, m), y[hit] + rng.normal(0.0, s.sigma_m, m))
        alt = snap.alt_m[jj[hit]] + rng.normal(0.0, 5.0, m)
        cols = {"lat": lat, "lon": lon, "alt_m": alt, "cls": _classify(rng, snap.cls_code[jj[hit]], 0.95),
                "confidence": rng.uniform(0.6, 0.99, m)}
        return Feed(s.topic, tt[hit], np.full(m, s.id, dtype=object), cols)


class Anpr:
    """Lane cameras at the bridges: a read per planned passage (if the plan says it was read)."""

    def __init__(self, sensors: list[SensorInfo], config: ScenarioConfig, rng: np.random.Generator, topic: str):
        self.sensors = {s.id: s for s in sensors}
        self.cfg, self.rng, self.topic = config, rng, topic
        self.reads: list[dict] = []  # for the truth: every read, in event-time order per chunk

    def observe(self, snap: Snapshot, ta: float, tb: float) -> Feed:
        rows = []
        for tg in snap.targets:
            for p in tg.passages:
                if p.read and p.sensor_id in self.sensors and ta <= p.time < tb:
                    rows.append((p.time, p.sensor_id, tg, p.toward))
        rows.sort(key=lambda r: r[0])
        m = len(rows)
        unread = self.rng.uniform(size=m) < 0.02  # country sign not read
        strip = self.rng.uniform(size=m) < 0.6    # PL cameras often drop the separators
        cols = {"plate": np.array([tg.plate for _, _, tg, _ in rows], dtype=object),
                "nat": np.array(["" if u else tg.nat for (_, _, tg, _), u in zip(rows, unread)], dtype=object),
                "toward": np.array([r[3] for r in rows], dtype=object),
                "vehicle_class": np.array([tg.vehicle_class for _, _, tg, _ in rows], dtype=object),
                "strip": strip, "v2": self.rng.uniform(size=m) < self.cfg.pl_anpr_v2_fraction,
                "confidence": self.rng.uniform(0.70, 0.99, m)}
        for (t, sid, tg, _), nat in zip(rows, cols["nat"]):
            self.reads.append({"time": t, "sensor": sid, "target": tg.id, "plate": tg.plate, "nat": nat})
        return Feed(self.topic, np.array([r[0] for r in rows], float), np.array([r[1] for r in rows], dtype=object),
                    cols)


def build_models(world: World, config: ScenarioConfig, seed_seq: np.random.SeedSequence) -> list:
    """One model per registry sensor (ANPR: one per side), each with its own random stream."""
    from borderfuse.simulator.de_radar import DeRadar
    sensors = sorted(world.geo.sensors.values(), key=lambda s: s.id)
    streams = iter(seed_seq.spawn(len(sensors) + 2))
    models = []
    for s in sensors:
        if s.kind == "anpr":
            continue
        make = {("PL", "radar"): PlRadar, ("DE", "radar"): DeRadar, ("PL", "camera"): Camera,
                ("DE", "camera"): Camera, ("PL", "uav"): Uav, ("DE", "uav"): Uav}[(s.side, s.kind)]
        models.append(make(s, config, np.random.default_rng(next(streams))))
    for side, topic in (("PL", "pl.anpr.reads"), ("DE", "de.anpr.reads")):
        anpr = [s for s in sensors if s.kind == "anpr" and s.side == side]
        models.append(Anpr(anpr, config, np.random.default_rng(next(streams)), topic))
    return models
