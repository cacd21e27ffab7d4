"""Constant-velocity Kalman maths: prediction composes, updates shrink uncertainty, gating is Mahalanobis."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from borderfuse.fusion import kalman


def _state(n=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 100, (n, 4))
    A = rng.normal(0, 3, (n, 4, 4))
    P = A @ np.transpose(A, (0, 2, 1)) + np.eye(4) * 5
    return x, P


@settings(max_examples=30, deadline=None)
@given(a=st.floats(0, 20), b=st.floats(0, 20), q=st.floats(0.01, 5))
def test_prediction_in_two_steps_equals_one_step(a, b, q):
    x, P = _state()
    x1, P1 = kalman.predict(*kalman.predict(x, P, np.full(3, a), q), np.full(3, b), q)
    x2, P2 = kalman.predict(x, P, np.full(3, a + b), q)
    np.testing.assert_allclose(x1, x2, rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(P1, P2, rtol=1e-9, atol=1e-6)


def test_update_moves_towards_measurement_and_shrinks_covariance():
    x, P = _state()
    z = x[:, 0:2] + 50.0
    R = np.broadcast_to(np.eye(2) * 100.0, (3, 2, 2)).copy()
    xn, Pn = kalman.update(x, P, z, R)
    assert np.all(np.linalg.norm(z - xn[:, 0:2], axis=1) < np.linalg.norm(z - x[:, 0:2], axis=1))
    assert np.all(np.trace(Pn[:, 0:2, 0:2], axis1=1, axis2=2) < np.trace(P[:, 0:2, 0:2], axis1=1, axis2=2))
    assert np.all(np.linalg.eigvalsh(Pn) > 0)


@pytest.mark.parametrize("offset, expected_d2", [((0, 0), 0.0), ((30, 0), 1.0), ((0, 60), 1.0), ((30, 60), 2.0)])
def test_gating_distance_uses_the_innovation_covariance(offset, expected_d2):
    x = np.zeros((1, 4))
    P = np.zeros((1, 4, 4))
    R = np.array([[[900.0, 0], [0, 3600.0]]])
    d2, cost = kalman.gating_costs(x, P, np.array([offset], float), R)
    assert d2[0, 0] == pytest.approx(expected_d2)
    assert cost[0, 0] == pytest.approx(expected_d2 + np.log(900.0 * 3600.0))


def test_initial_state_uses_measured_velocity_where_given():
    z = np.array([[1.0, 2.0], [3.0, 4.0]])
    R = np.broadcast_to(np.eye(2), (2, 2, 2)).copy()
    x, P = kalman.initial_state(z, R, np.array([[1.0, -1.0], [np.nan, np.nan]]), sigma_v=8.0)
    assert x[0, 2:].tolist() == [1.0, -1.0] and x[1, 2:].tolist() == [0.0, 0.0]
    assert P[0, 2, 2] < P[1, 2, 2] == 64.0
