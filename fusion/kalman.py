"""Constant-velocity Kalman filter maths in the shared frame: pure numpy, batched.

State per track: (x, y, vx, vy) in metres and m/s; covariance 4x4. Process noise is the
continuous white-noise-acceleration model with spectral density `q` (m^2/s^3), so predicting
over dt in one step equals predicting over the same span in several steps: a track that was
not updated for a while needs no bookkeeping, it is predicted from its last update on demand.
Measurements are positions (x, y) with their own 2x2 covariance (H = [I 0]).
"""
from __future__ import annotations

import numpy as np

CHI2_2DOF_999 = 13.8155  # 99.9 % gate for a 2-d innovation
CHI2_2DOF_999999 = 27.631  # 99.9999 %: -2 ln(1e-6), beyond it a detection is not this track's outlier


def predict(x: np.ndarray, P: np.ndarray, dt: np.ndarray, q: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """States (T,4) and covariances (T,4,4) predicted over dt (T,) seconds (dt may be 0)."""
    dt = np.asarray(dt, dtype=float)
    q = np.broadcast_to(np.asarray(q, dtype=float), dt.shape)
    xp = x.copy()
    xp[:, 0:2] += x[:, 2:4] * dt[:, None]
    # F P F' written out for F = [[I, dt I], [0, I]] (avoids a (T,4,4) matmul pair)
    Ppp, Ppv, Pvp, Pvv = P[:, 0:2, 0:2], P[:, 0:2, 2:4], P[:, 2:4, 0:2], P[:, 2:4, 2:4]
    d = dt[:, None, None]
    Pn = np.empty_like(P)
    Pn[:, 0:2, 0:2] = Ppp + d * (Ppv + Pvp) + d * d * Pvv
    Pn[:, 0:2, 2:4] = Ppv + d * Pvv
    Pn[:, 2:4, 0:2] = Pvp + d * Pvv
    Pn[:, 2:4, 2:4] = Pvv
    eye = np.eye(2)[None]
    qd = q[:, None, None]
    Pn[:, 0:2, 0:2] += qd * d ** 3 / 3.0 * eye
    Pn[:, 0:2, 2:4] += qd * d ** 2 / 2.0 * eye
    Pn[:, 2:4, 0:2] += qd * d ** 2 / 2.0 * eye
    Pn[:, 2:4, 2:4] += qd * d * eye
    return xp, Pn


def predicted_position_cov(P: np.ndarray, dt: np.ndarray, q: float) -> np.ndarray:
    """The position block (T,2,2) of `predict`'s covariance, without the rest of the 4x4 work."""
    d = np.asarray(dt, dtype=float)[:, None, None]
    out = P[:, 0:2, 0:2] + d * (P[:, 0:2, 2:4] + P[:, 2:4, 0:2]) + d * d * P[:, 2:4, 2:4]
    out += (q * d ** 3 / 3.0) * np.eye(2)[None]
    return out


def inv2(S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse and determinant of a stack of 2x2 matrices (..., 2, 2), closed form."""
    a, b, c, d = S[..., 0, 0], S[..., 0, 1], S[..., 1, 0], S[..., 1, 1]
    det = a * d - b * c
    inv = np.empty_like(S)
    inv[..., 0, 0] = d / det
    inv[..., 0, 1] = -b / det
    inv[..., 1, 0] = -c / det
    inv[..., 1, 1] = a / det
    return inv, det


def gating_costs(xp: np.ndarray, Pp: np.ndarray, z: np.ndarray, R: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All tracks against all measurements at once.

    xp (T,4), Pp (T,4,4) predicted tracks; z (K,2), R (K,2,2) measurements. Returns
    (d2 (T,K) squared Mahalanobis distances, cost (T,K) = d2 + ln det S, the negative
    log-likelihood up to a constant, which is what global nearest neighbour minimises).
    """
    S = Pp[:, None, 0:2, 0:2] + R[None, :, :, :]            # (T,K,2,2)
    Sinv, det = inv2(S)
    nu = z[None, :, :] - xp[:, None, 0:2]                     # (T,K,2)
    d2 = np.einsum("tki,tkij,tkj->tk", nu, Sinv, nu)
    return d2, d2 + np.log(det)


def update(x: np.ndarray, P: np.ndarray, z: np.ndarray, R: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kalman update of states (N,4), covariances (N,4,4) with paired measurements z (N,2), R (N,2,2).

    Joseph form, so the covariance stays symmetric positive definite in long runs.
    """
    S = P[:, 0:2, 0:2] + R
    Sinv, _ = inv2(S)
    K = P[:, :, 0:2] @ Sinv                                   # (N,4,2)
    nu = z - x[:, 0:2]
    xn = x + np.einsum("nij,nj->ni", K, nu)
    IKH = np.broadcast_to(np.eye(4), P.shape).copy()
    IKH[:, :, 0:2] -= K
    Pn = IKH @ P @ np.transpose(IKH, (0, 2, 1)) + K @ R @ np.transpose(K, (0, 2, 1))
    Pn = 0.5 * (Pn + np.transpose(Pn, (0, 2, 1)))
    return xn, Pn


def initial_state(z: np.ndarray, R: np.ndarray, velocity: np.ndarray | None, sigma_v: float,
                  sigma_v_given: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """New track states (N,4), (N,4,4) from measurements; velocity (N,2) with NaN where unknown."""
    n = z.shape[0]
    x = np.zeros((n, 4))
    x[:, 0:2] = z
    P = np.zeros((n, 4, 4))
    P[:, 0:2, 0:2] = R
    if velocity is None:
        velocity = np.full((n, 2), np.nan)
    known = np.all(np.isfinite(velocity), axis=1)
    x[known, 2:4] = velocity[known]
    var_v = np.where(known, sigma_v_given ** 2, sigma_v ** 2)
    P[:, 2, 2] = var_v
    P[:, 3, 3] = var_v
    return x, P


def merge_distances(xa: np.ndarray, Pa: np.ndarray, xb: np.ndarray, Pb: np.ndarray) -> np.ndarray:
    """(A,B) squared Mahalanobis distance between the positions of two sets of tracks."""
    S = Pa[:, None, 0:2, 0:2] + Pb[None, :, 0:2, 0:2]
    Sinv, _ = inv2(S)
    nu = xb[None, :, 0:2] - xa[:, None, 0:2]
    return np.einsum("abi,abij,abj->ab", nu, Sinv, nu)
