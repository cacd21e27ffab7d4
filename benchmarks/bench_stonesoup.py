"""Our tracker side by side with Stone Soup's GNN trackers on one set of detections.

    python benchmarks/bench_stonesoup.py [--sizes 50,200,500] [--scale 2000] [--scans 120] [--gnn-scans 15]

Scene: N targets over 20 x 20 km, half walkers (1-2 m/s), half vehicles (8-20 m/s), nearly constant
velocity; one scan a second; each target detected with Pd 0.9 and sigma 15 m; 20 clutter plots a scan,
uniform over the area. Every tracker sees the same detections, in the same (shuffled) order.

Trackers, all CV with q = 1, gate d^2 <= 13.8155 (Stone Soup: Mahalanobis missed_distance = sqrt of it),
new-track velocity sigma 8 m/s:
  ours      borderfuse.fusion.Tracker, with merge and prune after every scan (as the engine does);
            confirmed tracks are its output (4 hits to confirm).
  SS GNN    Stone Soup's tutorial tracker: MultiTargetTracker + GNNWith2DAssignment (all pairs),
            MultiMeasurementInitiator (min_points 2), one CovarianceBasedDeleter (trace > 1000 m^2)
            for tracks and holding tracks, as in its tutorials.
  SS KD     the same with DetectionKDTreeGNN2D (max_distance 250 m) for tracks and initiator.
The all-pairs SS GNN costs seconds a scan at N = 500, so it runs only the first --gnn-scans scans;
its GOSPA is over those scans, and ours over the same scans is printed beside it.

Timing (ms/scan) and GOSPA (c = 100, p = 1, alpha = 2; split into localisation, missed and false;
mean per scan) cover the scans after --warmup, so track start-up is not what is compared. Ratios
are SS time / our time. --scale N times ours alone at a larger N and prints its per-target cost
against the largest --sizes entry: it should grow about linearly, not with N^2.
Needs the `bench` extra: pip install -e '.[bench]'.
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import bmat
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from borderfuse.fusion import kalman  # noqa: E402
from borderfuse.fusion.tracker import Tracker, TrackerConfig  # noqa: E402
from borderfuse.sensors.base import Observation  # noqa: E402

AREA_M = 20_000.0
PD = 0.9
SIGMA_M = 15.0
CLUTTER = 20
Q = 1.0
Q_TRUTH = 0.01      # truth's white-noise acceleration, m^2/s^3: speeds drift about 1 m/s in 120 s
GATE_D2 = kalman.CHI2_2DOF_999
INIT_SIGMA_V = 8.0
GOSPA_C, GOSPA_ALPHA = 100.0, 2.0
DELETE_TRACE_M2 = 1000.0
T0_US = 1_795_298_400_000_000
T0 = dt.datetime(2026, 11, 21, 22, 0, 0)


# --- the scene ---
def make_scene(n: int, scans: int, seed: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Truth (scans, n, 2) and per-scan detections (k, 2), targets and clutter shuffled together."""
    rng = np.random.default_rng(seed)
    speed = np.where(np.arange(n) < n // 2, rng.uniform(1, 2, n), rng.uniform(8, 20, n))
    heading = rng.uniform(0, 2 * np.pi, n)
    pos = rng.uniform(0, AREA_M, (n, 2))
    vel = np.stack([speed * np.cos(heading), speed * np.sin(heading)], axis=1)
    truth, dets = np.empty((scans, n, 2)), []
    for k in range(scans):
        if k:
            acc = rng.normal(0, np.sqrt(Q_TRUTH), (n, 2))   # white-noise acceleration over 1 s
            pos = pos + vel + acc / 2
            vel = vel + acc
        truth[k] = pos
        seen = pos[rng.random(n) < PD]
        z = np.concatenate([seen + rng.normal(0, SIGMA_M, seen.shape), rng.uniform(0, AREA_M, (CLUTTER, 2))])
        dets.append(z[rng.permutation(len(z))])
    return truth, dets


# --- GOSPA ---
def gospa(truth: np.ndarray, est: np.ndarray) -> tuple[float, float, float]:
    """(localisation, missed, false) of GOSPA with c, p = 1, alpha = 2 for one scan.

    Minimises sum over assigned pairs of (d - c) (pairs at d >= c are never worth assigning), solved
    per connected component of the pairs closer than c: truths far apart make that exact and fast.
    """
    n, m = len(truth), len(est)
    if not n or not m:
        return 0.0, GOSPA_C / GOSPA_ALPHA * n, GOSPA_C / GOSPA_ALPHA * m
    near = cKDTree(truth).sparse_distance_matrix(cKDTree(est), GOSPA_C, output_type="coo_matrix").tocsr()
    near.data[near.data >= GOSPA_C] = 0.0
    near.eliminate_zeros()
    rows, cols = near.nonzero()
    loc, assigned = 0.0, 0
    if rows.size:
        graph = near.copy()
        graph.data[:] = 1.0
        ncomp, label = connected_components(bmat([[None, graph], [graph.T, None]]), directed=False)
        for comp in np.unique(label[rows]):
            r_ids = np.flatnonzero(label[:n] == comp)
            c_ids = np.flatnonzero(label[n:] == comp)
            sub = near[r_ids][:, c_ids].toarray()
            cost = np.where(sub > 0, sub - GOSPA_C, 0.0)
            rr, cc = linear_sum_assignment(cost)
            ok = cost[rr, cc] < 0
            loc += float(sub[rr[ok], cc[ok]].sum())
            assigned += int(ok.sum())
    half = GOSPA_C / GOSPA_ALPHA
    return loc, half * (n - assigned), half * (m - assigned)


# --- ours ---
def run_ours(dets: list[np.ndarray], scans: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Seconds per scan and confirmed-track positions per scan."""
    cov = np.eye(2) * SIGMA_M ** 2
    inputs = [[Observation(time_us=T0_US + k * 1_000_000, side="PL", sensor_id="PL-R1", sensor_kind="radar",
                           xy=p, cov=cov) for p in dets[k]] for k in range(scans)]
    tracker = Tracker(TrackerConfig(process_noise=Q, gate_d2=GATE_D2, init_sigma_v=INIT_SIGMA_V))
    secs, est = np.empty(scans), []
    for k, obs in enumerate(inputs):
        now = T0_US + k * 1_000_000
        t = time.perf_counter()
        tracker.process_scan(obs)
        tracker.merge(now)
        tracker.prune(now)
        secs[k] = time.perf_counter() - t
        confirmed = np.fromiter((tr.confirmed for tr in tracker.tracks), dtype=bool, count=len(tracker))
        x, y = tracker.positions_at(now)
        est.append(np.stack([x, y], axis=1)[confirmed])
    return secs, est


# --- Stone Soup ---
def run_stonesoup(dets: list[np.ndarray], scans: int, kd: bool) -> tuple[np.ndarray, list[np.ndarray]]:
    from stonesoup.dataassociator.neighbour import GNNWith2DAssignment
    from stonesoup.dataassociator.tree import DetectionKDTreeGNN2D
    from stonesoup.deleter.error import CovarianceBasedDeleter
    from stonesoup.hypothesiser.distance import DistanceHypothesiser
    from stonesoup.initiator.simple import MultiMeasurementInitiator
    from stonesoup.measures import Mahalanobis
    from stonesoup.models.measurement.linear import LinearGaussian
    from stonesoup.models.transition.linear import CombinedLinearGaussianTransitionModel, ConstantVelocity
    from stonesoup.predictor.kalman import KalmanPredictor
    from stonesoup.tracker.simple import MultiTargetTracker
    from stonesoup.types.detection import Detection
    from stonesoup.types.state import GaussianState
    from stonesoup.updater.kalman import KalmanUpdater

    transition = CombinedLinearGaussianTransitionModel([ConstantVelocity(Q), ConstantVelocity(Q)])
    measurement = LinearGaussian(ndim_state=4, mapping=(0, 2), noise_covar=np.eye(2) * SIGMA_M ** 2)
    predictor = KalmanPredictor(transition)
    updater = KalmanUpdater(measurement)
    hypothesiser = DistanceHypothesiser(predictor, updater, measure=Mahalanobis(), missed_distance=np.sqrt(GATE_D2))

    def associator():
        if kd:
            return DetectionKDTreeGNN2D(hypothesiser=hypothesiser, predictor=predictor, updater=updater,
                                        max_distance=250.0)
        return GNNWith2DAssignment(hypothesiser)

    # one covariance deleter for tracks and holding tracks, as in its tutorials: a new track dies after
    # two scans without a detection, a settled one after about nine
    deleter = CovarianceBasedDeleter(covar_trace_thresh=DELETE_TRACE_M2)
    initiator = MultiMeasurementInitiator(
        prior_state=GaussianState(np.zeros((4, 1)), np.diag([0.0, INIT_SIGMA_V ** 2, 0.0, INIT_SIGMA_V ** 2])),
        measurement_model=measurement, deleter=deleter,
        data_associator=associator(), updater=updater, min_points=2)
    feed = [(T0 + dt.timedelta(seconds=k),
             {Detection(p.reshape(2, 1), timestamp=T0 + dt.timedelta(seconds=k), measurement_model=measurement)
              for p in dets[k]}) for k in range(scans)]
    tracker = MultiTargetTracker(initiator=initiator, deleter=deleter,
                                 detector=feed, data_associator=associator(), updater=updater)
    secs, est = np.empty(scans), []
    it = iter(tracker)
    for k in range(scans):
        t = time.perf_counter()
        _, tracks = next(it)
        secs[k] = time.perf_counter() - t
        est.append(np.array([[tr.state_vector[0, 0], tr.state_vector[2, 0]] for tr in tracks]).reshape(-1, 2))
    return secs, est


# --- report ---
def summarise(truth: np.ndarray, secs: np.ndarray, est: list[np.ndarray], warmup: int) -> dict:
    parts = np.array([gospa(truth[k], est[k]) for k in range(warmup, len(est))])
    return {"ms": secs[warmup:].mean() * 1e3, "loc": parts[:, 0].mean(), "missed": parts[:, 1].mean(),
            "false": parts[:, 2].mean(), "gospa": parts.sum(axis=1).mean(),
            "tracks": np.mean([len(e) for e in est[warmup:]])}


def _progress(what: str) -> None:
    print(what, file=sys.stderr, flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="50,200,500",
                    help="numbers of targets compared with Stone Soup (default 50,200,500)")
    ap.add_argument("--scale", type=int, default=2000, help="N timed for ours alone, 0 to skip (default 2000)")
    ap.add_argument("--scans", type=int, default=120, help="scans per run, 1 s apart (default 120)")
    ap.add_argument("--gnn-scans", type=int, default=15,
                    help="scans for Stone Soup's all-pairs GNN, which is slow (default 15)")
    ap.add_argument("--warmup", type=int, default=10, help="first scans left out of timing and GOSPA (default 10)")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if not (0 <= a.warmup < min(a.scans, a.gnn_scans)):
        sys.exit("error: --warmup must be below --scans and --gnn-scans")
    try:
        import stonesoup  # noqa: F401
    except ImportError:
        sys.exit("error: Stone Soup is not installed: pip install -e '.[bench]'")
    warnings.filterwarnings("ignore", module="stonesoup")
    sizes = [int(s) for s in a.sizes.split(",") if s]
    print(f"scans {a.scans} (SS all-pairs GNN: {min(a.gnn_scans, a.scans)}), warm-up {a.warmup} left out, "
          f"Pd {PD}, sigma {SIGMA_M} m, {CLUTTER} clutter/scan, GOSPA c={GOSPA_C:g} p=1 alpha={GOSPA_ALPHA:g}")
    head = (f"{'N':>5s} {'tracker':>8s} {'ms/scan':>9s} {'det/s':>9s} {'SS-GNN/x':>9s} {'SS-KD/x':>8s} "
            f"{'GOSPA':>8s} {'loc':>8s} {'missed':>7s} {'false':>7s} {'tracks':>8s} {'tracks/N':>9s}")
    print(head)
    per_target = {}
    for n in sizes:
        truth, dets = make_scene(n, a.scans, a.seed)
        det_per_scan = np.mean([len(d) for d in dets])
        _progress(f"N={n}: ours ...")
        ours_secs, ours_est = run_ours(dets, a.scans)
        ours = summarise(truth, ours_secs, ours_est, a.warmup)
        gs = min(a.gnn_scans, a.scans)
        _progress(f"N={n}: Stone Soup KD-tree GNN, {a.scans} scans ...")
        kd = summarise(truth, *run_stonesoup(dets, a.scans, kd=True), a.warmup)
        _progress(f"N={n}: Stone Soup all-pairs GNN, {gs} scans ...")
        gnn = summarise(truth[:gs], *run_stonesoup(dets, gs, kd=False), a.warmup)
        per_target[n] = ours["ms"] / n
        for name, r in (("SS GNN", gnn), ("SS KD", kd), ("ours", ours)):
            ratios = (f"{gnn['ms'] / r['ms']:9.1f} {kd['ms'] / r['ms']:8.1f}" if name == "ours" else f"{'':9s} {'':8s}")
            print(f"{n:5d} {name:>8s} {r['ms']:9.2f} {det_per_scan / r['ms'] * 1e3:9.0f} {ratios} "
                  f"{r['gospa']:8.1f} {r['loc']:8.1f} {r['missed']:7.1f} {r['false']:7.1f} {r['tracks']:8.1f} "
                  f"{r['tracks'] / n:9.4f}", flush=True)
        ours_gs = summarise(truth[:gs], ours_secs[:gs], ours_est[:gs], a.warmup)
        verdict = "ok" if ours["gospa"] <= kd["gospa"] * (1 + 1e-9) and abs(ours["tracks"] / n - 1) <= 0.005 else "MISSED"
        print(f"{'':5s} ours vs SS KD: GOSPA {ours['gospa'] - kd['gospa']:+.1f}, "
              f"track count {ours['tracks'] / n - 1:+.2%}"
              f" of N, {kd['ms'] / ours['ms']:.1f}x faster [{verdict}]; over SS GNN's {gs} scans: GOSPA ours "
              f"{ours_gs['gospa']:.1f}, SS GNN {gnn['gospa']:.1f}", flush=True)
    if a.scale:
        truth, dets = make_scene(a.scale, a.scans, a.seed)
        ours = summarise(truth, *run_ours(dets, a.scans), a.warmup)
        print(f"{a.scale:5d} {'ours':>8s} {ours['ms']:9.2f} {np.mean([len(d) for d in dets]) / ours['ms'] * 1e3:9.0f} "
              f"{'':9s} {'':8s} {ours['gospa']:8.1f} {ours['loc']:8.1f} {ours['missed']:7.1f} {ours['false']:7.1f} "
              f"{ours['tracks']:8.1f} {ours['tracks'] / a.scale:9.4f}")
        if sizes:
            ref = max(sizes)
            print(f"per-target cost at N={a.scale}: {ours['ms'] / a.scale * 1e3:.1f} us, at N={ref}: "
                  f"{per_target[ref] * 1e3:.1f} us, ratio {ours['ms'] / a.scale / per_target[ref]:.2f}x (linear = 1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
