"""Probabilistic customer-base models: BG/NBD, Gamma-Gamma and the CLV built on them.

Pure numpy/scipy (no Kafka or Faust import) so the same code is used by the
offline fitting job, the streaming scorers and the tests.  See the module
docstrings for the literature each formula comes from.
"""

from . import bgnbd, clv, diagnostics, fitting, gamma_gamma, requirements, summary
from .clv import clv_batch, potential_clv, predicted_clv
from .fitting import FitResult, fit_bgnbd, fit_gamma_gamma
from .params import BgNbdParams, GammaGammaParams, ModelParameters
from .requirements import DataRequirements
from .summary import CustomerSummary, holdout_purchases, summarize

__all__ = [
    "BgNbdParams",
    "CustomerSummary",
    "DataRequirements",
    "FitResult",
    "GammaGammaParams",
    "ModelParameters",
    "bgnbd",
    "clv",
    "clv_batch",
    "diagnostics",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "fitting",
    "gamma_gamma",
    "holdout_purchases",
    "potential_clv",
    "predicted_clv",
    "requirements",
    "summarize",
    "summary",
]
