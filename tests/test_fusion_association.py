"""Sparse gating and GNN: the KD-tree radius never loses a gated pair, pair costs equal the dense
Kalman maths, and the per-component solution equals one dense assignment."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy.optimize import linear_sum_assignment

from borderfuse.fusion import association, kalman


def _tracks(rng, n, spread=2000.0):
    x = np.column_stack([rng.uniform(0, spread, (n, 2)), rng.normal(0, 10, (n, 2))])
    A = rng.normal(0, 1, (n, 4, 4)) * np.array([20.0, 20.0, 3.0, 3.0])[None, :, None]
    P = A @ np.transpose(A, (0, 2, 1)) + np.eye(4) * 4.0
    return x, P


def _dets(rng, k, spread=2000.0):
    z = rng.uniform(0, spread, (k, 2))
    B = rng.normal(0, 15, (k, 2, 2))
    return z, B @ np.transpose(B, (0, 2, 1)) + np.eye(2) * 25.0


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), span_s=st.floats(0, 5), age_s=st.floats(0, 10))
def test_kd_tree_radius_keeps_every_pair_inside_the_gate(seed, span_s, age_s):
    rng = np.random.default_rng(seed)
    n, k = 20, 60
    x, P = _tracks(rng, n)
    x[:, 2:4] *= 10.0                                    # fast tracks: the drift over the scan matters
    t_tracks = -rng.uniform(0, age_s, n)
    t_dets = rng.uniform(0, span_s, k)
    owner = rng.integers(0, n, k)                        # each detection thrown around one track's prediction
    dt_own = np.maximum(0.0, t_dets - t_tracks[owner])
    spread = np.sqrt(P[owner, 0, 0] + P[owner, 1, 1] + dt_own ** 2 * (P[owner, 2, 2] + P[owner, 3, 3]) + 450.0)
    z = x[owner, 0:2] + x[owner, 2:4] * dt_own[:, None] + rng.normal(0, 1, (k, 2)) * spread[:, None] * 1.5
    _, R = _dets(rng, k)
    dt_all = np.maximum(0.0, t_dets[None, :] - t_tracks[:, None])
    ti, kj = np.meshgrid(np.arange(n), np.arange(k), indexing="ij")
    ti, kj = ti.ravel(), kj.ravel()
    d2, _ = association.pair_costs(x[ti], P[ti], dt_all.ravel(), z[kj], R[kj], 1.0)
    gated = set(zip(ti[d2 <= 13.8155].tolist(), kj[d2 <= 13.8155].tolist()))
    centres, radii = association.gate_radii(x, P, np.maximum(0.0, t_dets.min() - t_tracks),
                                            np.maximum(0.0, t_dets.max() - t_tracks), 1.0,
                                            float((R[:, 0, 0] + R[:, 1, 1]).max()), 13.8155)
    ci, ck = association.candidate_pairs(centres, radii, z)
    assert gated <= set(zip(ci.tolist(), ck.tolist()))


def test_pair_costs_equal_predict_then_dense_gating():
    rng = np.random.default_rng(3)
    x, P = _tracks(rng, 5)
    z, R = _dets(rng, 5)
    dt = rng.uniform(0, 4, 5)
    d2, cost = association.pair_costs(x, P, dt, z, R, 0.7)
    xp, Pp = kalman.predict(x, P, dt, 0.7)
    for i in range(5):
        d2_dense, cost_dense = kalman.gating_costs(xp[i:i + 1], Pp[i:i + 1], z[i:i + 1], R[i:i + 1])
        assert d2[i] == pytest.approx(d2_dense[0, 0]) and cost[i] == pytest.approx(cost_dense[0, 0])


@pytest.mark.parametrize("radius", [0.0, 50.0, 400.0, 5000.0])
def test_candidate_pairs_are_exactly_the_detections_within_the_radius(radius):
    rng = np.random.default_rng(5)
    centres = rng.uniform(0, 2000, (20, 2))
    z = rng.uniform(0, 2000, (30, 2))
    ti, kj = association.candidate_pairs(centres, np.full(20, radius), z)
    dist = np.hypot(*(centres[:, None, :] - z[None, :, :]).transpose(2, 0, 1))
    assert sorted(zip(ti.tolist(), kj.tolist())) == sorted(zip(*np.nonzero(dist <= radius)))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 12), k=st.integers(1, 12), density=st.floats(0.05, 0.9))
def test_per_component_gnn_equals_one_dense_assignment(seed, n, k, density):
    rng = np.random.default_rng(seed)
    feasible = rng.random((n, k)) < density
    cost = rng.uniform(-5, 30, (n, k))
    ti, kj = np.nonzero(feasible)
    at, ak = association.solve_gnn(ti, kj, cost[ti, kj], n, k)
    assert len(set(at.tolist())) == at.size and len(set(ak.tolist())) == ak.size
    assert feasible[at, ak].all()
    dense = np.where(feasible, cost, 1e9)
    r, c = linear_sum_assignment(dense)
    ok = dense[r, c] < 1e9
    assert at.size == ok.sum()
    assert cost[at, ak].sum() == pytest.approx(dense[r[ok], c[ok]].sum())


def test_no_candidates_assigns_nothing():
    empty = np.zeros(0, dtype=np.intp)
    at, ak = association.solve_gnn(empty, empty, np.zeros(0), 3, 3)
    assert at.size == ak.size == 0
    assert [a.size for a in association.candidate_pairs(np.zeros((2, 2)), np.ones(2), np.full((1, 2), 99.0))] == [0, 0]
