"""The ICD's loitering condition on a TRUE path, for the ground truth of hard nights.

A person "stays within 300 m of the border line for 300 s while remaining inside a circle of 150 m
radius - lingering, not walking through": at time t the path over [t - 300 s, t], sampled every
`SAMPLE_S`, lies within 300 m of the border and within 150 m of the centre of its bounding box (the
circle the pipeline's rule uses too; never smaller than the smallest enclosing circle), and it ends
no more than 150 m from where it began: a person walking straight through at 1 m/s covers 300 m in
300 s and so fits the circle, but walks through. One incident per dwell: after it is met, the dwell
lasts while the path stays near the border inside that circle; leaving it starts over.
A turn-back (walk up to the line, stop, walk back) that spends 300 s in the zone meets it.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from borderfuse.geo.geography import Geography

BORDER_DISTANCE_M = 300.0
DURATION_S = 300.0
RADIUS_M = 150.0
NET_DISPLACEMENT_M = 150.0  # "not walking through": start to end of the 300 s
SAMPLE_S = 2.0


def dwell_hits(geo: Geography, tw: np.ndarray, xw: np.ndarray, yw: np.ndarray,
               t_from: float | None = None) -> list[tuple[float, float, float]]:
    """(time, x, y) at which each dwell of the path is first met, in time order."""
    t0 = float(tw[0]) if t_from is None else max(float(tw[0]), t_from)
    t = np.arange(t0, float(tw[-1]) + 1e-9, SAMPLE_S)
    span = int(round(DURATION_S / SAMPLE_S))
    if t.size <= span:
        return []
    x, y = np.interp(t, tw, xw), np.interp(t, tw, yw)
    near = geo.distance_to_border(x, y) <= BORDER_DISTANCE_M
    far_before = np.concatenate([[0], np.cumsum(~near)])          # samples out of the zone before i
    all_near = far_before[span + 1:] - far_before[:-span - 1] == 0   # window k = samples k..k+span
    wx, wy = sliding_window_view(x, span + 1), sliding_window_view(y, span + 1)
    cx = 0.5 * (wx.min(axis=1) + wx.max(axis=1))
    cy = 0.5 * (wy.min(axis=1) + wy.max(axis=1))
    inside = all_near & (np.hypot(wx - cx[:, None], wy - cy[:, None]).max(axis=1) <= RADIUS_M)
    inside &= np.hypot(wx[:, -1] - wx[:, 0], wy[:, -1] - wy[:, 0]) <= NET_DISPLACEMENT_M
    hits, k = [], 0
    candidates = np.flatnonzero(inside)
    while True:
        later = candidates[candidates >= k]
        if later.size == 0:
            return hits
        k = int(later[0])
        end = k + span
        hits.append((float(t[end]), float(x[end]), float(y[end])))
        # the dwell is over at the first later sample out of the zone or out of its circle
        out = ~near[end:] | (np.hypot(x[end:] - cx[k], y[end:] - cy[k]) > RADIUS_M)
        if not out.any():
            return hits
        k = end + int(np.argmax(out))
