"""Maximum-likelihood fitting of the BG/NBD and Gamma-Gamma models.

Both models are fitted the way Fader & Hardie do in their spreadsheets and
lifetimes does in Python: maximise the summed log-likelihood over the
customers (optionally weighted by the count of identical rows) with all
parameters constrained positive by optimising their logarithms.  A
derivative-free Nelder-Mead search is robust from a crude start; a
quasi-Newton (L-BFGS-B) run from its optimum polishes the last digits.

Standard errors come from the inverse of the Hessian of the negative
log-likelihood in the *natural* parameters at the optimum, estimated by
central differences (scipy has no general numerical Hessian).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Generic, Mapping, TypeVar

import numpy as np
from scipy.optimize import minimize

from . import bgnbd, gamma_gamma
from .params import BgNbdParams, GammaGammaParams

P = TypeVar("P", BgNbdParams, GammaGammaParams)


@dataclass(frozen=True)
class FitResult(Generic[P]):
    """Outcome of a maximum-likelihood fit.

    ``standard_errors`` maps parameter names to asymptotic standard errors
    (NaN when the Hessian is not positive definite).  ``n_customers`` is the
    total weight of the rows used.
    """

    params: P
    standard_errors: Mapping[str, float]
    log_likelihood: float
    n_customers: float
    converged: bool
    message: str
    iterations: int


def numerical_hessian(f: Callable[[np.ndarray], float], theta, rel_step: float = 1e-4) -> np.ndarray:
    """Central-difference Hessian of scalar ``f`` at ``theta``.

    Step ``h_i = rel_step * max(|theta_i|, 1e-3)``; diagonal terms use the
    3-point second difference, off-diagonal terms the 4-point cross
    difference.  Error is O(h^2); with rel_step 1e-4 that is ~1e-8 relative,
    far below the sampling error the Hessian is used to estimate.
    """
    theta = np.asarray(theta, dtype=float)
    n = theta.size
    h = rel_step * np.maximum(np.abs(theta), 1e-3)
    f0 = f(theta)
    hess = np.empty((n, n))

    def at(*moves: tuple[int, float]) -> float:
        point = theta.copy()
        for index, sign in moves:
            point[index] += sign * h[index]
        return f(point)

    for i in range(n):
        hess[i, i] = (at((i, 1)) - 2.0 * f0 + at((i, -1))) / h[i] ** 2
        for j in range(i):
            value = (
                at((i, 1), (j, 1)) - at((i, 1), (j, -1)) - at((i, -1), (j, 1)) + at((i, -1), (j, -1))
            ) / (4.0 * h[i] * h[j])
            hess[i, j] = hess[j, i] = value
    return hess


def _standard_errors(names: tuple[str, ...], nll: Callable[[np.ndarray], float],
                     theta: np.ndarray) -> dict[str, float]:
    try:
        cov = np.linalg.inv(numerical_hessian(nll, theta))
        variances = np.diag(cov)
    except np.linalg.LinAlgError:
        variances = np.full(len(names), np.nan)
    with np.errstate(invalid="ignore"):
        errors = np.where(variances > 0, np.sqrt(np.abs(variances)), np.nan)
    return {name: float(se) for name, se in zip(names, errors)}


def _gradient_norm(f: Callable[[np.ndarray], float], theta: np.ndarray, h: float = 1e-5) -> float:
    """Max-norm of the central-difference gradient (convergence check)."""
    grad = np.empty_like(theta)
    for i in range(theta.size):
        step = np.zeros_like(theta)
        step[i] = h
        grad[i] = (f(theta + step) - f(theta - step)) / (2.0 * h)
    return float(np.max(np.abs(grad)))


# A fit counts as converged when the mean negative log-likelihood is flat in
# every log-parameter direction to this tolerance (nats per customer per
# unit change of log-parameter).
_GRADIENT_TOLERANCE = 1e-5


def _maximise(nll_of_log_params: Callable[[np.ndarray], float], start: np.ndarray):
    """Nelder-Mead, then L-BFGS-B from its optimum; keep the better point.

    The convergence flag is judged on the result rather than on the
    optimisers' own stopping messages (L-BFGS-B often stops on "abnormal
    line search" once it hits floating-point noise at the optimum).
    """
    coarse = minimize(
        nll_of_log_params, start, method="Nelder-Mead",
        options={"xatol": 1e-8, "fatol": 1e-12, "maxiter": 20000, "maxfev": 40000},
    )
    polish = minimize(nll_of_log_params, coarse.x, method="L-BFGS-B",
                      options={"ftol": 1e-15, "gtol": 1e-10})
    best = polish if polish.fun <= coarse.fun else coarse
    gradient = _gradient_norm(nll_of_log_params, best.x)
    converged = bool(np.isfinite(best.fun) and gradient < _GRADIENT_TOLERANCE)
    message = (
        f"nelder-mead: {coarse.message}; l-bfgs-b: {polish.message}; "
        f"|gradient|_max={gradient:.2e}"
    )
    return best.x, converged, message, int(coarse.nit + polish.nit)


def _weights(weights, n: int) -> np.ndarray:
    if weights is None:
        return np.ones(n)
    w = np.asarray(weights, dtype=float)
    if w.shape != (n,) or np.any(w < 0) or not np.all(np.isfinite(w)):
        raise ValueError("weights must be finite, non-negative, one per row")
    return w


def fit_bgnbd(x, t_x, T, weights=None, initial: BgNbdParams | None = None) -> FitResult[BgNbdParams]:
    """Fit the BG/NBD model by maximum likelihood.

    ``weights`` are counts of identical ``(x, t_x, T)`` rows (see
    :func:`compress_rows`).  Time is rescaled internally so the largest ``T``
    is 10 units (as lifetimes does): only ``alpha`` carries the time unit and
    the optimiser then sees comparable magnitudes whether the data is in
    days or weeks.  The reported ``alpha`` and log-likelihood are in the
    caller's unit.
    """
    x = np.asarray(x, dtype=float)
    t_x = np.asarray(t_x, dtype=float)
    T = np.asarray(T, dtype=float)
    bgnbd.validate_rfm(x, t_x, T)
    w = _weights(weights, x.size)
    total = w.sum()
    if total <= 0:
        raise ValueError("nothing to fit: total weight is zero")
    scale = 10.0 / float(T.max()) if T.max() > 0 else 1.0
    xs, txs, Ts = x, t_x * scale, T * scale

    def mean_nll(log_params: np.ndarray) -> float:
        if np.any(np.abs(log_params) > 30):  # keep exp() finite; far outside any fit
            return np.inf
        params = BgNbdParams(*np.exp(log_params))
        ll = bgnbd.log_likelihood_batch(params, xs, txs, Ts)
        value = -float(w @ ll) / total
        return value if np.isfinite(value) else np.inf

    if initial is None:
        start = np.zeros(4)
    else:
        start = np.log(np.array([initial.r, initial.alpha * scale, initial.a, initial.b]))
    log_params, converged, message, iterations = _maximise(mean_nll, start)
    r, alpha_scaled, a, b = np.exp(log_params)
    params = BgNbdParams(float(r), float(alpha_scaled / scale), float(a), float(b))

    def total_nll(theta: np.ndarray) -> float:
        return -float(w @ bgnbd.log_likelihood_batch(BgNbdParams(*theta), x, t_x, T))

    theta = np.array([params.r, params.alpha, params.a, params.b])
    return FitResult(
        params=params,
        standard_errors=_standard_errors(("r", "alpha", "a", "b"), total_nll, theta),
        log_likelihood=-total_nll(theta),
        n_customers=float(total),
        converged=converged,
        message=message,
        iterations=iterations,
    )


def fit_gamma_gamma(x, mean_spend, weights=None,
                    initial: GammaGammaParams | None = None) -> FitResult[GammaGammaParams]:
    """Fit the Gamma-Gamma spend model by maximum likelihood.

    Only rows with ``x >= 1`` and ``mean_spend > 0`` enter the likelihood
    (one-time buyers say nothing about the spread of a customer's spend);
    the others are dropped silently and not counted in ``n_customers``.
    """
    x = np.asarray(x, dtype=float)
    m = np.asarray(mean_spend, dtype=float)
    w = _weights(weights, x.size)
    keep = gamma_gamma.fittable_mask(x, m) & (w > 0)
    x, m, w = x[keep], m[keep], w[keep]
    total = w.sum()
    if total <= 0:
        raise ValueError("nothing to fit: no customer with x >= 1 and positive mean spend")
    # Spend scale: only v carries the currency unit; normalise like time above.
    scale = 1.0 / float(np.average(m, weights=w))
    ms = m * scale

    def mean_nll(log_params: np.ndarray) -> float:
        if np.any(np.abs(log_params) > 30):
            return np.inf
        ll = gamma_gamma.log_likelihood_batch(GammaGammaParams(*np.exp(log_params)), x, ms)
        value = -float(w @ ll) / total
        return value if np.isfinite(value) else np.inf

    if initial is None:
        start = np.zeros(3)
    else:
        start = np.log(np.array([initial.p, initial.q, initial.v * scale]))
    log_params, converged, message, iterations = _maximise(mean_nll, start)
    p, q, v_scaled = np.exp(log_params)
    params = GammaGammaParams(float(p), float(q), float(v_scaled / scale))

    def total_nll(theta: np.ndarray) -> float:
        return -float(w @ gamma_gamma.log_likelihood_batch(GammaGammaParams(*theta), x, m))

    theta = np.array([params.p, params.q, params.v])
    return FitResult(
        params=params,
        standard_errors=_standard_errors(("p", "q", "v"), total_nll, theta),
        log_likelihood=-total_nll(theta),
        n_customers=float(total),
        converged=converged,
        message=message,
        iterations=iterations,
    )


def compress_rows(*columns) -> tuple[list[np.ndarray], np.ndarray]:
    """Collapse identical rows: returns the unique rows (per column) and their counts.

    Fader & Hardie fit on the counts of distinct ``(x, t_x, T)`` patterns;
    passing the counts as ``weights`` gives the same likelihood, faster.
    """
    stacked = np.column_stack([np.asarray(c, dtype=float) for c in columns])
    unique, counts = np.unique(stacked, axis=0, return_counts=True)
    return [unique[:, i] for i in range(unique.shape[1])], counts.astype(float)
