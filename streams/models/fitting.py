"""Maximum-likelihood fitting of the BG/NBD and Gamma-Gamma models.

Both models are fitted the way Fader & Hardie do in their spreadsheets and
lifetimes does in Python: maximise the summed log-likelihood over the
customers with all parameters constrained positive by optimising their
logarithms.  What makes it fast and safe:

* identical rows are collapsed first (``np.unique`` with counts as weights):
  on whole days most ``(x, t_x, T)`` rows repeat, so the likelihood is
  evaluated on a few thousand distinct rows whatever the customer count;
* the log-likelihood comes with its analytic gradient
  (``bgnbd.log_likelihood_gradient_batch``, ``gamma_gamma.…``), so L-BFGS-B
  needs tens of evaluations, not thousands of derivative-free probes;
* the log-parameters live in a box (``PARAMETER_BOUNDS``, in the internally
  rescaled units): every point the optimiser visits is a valid parameter set,
  so a fit never raises on the data it was given.  A parameter that ends on
  or near the box edge means the data cannot pin it down (no one seen to drop
  out, no spread in spend, ...): the fit is *refused* with the reason;
* standard errors are computed once, at the end, from a Hessian of the
  log-likelihood in log-parameters (central differences of the analytic
  gradient) mapped to natural parameters by the delta method; a parameter at
  a bound has no standard error (NaN, with a warning).

A refused fit still says what it found (``params`` when there were any,
``log_likelihood``, ``message``) and why it must not be used (``refusal``);
whether the data were enough to publish at all is the caller's question
(``streams.models.requirements``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Callable, Generic, Mapping, Optional, TypeVar

import numpy as np
from scipy.optimize import minimize

from . import bgnbd, gamma_gamma
from .params import BgNbdParams, GammaGammaParams

P = TypeVar("P", BgNbdParams, GammaGammaParams)

#: The optimiser's box for every parameter, in the rescaled units (time such
#: that the longest history is 10 units, spend such that the mean is 1).
PARAMETER_BOUNDS = (1e-6, 1e6)
#: Estimates outside this range (same units) are near-degenerate: e.g. BG/NBD
#: a=88,828 b=1,048,496 says "every customer has the same dropout
#: probability", a=1e-5 "no one ever drops out"; both mean the history is too
#: short to tell.  Such fits are refused.
PLAUSIBLE_RANGE = (1e-4, 1e4)
# A parameter within this log-distance of a box edge is "at the bound".
_AT_BOUND = 1e-3
# A fit counts as converged when the mean negative log-likelihood is flat in
# every free log-parameter direction to this tolerance (nats per customer per
# unit change of log-parameter).
_GRADIENT_TOLERANCE = 1e-5


class FitWarning(UserWarning):
    """Something in a fit the user should know about (e.g. a standard error at a bound)."""


@dataclass(frozen=True)
class FitResult(Generic[P]):
    """Outcome of a maximum-likelihood fit.

    ``params`` is None only when there was nothing to fit.  ``refusal`` is
    None for a fit whose parameters may be used, else the reason they must
    not be (the fit is then never published).  ``standard_errors`` maps
    parameter names to asymptotic standard errors (NaN at a bound or when
    the Hessian is not positive definite; see ``warnings``).
    ``n_customers`` is the total weight of the rows used, ``n_rows`` the
    number of distinct rows the likelihood was evaluated on.
    """

    params: Optional[P]
    standard_errors: Mapping[str, float]
    log_likelihood: float
    n_customers: float
    converged: bool
    message: str
    iterations: int
    refusal: Optional[str] = None
    warnings: tuple[str, ...] = ()
    n_rows: int = 0
    penalizer_coef: float = 0.0
    at_bound: tuple[str, ...] = field(default=())

    @property
    def usable(self) -> bool:
        return self.refusal is None and self.params is not None


def numerical_hessian(f: Callable[[np.ndarray], float], theta, rel_step: float = 1e-4) -> np.ndarray:
    """Central-difference Hessian of scalar ``f`` at ``theta``.

    Step ``h_i = rel_step * max(|theta_i|, 1e-3)``; diagonal terms use the
    3-point second difference, off-diagonal terms the 4-point cross
    difference.  Error is O(h^2).  (The fits use :func:`_jacobian_of_gradient`
    on log-parameters instead, which cannot step outside the domain.)
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


