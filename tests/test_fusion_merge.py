"""Merge candidates: the KD-tree finds exactly the pairs the all-pairs test finds, in the same order."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from borderfuse.fusion import kalman, merge


def _all_pairs(xp, Pp, max_d2, max_m, max_dv):
    d2 = kalman.merge_distances(xp, Pp, xp, Pp)
    dist = np.hypot(xp[:, None, 0] - xp[None, :, 0], xp[:, None, 1] - xp[None, :, 1])
    dv = np.hypot(xp[:, None, 2] - xp[None, :, 2], xp[:, None, 3] - xp[None, :, 3])
    return np.nonzero(np.triu((d2 < max_d2) & (dist < max_m) & (dv < max_dv), k=1))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(0, 60), spread=st.sampled_from([100.0, 1000.0, 10_000.0]))
def test_kd_tree_pairs_equal_all_pairs(seed, n, spread):
    rng = np.random.default_rng(seed)
    xp = np.column_stack([rng.uniform(0, spread, (n, 2)), rng.normal(0, 2, (n, 2))])
    A = rng.normal(0, 10, (n, 4, 4))
    Pp = A @ np.transpose(A, (0, 2, 1)) + np.eye(4) * 9.0
    i, j = merge.close_pairs(xp, Pp[:, 0:2, 0:2], 9.0, 80.0, 2.5)
    ei, ej = _all_pairs(xp, Pp, 9.0, 80.0, 2.5) if n else (np.zeros(0), np.zeros(0))
    assert i.tolist() == ei.tolist() and j.tolist() == ej.tolist()


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), dt=st.floats(0, 30), q=st.floats(0.01, 5))
def test_predicted_position_cov_is_the_block_of_the_full_prediction(seed, dt, q):
    rng = np.random.default_rng(seed)
    A = rng.normal(0, 5, (4, 4, 4))
    P = A @ np.transpose(A, (0, 2, 1))
    _, full = kalman.predict(np.zeros((4, 4)), P, np.full(4, dt), q)
    np.testing.assert_allclose(kalman.predicted_position_cov(P, np.full(4, dt), q), full[:, 0:2, 0:2],
                               rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("a, b, together", [
    ([5, 4, 3, -1], [9, 8, 7, -1], False),
    ([5, 4, 3, -1], [9, 5, -1, -1], True),
    ([-1, -1, -1, -1], [-1, -1, -1, -1], False),   # no updates at all: no evidence of two objects
    ([12, -1, -1, -1], [12, -1, -1, -1], True),
])
def test_updated_together_means_a_shared_scan(a, b, together):
    assert merge.updated_together(np.array([a]), np.array([b])).tolist() == [together]
