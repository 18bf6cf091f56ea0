"""Gamma-Gamma model of average transaction value.

Reference: Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary Value"
(brucehardie.com note 025), building on Fader, Hardie & Lee (2005b), "RFM
and CLV: Using Iso-Value Curves for Customer Base Analysis", JMR 42(4).

Each transaction value of a customer is Gamma(p, nu); nu varies across
customers as Gamma(q, v).  The mean ``m`` of a customer's ``x`` (repeat)
transaction values is then sufficient, and

* the likelihood of ``m`` is
  ``Gamma(px+q) / (Gamma(px) Gamma(q)) * v^q x^(px) m^(px-1) / (v + x m)^(px+q)``;
* the conditional expectation of the customer's mean spend is the
  credibility-weighted average of the population mean ``p v / (q - 1)`` and
  the observed mean, with weight ``p x / (p x + q - 1)`` on the observation.

Only customers with ``x >= 1`` repeat purchases and a positive mean spend
carry information and are fitted.  A customer with ``x == 0`` gets the
population mean ``E[M] = p v / (q - 1)`` - which is exactly what the
conditional expectation formula yields at ``x = 0`` (the observed mean gets
zero weight), so no special case is needed when scoring.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import digamma, gammaln

from .params import GammaGammaParams


def conditional_expected_spend(params: GammaGammaParams, x: float, mean_spend: float) -> float:
    """E[M | x, mean_spend]: expected value of the customer's future transactions.

    ``(q-1)/(px+q-1) * p v/(q-1) + px/(px+q-1) * mean_spend``, simplified to
    ``p (v + x * mean_spend) / (p x + q - 1)``.  For ``x == 0`` this is the
    population mean ``p v / (q - 1)`` whatever ``mean_spend`` is.  Requires
    ``q > 1`` (otherwise the model has no finite mean).
    """
    p, q = params.p, params.q
    if q <= 1.0:
        raise ValueError("Gamma-Gamma expected spend needs q > 1 (finite population mean)")
    if x <= 0:
        return p * params.v / (q - 1.0)
    return p * (params.v + x * mean_spend) / (p * x + q - 1.0)


def log_likelihood(params: GammaGammaParams, x: float, mean_spend: float) -> float:
    """Log-density of the observed mean spend of ``x >= 1`` transactions."""
    p, q, v = params.p, params.q, params.v
    px = p * x
    return (
        math.lgamma(px + q) - math.lgamma(px) - math.lgamma(q)
        + q * math.log(v) + px * math.log(x)
        + (px - 1.0) * math.log(mean_spend)
        - (px + q) * math.log(v + x * mean_spend)
    )


def fittable_mask(x, mean_spend) -> np.ndarray:
    """Customers that carry information for the fit: x >= 1 and mean spend > 0."""
    x = np.asarray(x, dtype=float)
    m = np.asarray(mean_spend, dtype=float)
    return (x >= 1) & (m > 0) & np.isfinite(m)


def log_likelihood_batch(params: GammaGammaParams, x, mean_spend) -> np.ndarray:
    """Vectorized :func:`log_likelihood`; rows must satisfy :func:`fittable_mask`."""
    x = np.asarray(x, dtype=float)
    m = np.asarray(mean_spend, dtype=float)
    p, q, v = params.p, params.q, params.v
    px = p * x
    return (
        gammaln(px + q) - gammaln(px) - gammaln(q)
        + q * np.log(v) + px * np.log(x)
        + (px - 1.0) * np.log(m)
        - (px + q) * np.log(v + x * m)
    )


def log_likelihood_gradient_batch(p: float, q: float, v: float, x: np.ndarray, mean_spend: np.ndarray):
    """Per-row log-likelihood and its partial derivatives in (p, q, v).

    Returns ``(ll, d_p, d_q, d_v)``; rows must satisfy :func:`fittable_mask`.

    * d/dp = x (psi(px+q) - psi(px) + log x + log m - log(v + x m))
    * d/dq = psi(px+q) - psi(q) + log v - log(v + x m)
    * d/dv = q/v - (px+q)/(v + x m)
    """
    px = p * x
    log_m = np.log(mean_spend)
    v_xm = v + x * mean_spend
    log_v_xm = np.log(v_xm)
    log_x = np.log(x)
    psi_pxq = digamma(px + q)
    ll = (gammaln(px + q) - gammaln(px) - math.lgamma(q) + q * math.log(v) + px * log_x
          + (px - 1.0) * log_m - (px + q) * log_v_xm)
    d_p = x * (psi_pxq - digamma(px) + log_x + log_m - log_v_xm)
    d_q = psi_pxq - float(digamma(q)) + math.log(v) - log_v_xm
    d_v = q / v - (px + q) / v_xm
    return ll, d_p, d_q, d_v


def conditional_expected_spend_batch(params: GammaGammaParams, x, mean_spend) -> np.ndarray:
    """Vectorized :func:`conditional_expected_spend` (x == 0 -> population mean)."""
    if params.q <= 1.0:
        raise ValueError("Gamma-Gamma expected spend needs q > 1 (finite population mean)")
    x = np.asarray(x, dtype=float)
    m = np.where(x > 0, np.asarray(mean_spend, dtype=float), 0.0)
    p = params.p
    return p * (params.v + x * m) / (p * x + params.q - 1.0)