def _jacobian_of_gradient(grad: Callable[[np.ndarray], np.ndarray], theta: np.ndarray,
                          step: float = 1e-5) -> np.ndarray:
    """Hessian as the central-difference Jacobian of an analytic gradient (2n gradient calls)."""
    n = theta.size
    hess = np.empty((n, n))
    for i in range(n):
        move = np.zeros(n)
        move[i] = step
        hess[:, i] = (grad(theta + move) - grad(theta - move)) / (2.0 * step)
    return 0.5 * (hess + hess.T)


def compress_rows(*columns, weights=None) -> tuple[list[np.ndarray], np.ndarray]:
    """Collapse identical rows: the unique rows (per column) and their summed weights.

    Fader & Hardie fit on the counts of distinct ``(x, t_x, T)`` patterns;
    passing the counts as ``weights`` gives the same likelihood, faster.
    Rows are compared bit for bit (a structured view sorts ~5x faster than
    ``np.unique(axis=0)``).
    """
    stacked = np.ascontiguousarray(np.column_stack([np.asarray(c, dtype=float) for c in columns]))
    if stacked.shape[0] == 0:
        return [stacked[:, i] for i in range(stacked.shape[1])], np.zeros(0)
    stacked = stacked + 0.0  # -0.0 -> 0.0, so equal values compare equal as bytes
    rows = stacked.view(np.dtype((np.void, stacked.dtype.itemsize * stacked.shape[1]))).ravel()
    _, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
    w = np.ones(stacked.shape[0]) if weights is None else np.asarray(weights, dtype=float)
    counts = np.bincount(inverse.ravel(), weights=w, minlength=first.size)
    unique = stacked[first]
    return [unique[:, i] for i in range(unique.shape[1])], counts


def _weights(weights, n: int) -> tuple[Optional[np.ndarray], Optional[str]]:
    if weights is None:
        return np.ones(n), None
    w = np.asarray(weights, dtype=float)
    if w.shape != (n,) or np.any(w < 0) or not np.all(np.isfinite(w)):
        return None, "weights must be finite, non-negative, one per row"
    return w, None


def _refused(reason: str, names: tuple[str, ...], n_customers: float = 0.0,
             penalizer_coef: float = 0.0) -> FitResult:
    return FitResult(params=None, standard_errors={name: math.nan for name in names},
                     log_likelihood=math.nan, n_customers=float(n_customers), converged=False,
                     message=reason, iterations=0, refusal=reason, penalizer_coef=penalizer_coef)


class _Objective:
    """Mean negative log-likelihood (+ L2 penalty) of log-parameters, with its gradient.

    ``likelihood.value_and_gradient(*theta)`` gives the summed log-likelihood
    and its gradient in natural parameters.  Values that are not finite (a
    corner where a special function overflows) count as +inf so the line
    search backs off; they never raise.
    """

    def __init__(self, likelihood, penalizer_coef: float):
        self.likelihood, self.penalizer = likelihood, penalizer_coef
        self.total = likelihood.total

    def __call__(self, log_theta: np.ndarray) -> tuple[float, np.ndarray]:
        theta = np.exp(log_theta)
        with np.errstate(all="ignore"):
            ll, grad_ll = self.likelihood.value_and_gradient(*theta)
            value = -ll / self.total + self.penalizer * float(np.sum(theta * theta))
            grad = -grad_ll / self.total * theta + 2.0 * self.penalizer * theta * theta
        if not (math.isfinite(value) and np.all(np.isfinite(grad))):
            return math.inf, np.zeros_like(log_theta)
        return value, grad

    def gradient(self, log_theta: np.ndarray) -> np.ndarray:
        return self(log_theta)[1]


def _free_gradient_norm(grad: np.ndarray, log_theta: np.ndarray, bounds) -> float:
    """Max-norm of the projected gradient: a coordinate pressed against its bound is at rest."""
    lo, hi = bounds
    g = grad.copy()
    g[(log_theta <= lo + _AT_BOUND) & (g > 0)] = 0.0
    g[(log_theta >= hi - _AT_BOUND) & (g < 0)] = 0.0
    return float(np.max(np.abs(g))) if g.size else 0.0


