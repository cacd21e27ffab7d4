"""Which tracks follow the same target: candidate pairs from a KD-tree, not every pair.

Two tracks merge only when their positions are closer than `max_distance_m`, so the KD-tree's
`query_pairs` at that radius yields every pair that can qualify; the Mahalanobis and velocity
tests then run on those few pairs. The cost grows with the number of tracks near each other.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree


def close_pairs(xp: np.ndarray, pos_cov: np.ndarray, max_d2: float, max_distance_m: float,
                max_speed_diff_mps: float) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) with i < j of predicted tracks xp (T,4), position covariances (T,2,2) that agree in position and velocity.

    Agree = Mahalanobis d^2 of the position difference (summed covariances) below `max_d2`, distance
    below `max_distance_m` and speed difference below `max_speed_diff_mps`. Sorted by (i, j), the order
    in which an all-pairs upper-triangle scan would meet them.
    """
    empty = np.zeros(0, dtype=np.intp)
    if len(xp) < 2:
        return empty, empty
    pairs = cKDTree(xp[:, 0:2]).query_pairs(r=max_distance_m, output_type="ndarray")
    if not len(pairs):
        return empty, empty
    pairs = np.sort(pairs, axis=1)
    i, j = pairs[:, 0], pairs[:, 1]
    nu = xp[j, 0:2] - xp[i, 0:2]
    S = pos_cov[i] + pos_cov[j]
    a, b, d = S[:, 0, 0], S[:, 0, 1], S[:, 1, 1]
    d2 = (nu[:, 0] * nu[:, 0] * d - 2.0 * nu[:, 0] * nu[:, 1] * b + nu[:, 1] * nu[:, 1] * a) / (a * d - b * b)
    dist = np.hypot(nu[:, 0], nu[:, 1])
    dv = np.hypot(xp[j, 2] - xp[i, 2], xp[j, 3] - xp[i, 3])
    keep = (d2 < max_d2) & (dist < max_distance_m) & (dv < max_speed_diff_mps)
    i, j = i[keep], j[keep]
    order = np.lexsort((j, i))
    return i[order], j[order]


def updated_together(scans_a: np.ndarray, scans_b: np.ndarray) -> np.ndarray:
    """(P,) whether paired tracks share a scan among their recent updates (P,M) (-1 = no update).

    One scan is one sensor's detections at one time, and a sensor reports an object once: two tracks
    updated by the same scan were fed by two detections, so they follow two objects.
    """
    same = (scans_a[:, :, None] == scans_b[:, None, :]) & (scans_a[:, :, None] >= 0)
    return same.any(axis=(1, 2))
