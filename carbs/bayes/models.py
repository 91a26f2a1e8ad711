"""Gaussian-process surrogates fitted with BoTorch's fitting utilities.

Why this shape: every surrogate (warped loss, log-cost, success, Pareto value) is an exact
`SingleTaskGP` fitted by `fit_gpytorch_mll` (L-BFGS-B on the marginal likelihood) from fixed
initial hyperparameters under a seeded torch RNG, so the same data always gives the same model.
Targets are standardized here (not by an outcome transform) so that fantasy points for pending
trials can be appended later with the fitted hyperparameters, at the cost of a block update of
the Cholesky factor (O(n^2 p) for p fantasies, not a fresh O(n^3) factorization).
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import torch
from botorch.exceptions import ModelFittingError
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from botorch.models.utils.gpytorch_modules import get_covar_module_with_dim_scaled_prior
from gpytorch.kernels import AdditiveKernel, Kernel, LinearKernel, ScaleKernel
from gpytorch.mlls import ExactMarginalLogLikelihood
from linear_operator.utils.cholesky import psd_safe_cholesky


class FittedGP:
    """A fitted GP plus the affine map of its targets, with a cached Cholesky for fast scoring.

    Prediction is done here from the fitted kernel rather than through `model.posterior`, which
    forms the full (n x n) predictive covariance of the candidates when only its diagonal is
    needed; this keeps scoring thousands of candidates to a few matrix products.
    """

    def __init__(
        self,
        model: SingleTaskGP,
        y_mean: float,
        y_std: float,
        train_x: torch.Tensor | None = None,
        train_y: torch.Tensor | None = None,
        chol: torch.Tensor | None = None,
    ) -> None:
        """`chol`: the Cholesky factor of the noisy kernel matrix of `train_x`, where the caller
        has it already (a fantasy's block update); else it is factorized here."""
        self.model = model
        self.y_mean = y_mean
        self.y_std = y_std
        self.train_x = model.train_inputs[0] if train_x is None else train_x
        self.train_y = model.train_targets if train_y is None else train_y
        with torch.no_grad():
            self._kernel = model.covar_module
            self._constant = float(model.mean_module.constant.detach())
            self._noise = float(model.likelihood.noise.detach().reshape(-1)[0])
            if chol is None:
                k = dense_kernel(self._kernel, self.train_x, self.train_x)
                chol = psd_safe_cholesky(k + self._noise * torch.eye(len(k), dtype=k.dtype))
            self._chol = chol
            resid = (self.train_y - self._constant).unsqueeze(-1)
            self._alpha = torch.cholesky_solve(resid, self._chol).squeeze(-1)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """(n, d) inputs -> mean (n,), variance (n,) of the latent function, in target units."""
        k_xt = dense_kernel(self._kernel, x, self.train_x)
        mean = self._constant + k_xt @ self._alpha
        v = torch.linalg.solve_triangular(self._chol, k_xt.T, upper=False)
        prior_var = self._kernel(x, x, diag=True)
        var = (prior_var - (v * v).sum(0)).clamp_min(1e-12)
        return mean.numpy() * self.y_std + self.y_mean, var.numpy() * self.y_std**2

    def hyperparameters(self) -> dict[str, torch.Tensor]:
        """The fitted hyperparameters, to reuse on later data without refitting."""
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def with_fantasies(self, x: torch.Tensor, y: np.ndarray) -> FittedGP:
        """(p, d) inputs with (p,) assumed targets appended; hyperparameters unchanged.

        Why: CARBS' answer to pending trials. A pending point's predicted mean is treated as
        observed, which removes the variance there, so the next pick in a batch looks elsewhere.
        """
        if len(x) == 0:
            return self
        y_t = torch.as_tensor((np.asarray(y) - self.y_mean) / self.y_std, dtype=torch.float64)
        with torch.no_grad():
            b = torch.linalg.solve_triangular(
                self._chol, dense_kernel(self._kernel, self.train_x, x), upper=False
            )
            k_pp = dense_kernel(self._kernel, x, x) + self._noise * torch.eye(len(x), dtype=b.dtype)
            corner = psd_safe_cholesky(k_pp - b.T @ b)
            n, p = len(self._chol), len(x)
            chol = torch.zeros(n + p, n + p, dtype=b.dtype)
            chol[:n, :n], chol[n:, :n], chol[n:, n:] = self._chol, b.T, corner
        return FittedGP(
            self.model,
            self.y_mean,
            self.y_std,
            torch.cat([self.train_x, x]),
            torch.cat([self.train_y, y_t]),
            chol,
        )


def dense_kernel(kernel: Kernel, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
    """(n, d), (m, d) -> the (n, m) kernel matrix as a plain tensor.

    Why not `kernel(x1, x2).to_dense()`: on a sum with the linear kernel's low-rank part,
    linear_operator forms the sum through `add_low_rank`, which solves against the dense part;
    at 1,000 points that took ~70 % of a suggest. Each summand made dense and added is exact.
    """
    if isinstance(kernel, AdditiveKernel):
        return sum(dense_kernel(k, x1, x2) for k in kernel.kernels)  # type: ignore[return-value]
    return kernel(x1, x2).to_dense()


def fit_gp(
    x: torch.Tensor,
    y: np.ndarray,
    *,
    linear: bool = True,
    seed: int = 0,
    maxiter: int = 75,
    hyperparameters: dict[str, torch.Tensor] | None = None,
) -> FittedGP:
    """Fit a GP to (n, d) inputs and (n,) targets.

    Kernel: a Matern-5/2 with ARD lengthscales under BoTorch's dimension-scaled prior, plus (when
    `linear`) a scaled linear kernel, as in CARBS (Matern + linear): the linear part lets the
    model extrapolate trends such as "bigger models cost more" beyond the observed points.
    """
    y = np.asarray(y, dtype=float)
    y_mean = float(y.mean())
    y_std = float(y.std())
    if not np.isfinite(y_std) or y_std < 1e-9:
        y_std = 1.0
    y_t = torch.as_tensor((y - y_mean) / y_std, dtype=torch.float64).unsqueeze(-1)
    d = x.shape[-1]
    covar = get_covar_module_with_dim_scaled_prior(ard_num_dims=d, use_rbf_kernel=False)
    covar = ScaleKernel(covar)
    if linear:
        covar = covar + ScaleKernel(LinearKernel())
    model = SingleTaskGP(x, y_t, covar_module=covar, outcome_transform=None)
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    if hyperparameters is not None:
        model.load_state_dict(hyperparameters)
        model.eval()
        return FittedGP(model, y_mean, y_std)
    initial = copy.deepcopy(model.state_dict())
    with torch.random.fork_rng(), warnings.catch_warnings():
        torch.manual_seed(seed)
        warnings.simplefilter("ignore")
        try:
            fit_gpytorch_mll(
                mll, optimizer_kwargs={"options": {"maxiter": maxiter}}, max_attempts=2
            )
        except (ModelFittingError, RuntimeError, ValueError):
            model.load_state_dict(initial)  # deterministic fallback: the prior's hyperparameters
    model.eval()
    return FittedGP(model, y_mean, y_std)