def _maximise(objective: _Objective, start: np.ndarray):
    """L-BFGS-B with the analytic gradient; Nelder-Mead then L-BFGS-B again if that stalls.

    The convergence flag is judged on the result (projected gradient) rather
    than on the optimisers' own stopping messages (L-BFGS-B often stops on
    "abnormal line search" once it hits floating-point noise at the optimum).
    """
    bounds = (math.log(PARAMETER_BOUNDS[0]), math.log(PARAMETER_BOUNDS[1]))
    box = [bounds] * start.size
    start = np.clip(start, *bounds)
    runs, iterations = [], 0
    first = minimize(objective, start, jac=True, method="L-BFGS-B", bounds=box,
                     options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 2000})
    runs.append(("l-bfgs-b", first))
    iterations += int(first.nit)
    best = first
    norm = _free_gradient_norm(objective.gradient(best.x), best.x, bounds) if np.isfinite(best.fun) else math.inf
    if not norm < _GRADIENT_TOLERANCE:
        # A derivative-free search is robust from a poor point; then polish again.
        def value(log_theta):
            return objective(np.clip(log_theta, *bounds))[0]

        coarse = minimize(value, best.x if np.isfinite(best.fun) else start, method="Nelder-Mead",
                          options={"xatol": 1e-8, "fatol": 1e-12, "maxiter": 3000, "maxfev": 3000})
        polish = minimize(objective, np.clip(coarse.x, *bounds), jac=True, method="L-BFGS-B", bounds=box,
                          options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 2000})
        runs += [("nelder-mead", coarse), ("l-bfgs-b", polish)]
        iterations += int(coarse.nit + polish.nit)
        for candidate in (polish, coarse):
            x = np.clip(candidate.x, *bounds)
            if objective(x)[0] < objective(best.x)[0]:
                best = candidate
                best.x = x
        norm = _free_gradient_norm(objective.gradient(best.x), best.x, bounds) \
            if math.isfinite(objective(best.x)[0]) else math.inf
    converged = bool(norm < _GRADIENT_TOLERANCE)
    message = "; ".join(f"{name}: {run.message}" for name, run in runs) + f"; |gradient|_max={norm:.2e}"
    return np.clip(best.x, *bounds), converged, message, iterations


def _standard_errors(names: tuple[str, ...], objective: _Objective, log_theta: np.ndarray,
                     natural: np.ndarray, at_bound: np.ndarray) -> tuple[dict[str, float], list[str]]:
    """Delta-method standard errors of the natural parameters, from one Hessian in log space.

    Parameters at a bound are held fixed (their rows and columns dropped):
    the likelihood is not flat there, so the usual asymptotics do not apply
    and the error is NaN.
    """
    notes = []
    errors = np.full(len(names), np.nan)
    free = ~at_bound
    if at_bound.any():
        notes.append("no standard error at a bound: " + ", ".join(n for n, b in zip(names, at_bound) if b))
    if free.any():
        try:
            hess = _jacobian_of_gradient(objective.gradient, log_theta) * objective.total
            sub = hess[np.ix_(free, free)]
            cov = np.linalg.inv(sub)
            variances = np.diag(cov)
            with np.errstate(invalid="ignore"):
                ok = np.isfinite(variances) & (variances > 0) & np.all(np.isfinite(sub))
            errors[free] = np.where(ok, natural[free] * np.sqrt(np.where(ok, variances, 0.0)), np.nan)
            if not ok.all() or np.any(np.linalg.eigvalsh(sub) <= 0):
                notes.append("the Hessian is not positive definite at the optimum: standard errors unreliable")
        except (np.linalg.LinAlgError, ValueError):
            notes.append("the Hessian is singular at the optimum: no standard errors")
    for note in notes:
        warnings.warn(note, FitWarning, stacklevel=4)  # the caller of fit_*
    return {name: float(se) for name, se in zip(names, errors)}, notes


