"""BG/NBD model: closed forms per customer.

Reference: Fader, Hardie & Lee (2005), "'Counting Your Customers' the Easy
Way: An Alternative to the Pareto/NBD Model", Marketing Science 24(2), and
Fader, Hardie & Lee, "Computing P(alive) Using the BG/NBD Model"
(brucehardie.com note 021).  Equation numbers below refer to the 2005 paper.

A customer is summarised by ``(x, t_x, T)``: ``x`` repeat purchases, the last
one at ``t_x`` and the calibration window ending at ``T``, both measured from
the customer's first purchase, in the time unit the parameters were fitted in.

Two paths are provided for every quantity:

* scalar functions (``p_alive``, ``conditional_expected_purchases``, ...) use
  ``math`` and scalar ``scipy.special`` calls (plus one short ufunc call per
  curve in ``expected_purchases_if_alive_curve``), so scoring one customer on
  an event costs microseconds; they do not validate their inputs;
* ``*_batch`` functions take array-likes and are used for fitting and for
  scoring whole tables.

Numerics.  The conditional expectation (eq. 10) contains
``((alpha+T)/(alpha+T+t))^(r+x) * 2F1(r+x, b+x; a+b+x-1; z)`` with
``z = t/(alpha+T+t)``.  For large ``x`` the 2F1 factor overflows while the
power underflows (lifetimes falls back to an alternative form only once the
log is already infinite).  Euler's transformation
``2F1(A,B;C;z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z)`` turns the product into

    (1-z)^(a-1) * 2F1(a+b-1-r, a-1; a+b+x-1; z)

whose numerator parameters do not grow with ``x`` (the series converges
faster the larger ``x``), so it is finite and accurate for any ``x`` and
horizon; the result is then formed as ``-expm1(log(...))`` to avoid the
cancellation in ``1 - (...)`` for short horizons.  (Fader & Hardie's note
027, "Overcoming the BG/NBD Model's #NUM! Error Problem", discusses the
same overflow.)
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy.special import betaln, expit, gammaln, hyp2f1

from .params import BgNbdParams

# Below this distance from a == 1 the factor (a+b+x-1)/(a-1) of eq. (10) is
# a 0/0 form; the value is continuous in ``a``, so it is evaluated as the
# average of the two sides at a = 1 +- _A_NUDGE (error O(_A_NUDGE**2)).
_A_SINGULAR = 1e-7
_A_NUDGE = 1e-5


# --------------------------------------------------------------------------
# Scalar path
# --------------------------------------------------------------------------


def log_likelihood(params: BgNbdParams, x: float, t_x: float, T: float) -> float:
    """Log-likelihood of one customer's ``(x, t_x, T)`` under the BG/NBD.

    The paper's likelihood ``A1 A2 (A3 + [x>0] A4)`` in the logged form of
    Hardie's implementation note 004, ``log A1 + log A2 + log(A3 + [x>0] A4)``,
    with a log-sum-exp so that long histories do not underflow.
    """
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    a1 = math.lgamma(r + x) - math.lgamma(r) + r * math.log(alpha)
    a2 = math.lgamma(a + b) + math.lgamma(b + x) - math.lgamma(b) - math.lgamma(a + b + x)
    a3 = -(r + x) * math.log(alpha + T)
    if x <= 0:
        return a1 + a2 + a3
    a4 = math.log(a) - math.log(b + x - 1.0) - (r + x) * math.log(alpha + t_x)
    hi, lo = (a3, a4) if a3 >= a4 else (a4, a3)
    return a1 + a2 + hi + math.log1p(math.exp(lo - hi))


def _log_odds_dead(params: BgNbdParams, x: float, t_x: float, T: float) -> float:
    """log[(1 - P(alive)) / P(alive)] for x > 0 (note 021)."""
    r, alpha = params.r, params.alpha
    return (
        math.log(params.a / (params.b + x - 1.0))
        + (r + x) * math.log1p((T - t_x) / (alpha + t_x))
    )


def p_alive(params: BgNbdParams, x: float, t_x: float, T: float) -> float:
    """P(customer still alive at T | x, t_x, T) (note 021).

    ``1 / (1 + [x>0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))``.  In the
    BG/NBD a customer can only drop out right after a repeat purchase, so a
    customer with no repeat purchase is alive with probability 1.
    """
    if x <= 0:
        return 1.0
    log_odds = _log_odds_dead(params, x, t_x, T)
    if log_odds > 0.0:  # logistic(-log_odds) without overflow
        e = math.exp(-log_odds)
        return e / (1.0 + e)
    return 1.0 / (1.0 + math.exp(log_odds))


def _alive_expectation(r: float, alpha: float, a: float, b: float,
                       t: float, x: float, T: float) -> float:
    """E[Y(t) | alive at T, x, T]: the numerator of eq. (10).

    ``(a+b+x-1)/(a-1) * [1 - (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z)]``
    (Euler-transformed, see module docstring).
    """
    if t <= 0.0:
        return 0.0
    c = a + b + x - 1.0
    am1 = a - 1.0
    # log(1 - z) with z = t / (alpha + T + t), computed without forming 1 - z.
    log1mz = -math.log1p(t / (alpha + T))
    z = t / (alpha + T + t)
    f = float(hyp2f1(a + b - 1.0 - r, am1, c, z))
    log_kept = am1 * log1mz
    if not math.isfinite(f):
        return _alive_expectation_by_quadrature(r, alpha, a, b, t, x, T)
    if f > 0.0:
        bracket = -math.expm1(log_kept + math.log(f))
    else:  # only reachable in exotic corners (a + b < 1 with x = 0)
        bracket = 1.0 - math.exp(log_kept) * f
    value = c / am1 * bracket
    return value if math.isfinite(value) else _alive_expectation_by_quadrature(r, alpha, a, b, t, x, T)


def _alive_expectation_by_quadrature(r: float, alpha: float, a: float, b: float,
                                     t: float, x: float, T: float) -> float:
    """The same expectation as a 1-D integral over the dropout probability.

    Given alive at T, lambda ~ Gamma(r+x, alpha+T) and p ~ Beta(a, b+x); an
    alive customer buys (1 - exp(-lambda p t)) / p times in expectation, and the
    lambda-expectation of that is closed form, leaving

        E_p[(1 - (1 + p t / (alpha+T))^-(r+x)) / p].

    Used when 2F1 overflows: very large a and b (a population whose dropout
    probability barely varies, which a fit on a short history can produce).
    """
    return _alive_curve_by_quadrature(r, alpha, a, b, [t], x, T)[0]


_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(96)


def _alive_curve_by_quadrature(r: float, alpha: float, a: float, b: float,
                               times: Sequence[float], x: float, T: float) -> list[float]:
    """:func:`_alive_expectation_by_quadrature` at several horizons, sharing the nodes.

    Only reached for large a and b, where Beta(a, b+x) is smooth and
    concentrated: fixed Gauss-Legendre nodes over mean +- 12 sd integrate it
    to ~1e-10 in tens of microseconds (adaptive quad per horizon
    took 170 ms per customer and stalled a worker).
    """
    b2 = b + x
    mean = a / (a + b2)
    sd = math.sqrt(a * b2 / ((a + b2) ** 2 * (a + b2 + 1.0)))
    # Large a, b: Beta is close to normal; +-12 sd holds all but ~1e-30 of its mass.
    lo, hi = max(mean - 12.0 * sd, 1e-300), min(mean + 12.0 * sd, 1.0 - 1e-16)
    p = 0.5 * (hi - lo) * _GL_NODES + 0.5 * (hi + lo)
    log_pdf = (a - 1.0) * np.log(p) + (b2 - 1.0) * np.log1p(-p) - betaln(a, b2)
    w = 0.5 * (hi - lo) * _GL_WEIGHTS * np.exp(log_pdf)
    w = w / w.sum()  # the truncated mass, renormalised
    out = []
    for t in times:
        if t <= 0.0:
            out.append(0.0)
            continue
        u = p * (t / (alpha + T))
        out.append(float(np.dot(w, -np.expm1(-(r + x) * np.log1p(u)) / p)))
    return out


def expected_purchases_if_alive(params: BgNbdParams, t: float, x: float, T: float) -> float:
    """E[Y(t) | customer alive at T, x, T]: repeat purchases in (T, T+t].

    This is the conditional expectation of eq. (10) without the P(alive)
    denominator, i.e. ``E[Y(t) | x, t_x, T] / P(alive)``; it does not depend
    on ``t_x``.  The posterior of (lambda, p) given "alive at T" is
    Gamma(r+x, alpha+T) x Beta(a, b+x), and an alive customer buys
    ``(1 - exp(-lambda p t)) / p`` times in expectation.
    """
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    if abs(a - 1.0) < _A_SINGULAR:
        return 0.5 * (
            _alive_expectation(r, alpha, 1.0 - _A_NUDGE, b, t, x, T)
            + _alive_expectation(r, alpha, 1.0 + _A_NUDGE, b, t, x, T)
        )
    return _alive_expectation(r, alpha, a, b, t, x, T)


def expected_purchases_if_alive_curve(params: BgNbdParams, times: Sequence[float],
                                      x: float, T: float) -> list[float]:
    """:func:`expected_purchases_if_alive` at several horizons for ONE customer.

    Scoring a CLV needs the curve at every step of the horizon.  A scalar
    ``scipy.special`` call costs ~2 us of ufunc dispatch, far more than the
    arithmetic, so the hypergeometric terms are evaluated in a single ufunc
    call over the horizons and the rest stays in ``math`` (measured ~3x
    faster than one scalar call per step, and faster than full numpy
    arithmetic on such short arrays).
    """
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    if abs(a - 1.0) < _A_SINGULAR:
        return [expected_purchases_if_alive(params, t, x, T) for t in times]
    base = alpha + T
    ratios = [t / base for t in times]  # t / (alpha + T); z = ratio / (1 + ratio)
    am1 = a - 1.0
    c = a + b + x - 1.0
    fs = hyp2f1(a + b - 1.0 - r, am1, c, [u / (1.0 + u) for u in ratios]).tolist()
    scale = c / am1
    curve = []
    for t, u, f in zip(times, ratios, fs):
        if t <= 0.0:
            curve.append(0.0)
            continue
        value = (-scale * math.expm1(math.log(f) - am1 * math.log1p(u))
                 if 0.0 < f < math.inf else math.nan)
        curve.append(value)
    if not all(map(math.isfinite, curve)):
        # 2F1 overflowed (huge a, b) or was not positive: integrate the whole curve at once
        bad = [i for i, v in enumerate(curve) if not math.isfinite(v)]
        fixed = _alive_curve_by_quadrature(r, alpha, a, b, [times[i] for i in bad], x, T)
        for i, v in zip(bad, fixed):
            curve[i] = v
    return curve


def conditional_expected_purchases(params: BgNbdParams, t: float,
                                   x: float, t_x: float, T: float) -> float:
    """E[Y(t) | x, t_x, T]: expected repeat purchases in (T, T+t], eq. (10)."""
    return p_alive(params, x, t_x, T) * expected_purchases_if_alive(params, t, x, T)


def expected_purchases(params: BgNbdParams, t: float) -> float:
    """E[X(t)]: expected repeat purchases of a new customer in (0, t], eq. (9).

    Eq. (9) is eq. (10) at x = t_x = T = 0 (a new customer is alive).
    """
    return expected_purchases_if_alive(params, t, 0.0, 0.0)


def median_wait_if_alive(params: BgNbdParams, x: float, T: float) -> float:
    """Median time from ``T`` to the next purchase of a customer still alive at ``T``.

    Given alive, the purchase rate's posterior is Gamma(r+x, alpha+T) and the wait
    for the next purchase is exponential at that rate (an alive customer can only
    drop out right after a purchase), so the wait W has the Lomax survival
    ``P(W > w) = ((alpha+T) / (alpha+T+w))^(r+x)`` and the median
    ``(alpha+T) * (2^(1/(r+x)) - 1)``.  The mean, ``(alpha+T) / (r+x-1)``, is
    infinite for ``r + x <= 1`` (most one-time buyers): the median is always finite.
    Same time unit as ``alpha``; does not depend on ``t_x``.
    """
    return (params.alpha + T) * math.expm1(math.log(2.0) / (params.r + x))


def p_alive_threshold_time(params: BgNbdParams, x: float, t_x: float,
                           threshold: float) -> float:
    """Customer age T* at which P(alive) falls to ``threshold`` if no purchase comes.

    Solving note 021's P(alive) = threshold for T in closed form:

        T* = t_x + (alpha + t_x) * expm1(K / (r + x)),
        K  = log((1 - threshold) / threshold) + log((b + x - 1) / a).

    P(alive) decreases in T, so the customer is "probably lost" for every
    age beyond T*.  Returns ``t_x`` when P(alive) is already at or below the
    threshold right after the last purchase, and ``math.inf`` when it never
    gets there: for ``x == 0`` (P(alive) = 1 in the BG/NBD) or when T* is
    beyond the float range (microscopic thresholds).  Ages are measured from
    the first purchase; add the first purchase time for an absolute time.
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")
    if x <= 0:
        return math.inf
    k = math.log((1.0 - threshold) / threshold) + math.log((params.b + x - 1.0) / params.a)
    if k <= 0.0:
        return float(t_x)
    try:
        return t_x + (params.alpha + t_x) * math.expm1(k / (params.r + x))
    except OverflowError:
        return math.inf


