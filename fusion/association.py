"""Sparse gating and global-nearest-neighbour assignment for the tracker.

A scan is gated through a KD-tree of its detections instead of every track against every
detection: each track asks the tree for the detections inside a radius that provably holds its
whole Mahalanobis gate (see `gate_radii`), and only those candidate pairs get a d^2 and a cost.
The assignment is solved per connected component of the candidate graph: components are
independent, so the per-component optimum is the global one, and almost every component of a
spread-out scene is one track with one detection, assigned without a solver.

Pure numpy/scipy; the cost of a scan grows with the number of tracks and detections near each
other, not with tracks x detections.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

_INFEASIBLE = 1e9
_EMPTY = np.zeros(0, dtype=np.intp)


def gate_radii(x: np.ndarray, P: np.ndarray, dt_lo: np.ndarray, dt_hi: np.ndarray, q: float,
               max_r_trace: float, gate_d2: float) -> tuple[np.ndarray, np.ndarray]:
    """(centres (T,2), radii (T,)) that contain every detection a track can gate.

    Each track is predicted to `dt_lo` (the scan's first detection time); a detection at any dt in
    [dt_lo, dt_hi] is compared with the prediction at its own dt, which lies within |v| (dt_hi - dt_lo)
    of that centre. d^2 = nu' S^-1 nu >= |nu|^2 / lambda_max(S) >= |nu|^2 / trace(S), so d^2 <= gate
    implies |nu| <= sqrt(gate * trace(S)); trace(S) is bounded above by a polynomial in dt that
    increases monotonically (cross terms taken by absolute value), evaluated at dt_hi.
    """
    centres = x[:, 0:2] + x[:, 2:4] * dt_lo[:, None]
    t_pp = P[:, 0, 0] + P[:, 1, 1]
    t_pv = np.abs(P[:, 0, 2] + P[:, 2, 0]) + np.abs(P[:, 1, 3] + P[:, 3, 1])
    t_vv = P[:, 2, 2] + P[:, 3, 3]
    d = dt_hi
    trace_s = t_pp + d * t_pv + d * d * t_vv + 2.0 * q * d ** 3 / 3.0 + max_r_trace
    drift = np.hypot(x[:, 2], x[:, 3]) * (dt_hi - dt_lo)
    return centres, np.sqrt(gate_d2 * trace_s) + drift


def candidate_pairs(centres: np.ndarray, radii: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(track index, detection index) of every detection within its track's radius, track-major order."""
    if not len(centres) or not len(z):
        return _EMPTY, _EMPTY
    hits = cKDTree(z).query_ball_point(centres, r=radii, return_sorted=True)
    counts = np.fromiter((len(h) for h in hits), dtype=np.intp, count=len(hits))
    if not counts.sum():
        return _EMPTY, _EMPTY
    ti = np.repeat(np.arange(len(centres), dtype=np.intp), counts)
    kj = np.concatenate([np.asarray(h, dtype=np.intp) for h in hits if h])
    return ti, kj


def pair_costs(x: np.ndarray, P: np.ndarray, dt: np.ndarray, z: np.ndarray, R: np.ndarray,
               q: float) -> tuple[np.ndarray, np.ndarray]:
    """d^2 and cost (d^2 + ln det S) of paired tracks x (M,4), P (M,4,4) and detections z (M,2), R (M,2,2).

    Each track is predicted over its own dt (M,) to its detection's time. Written on the three
    distinct entries of the symmetric innovation covariance: a handful of (M,) operations.
    """
    d = dt
    s00 = P[:, 0, 0] + d * (P[:, 0, 2] + P[:, 2, 0]) + d * d * P[:, 2, 2] + q * d ** 3 / 3.0 + R[:, 0, 0]
    s11 = P[:, 1, 1] + d * (P[:, 1, 3] + P[:, 3, 1]) + d * d * P[:, 3, 3] + q * d ** 3 / 3.0 + R[:, 1, 1]
    s01 = P[:, 0, 1] + d * (P[:, 0, 3] + P[:, 2, 1]) + d * d * P[:, 2, 3] + R[:, 0, 1]
    det = s00 * s11 - s01 * s01
    nx = z[:, 0] - (x[:, 0] + x[:, 2] * d)
    ny = z[:, 1] - (x[:, 1] + x[:, 3] * d)
    d2 = (nx * nx * s11 - 2.0 * nx * ny * s01 + ny * ny * s00) / det
    return d2, d2 + np.log(det)


def solve_gnn(ti: np.ndarray, kj: np.ndarray, cost: np.ndarray, n_tracks: int,
              n_dets: int) -> tuple[np.ndarray, np.ndarray]:
    """Global nearest neighbour over feasible pairs: most assignments first, then least summed cost.

    Returns (track indices, detection indices) of the assigned pairs, in no particular order.
    Pairs must be unique. Solved per connected component of the bipartite candidate graph.
    """
    if not ti.size:
        return _EMPTY, _EMPTY
    # compact the tracks and detections that take part, then label the components
    rows, t_local = np.unique(ti, return_inverse=True)
    cols, k_local = np.unique(kj, return_inverse=True)
    nr, nc = len(rows), len(cols)
    graph = coo_matrix((np.ones(ti.size), (t_local, nr + k_local)), shape=(nr + nc, nr + nc))
    _, label = connected_components(graph, directed=False)
    comp = label[t_local]
    edges_per_comp = np.bincount(comp, minlength=label.max() + 1)
    single = edges_per_comp[comp] == 1          # a track and a detection that only see each other
    out_t = [ti[single]]
    out_k = [kj[single]]
    multi = np.flatnonzero(~single)
    if multi.size:
        order = multi[np.argsort(comp[multi], kind="stable")]
        bounds = np.flatnonzero(np.diff(comp[order])) + 1
        for group in np.split(order, bounds):
            r_ids, r = np.unique(t_local[group], return_inverse=True)
            c_ids, c = np.unique(k_local[group], return_inverse=True)
            sub = np.full((len(r_ids), len(c_ids)), _INFEASIBLE)
            sub[r, c] = cost[group]
            rr, cc = linear_sum_assignment(sub)
            ok = sub[rr, cc] < _INFEASIBLE
            out_t.append(rows[r_ids[rr[ok]]])
            out_k.append(cols[c_ids[cc[ok]]])
    return np.concatenate(out_t), np.concatenate(out_k)