def _verdict(names: tuple[str, ...], scaled: np.ndarray, natural: np.ndarray, converged: bool,
             message: str, at_bound: np.ndarray, errors: Mapping[str, float]) -> Optional[str]:
    """Why these parameters must not be used, or None."""
    shown = ", ".join(f"{n}={v:.6g}" for n, v in zip(names, natural))
    if at_bound.any():
        which = ", ".join(n for n, b in zip(names, at_bound) if b)
        return (f"parameter at the optimiser's bound ({which}; {shown}): the data cannot pin it down "
                f"(too short a history or too few repeat buyers)")
    lo, hi = PLAUSIBLE_RANGE
    odd = [n for n, v in zip(names, scaled) if not lo <= v <= hi]
    if odd:
        return (f"near-degenerate fit ({', '.join(odd)} outside [{lo:g}, {hi:g}] in rescaled units; {shown}): "
                f"the data cannot tell customers apart on it (too short a history or too few repeat buyers)")
    if not converged:
        return f"the optimiser did not converge ({message})"
    flat = [n for n in names if not math.isfinite(errors[n])]
    if flat:
        return (f"not identified: the likelihood is not curved in {', '.join(flat)} at the optimum ({shown}), "
                f"so no standard error exists (too short a history or too few repeat buyers)")
    return None


def _fit(names, likelihood, start, penalizer_coef, to_natural, extra_verdict=None):
    objective = _Objective(likelihood, penalizer_coef)
    log_theta, converged, message, iterations = _maximise(objective, start)
    scaled = np.exp(log_theta)
    natural = to_natural(scaled)
    lo, hi = math.log(PARAMETER_BOUNDS[0]), math.log(PARAMETER_BOUNDS[1])
    at_bound = (log_theta <= lo + _AT_BOUND) | (log_theta >= hi - _AT_BOUND)
    errors, notes = _standard_errors(names, objective, log_theta, natural, at_bound)
    refusal = _verdict(names, scaled, natural, converged, message, at_bound, errors)
    if refusal is None and extra_verdict is not None:
        refusal = extra_verdict(natural)
    return natural, errors, notes, refusal, converged, message, iterations, at_bound


def fit_bgnbd(x, t_x, T, weights=None, initial: BgNbdParams | None = None,
              penalizer_coef: float = 0.0) -> FitResult[BgNbdParams]:
    """Fit the BG/NBD model by maximum likelihood; never raises on the data.

    ``weights`` are counts of identical ``(x, t_x, T)`` rows; identical rows
    are collapsed here anyway.  Time is rescaled internally so the largest
    ``T`` is 10 units (as lifetimes does): only ``alpha`` carries the time
    unit and the optimiser sees comparable magnitudes whether the data is in
    days or weeks.  ``penalizer_coef`` adds ``coef * sum(theta**2)`` (theta
    in those rescaled units) to the mean negative log-likelihood, like
    lifetimes' ``penalizer_coef``: it pulls a weakly identified fit away from
    the degenerate edges.  The reported ``alpha`` and log-likelihood are in
    the caller's unit (the log-likelihood without the penalty).
    """
    names = ("r", "alpha", "a", "b")
    try:
        x = np.asarray(x, dtype=float).ravel()
        t_x = np.asarray(t_x, dtype=float).ravel()
        T = np.asarray(T, dtype=float).ravel()
        if not x.size == t_x.size == T.size:
            return _refused("x, t_x and T differ in length", names, penalizer_coef=penalizer_coef)
        bgnbd.validate_rfm(x, t_x, T)
    except (ValueError, TypeError) as exc:
        return _refused(f"invalid rows: {exc}", names, penalizer_coef=penalizer_coef)
    w, problem = _weights(weights, x.size)
    if problem:
        return _refused(problem, names, penalizer_coef=penalizer_coef)
    if not (math.isfinite(penalizer_coef) and penalizer_coef >= 0):
        return _refused("penalizer_coef must be finite and >= 0", names)
    keep = w > 0
    (x, t_x, T), w = compress_rows(x[keep], t_x[keep], T[keep], weights=w[keep])
    total = float(w.sum())
    if total <= 0:
        return _refused("nothing to fit: no customer", names, penalizer_coef=penalizer_coef)
    if float(T.max()) <= 0:
        return _refused("nothing to fit: every history is a single day (T = 0)", names, total, penalizer_coef)
    if not np.any(x[w > 0] > 0):
        return _refused("nothing to fit: no repeat purchase, so purchase rate and dropout cannot be told apart",
                        names, total, penalizer_coef)
    scale = 10.0 / float(T.max())
    xs, txs, Ts = x, t_x * scale, T * scale

    start = np.zeros(4) if initial is None else np.log(
        [initial.r, initial.alpha * scale, initial.a, initial.b])
    natural, errors, notes, refusal, converged, message, iterations, at_bound = _fit(
        names, bgnbd.LogLikelihood(xs, txs, Ts, w), start, penalizer_coef,
        lambda th: np.array([th[0], th[1] / scale, th[2], th[3]]))
    params = BgNbdParams(*map(float, natural))
    with np.errstate(all="ignore"):
        ll = float(np.sum(w * bgnbd.log_likelihood_batch(params, x, t_x, T)))
    return FitResult(params=params, standard_errors=errors, log_likelihood=ll, n_customers=total,
                     converged=converged, message=message, iterations=iterations, refusal=refusal,
                     warnings=tuple(notes), n_rows=int(x.size), penalizer_coef=penalizer_coef,
                     at_bound=tuple(n for n, b in zip(names, at_bound) if b))