# --------------------------------------------------------------------------
# Vectorized path
# --------------------------------------------------------------------------


def _as_arrays(*values):
    return [np.asarray(v, dtype=float) for v in values]


def validate_rfm(x, t_x, T) -> None:
    """Raise ValueError unless 0 <= t_x <= T, x >= 0, and x == 0 implies t_x == 0."""
    x, t_x, T = _as_arrays(x, t_x, T)
    if np.any(~np.isfinite(x) | ~np.isfinite(t_x) | ~np.isfinite(T)):
        raise ValueError("x, t_x and T must be finite")
    if np.any(x < 0) or np.any(t_x < 0) or np.any(t_x > T):
        raise ValueError("need x >= 0 and 0 <= t_x <= T")
    if np.any((x == 0) & (t_x != 0)):
        raise ValueError("customers with x == 0 must have t_x == 0")


def log_likelihood_batch(params: BgNbdParams, x, t_x, T) -> np.ndarray:
    """Vectorized :func:`log_likelihood` (betaln for the Beta-function ratio)."""
    x, t_x, T = _as_arrays(x, t_x, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = betaln(a, b + x) - betaln(a, b)
    a3 = -(r + x) * np.log(alpha + T)
    a4 = np.log(a) - np.log(b + np.maximum(x, 1.0) - 1.0) - (r + x) * np.log(alpha + t_x)
    a4 = np.where(x > 0, a4, -np.inf)
    return a1 + a2 + np.logaddexp(a3, a4)


def p_alive_batch(params: BgNbdParams, x, t_x, T) -> np.ndarray:
    """Vectorized :func:`p_alive`."""
    x, t_x, T = _as_arrays(x, t_x, T)
    log_odds = (
        np.log(params.a / (params.b + np.maximum(x, 1.0) - 1.0))
        + (params.r + x) * np.log1p((T - t_x) / (params.alpha + t_x))
    )
    return np.where(x > 0, expit(-log_odds), 1.0)


def _alive_expectation_batch(r, alpha, a, b, t, x, T) -> np.ndarray:
    c = a + b + x - 1.0
    am1 = a - 1.0
    log1mz = -np.log1p(t / (alpha + T))
    z = t / (alpha + T + t)
    f = hyp2f1(a + b - 1.0 - r, am1, c, z)
    log_kept = am1 * log1mz
    with np.errstate(divide="ignore", invalid="ignore"):
        via_log = -np.expm1(log_kept + np.log(f))
    bracket = np.where(f > 0.0, via_log, 1.0 - np.exp(log_kept) * f)
    return np.where(t > 0.0, c / am1 * bracket, 0.0)


def expected_purchases_if_alive_batch(params: BgNbdParams, t, x, T) -> np.ndarray:
    """Vectorized :func:`expected_purchases_if_alive` (broadcasts t, x, T)."""
    t, x, T = np.broadcast_arrays(*_as_arrays(t, x, T))
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    if abs(a - 1.0) < _A_SINGULAR:
        return 0.5 * (
            _alive_expectation_batch(r, alpha, 1.0 - _A_NUDGE, b, t, x, T)
            + _alive_expectation_batch(r, alpha, 1.0 + _A_NUDGE, b, t, x, T)
        )
    return _alive_expectation_batch(r, alpha, a, b, t, x, T)


def conditional_expected_purchases_batch(params: BgNbdParams, t, x, t_x, T) -> np.ndarray:
    """Vectorized :func:`conditional_expected_purchases`, eq. (10)."""
    return p_alive_batch(params, x, t_x, T) * expected_purchases_if_alive_batch(params, t, x, T)


def expected_purchases_batch(params: BgNbdParams, t) -> np.ndarray:
    """Vectorized :func:`expected_purchases`, eq. (9)."""
    t = np.asarray(t, dtype=float)
    return expected_purchases_if_alive_batch(params, t, np.zeros_like(t), np.zeros_like(t))


def p_alive_threshold_time_batch(params: BgNbdParams, x, t_x, threshold: float) -> np.ndarray:
    """Vectorized :func:`p_alive_threshold_time`."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")
    x, t_x = _as_arrays(x, t_x)
    k = np.log((1.0 - threshold) / threshold) + np.log(
        (params.b + np.maximum(x, 1.0) - 1.0) / params.a
    )
    with np.errstate(over="ignore"):
        crossing = t_x + (params.alpha + t_x) * np.expm1(np.maximum(k, 0.0) / (params.r + x))
    return np.where(x > 0, crossing, np.inf)
