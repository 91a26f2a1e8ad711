"""The GP surrogate's fast paths give the exact GP's answers: the kernel matrix summed from dense
parts equals gpytorch's own, and fantasies appended by a block Cholesky update predict what a
GP factorized afresh on the same points predicts."""

from __future__ import annotations

import numpy as np
import torch

from carbs.bayes.models import FittedGP, dense_kernel, fit_gp


def _fitted(n: int = 60, d: int = 3, seed: int = 0) -> FittedGP:
    rng = np.random.default_rng(seed)
    x = torch.as_tensor(rng.uniform(size=(n, d)), dtype=torch.float64)
    y = np.sin(3 * x[:, 0].numpy()) + x[:, 1].numpy() + 0.05 * rng.normal(size=n)
    return fit_gp(x, y, seed=seed, maxiter=30)


def test_dense_kernel_equals_the_kernels_own_matrix() -> None:
    gp = _fitted()
    x2 = torch.rand(17, 3, dtype=torch.float64)
    ours = dense_kernel(gp.model.covar_module, gp.train_x, x2)
    theirs = gp.model.covar_module(gp.train_x, x2).to_dense()
    assert ours.shape == (60, 17)
    assert torch.allclose(ours, theirs, rtol=1e-10, atol=1e-10)


def test_fantasies_by_block_update_predict_as_a_fresh_factorization() -> None:
    gp = _fitted()
    xp = torch.rand(5, 3, dtype=torch.float64)
    yp = np.linspace(-1, 1, 5)
    updated = gp.with_fantasies(xp, yp)
    y_t = torch.as_tensor((yp - gp.y_mean) / gp.y_std, dtype=torch.float64)
    fresh = FittedGP(
        gp.model,
        gp.y_mean,
        gp.y_std,
        torch.cat([gp.train_x, xp]),
        torch.cat([gp.train_y, y_t]),
    )
    grid = torch.rand(200, 3, dtype=torch.float64)
    m_u, v_u = updated.predict(grid)
    m_f, v_f = fresh.predict(grid)
    np.testing.assert_allclose(m_u, m_f, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(v_u, v_f, rtol=1e-5, atol=1e-9)
    _, v_at = updated.predict(xp)
    _, v_before = gp.predict(xp)
    assert np.all(v_at < v_before)  # a fantasy removes variance where it sits