def _finite_mean_spend(natural: np.ndarray) -> Optional[str]:
    p, q, v = natural
    if q <= 1.0:
        return f"q={q:.6g} <= 1: the fitted spend distribution has no finite mean (p={p:.6g}, v={v:.6g})"
    return None


def fit_gamma_gamma(x, mean_spend, weights=None, initial: GammaGammaParams | None = None,
                    penalizer_coef: float = 0.0) -> FitResult[GammaGammaParams]:
    """Fit the Gamma-Gamma spend model by maximum likelihood; never raises on the data.

    Only rows with ``x >= 1`` and ``mean_spend > 0`` enter the likelihood
    (one-time buyers say nothing about the spread of a customer's spend);
    the others are dropped and not counted in ``n_customers``.  A fit with
    ``q <= 1`` (no finite population mean) is refused: it cannot value a
    purchase.  ``penalizer_coef`` as in :func:`fit_bgnbd` (spend rescaled to
    mean 1).
    """
    names = ("p", "q", "v")
    try:
        x = np.asarray(x, dtype=float).ravel()
        m = np.asarray(mean_spend, dtype=float).ravel()
        if x.size != m.size:
            return _refused("x and mean_spend differ in length", names, penalizer_coef=penalizer_coef)
    except (ValueError, TypeError) as exc:
        return _refused(f"invalid rows: {exc}", names, penalizer_coef=penalizer_coef)
    w, problem = _weights(weights, x.size)
    if problem:
        return _refused(problem, names, penalizer_coef=penalizer_coef)
    if not (math.isfinite(penalizer_coef) and penalizer_coef >= 0):
        return _refused("penalizer_coef must be finite and >= 0", names)
    keep = gamma_gamma.fittable_mask(x, m) & (w > 0) & np.isfinite(x)
    (x, m), w = compress_rows(x[keep], m[keep], weights=w[keep])
    total = float(w.sum())
    if total <= 0:
        return _refused("nothing to fit: no customer with x >= 1 and positive mean spend", names,
                        penalizer_coef=penalizer_coef)
    # Spend scale: only v carries the currency unit; normalise like time above.
    scale = 1.0 / float(np.average(m, weights=w))
    ms = m * scale

    start = np.zeros(3) if initial is None else np.log([initial.p, initial.q, initial.v * scale])
    natural, errors, notes, refusal, converged, message, iterations, at_bound = _fit(
        names, gamma_gamma.LogLikelihood(x, ms, w), start, penalizer_coef,
        lambda th: np.array([th[0], th[1], th[2] / scale]), extra_verdict=_finite_mean_spend)
    params = GammaGammaParams(*map(float, natural))
    with np.errstate(all="ignore"):
        ll = float(np.sum(w * gamma_gamma.log_likelihood_batch(params, x, m)))
    return FitResult(params=params, standard_errors=errors, log_likelihood=ll, n_customers=total,
                     converged=converged, message=message, iterations=iterations, refusal=refusal,
                     warnings=tuple(notes), n_rows=int(x.size), penalizer_coef=penalizer_coef,
                     at_bound=tuple(n for n, b in zip(names, at_bound) if b))
