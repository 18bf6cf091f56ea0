"""Fitted model parameters, as published to the scoring workers.

The parameters are fitted offline (or in a periodic batch job) and broadcast
on a Kafka topic; every scoring worker must read them back bit-for-bit and
know the time unit they were fitted in, because the BG/NBD scale parameter
``alpha`` is measured in that unit (a model fitted in weeks scores nonsense
if fed recency in days).  Hence the bundle carries ``time_unit`` and a
``version``, and ``to_dict``/``from_dict`` round-trip through plain JSON
types.  Nothing here reads the wall clock: ``fitted_at`` is whatever the
caller says it is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

TimeUnit = Literal["days", "weeks"]
TIME_UNITS: tuple[str, ...] = ("days", "weeks")
DAYS_PER_UNIT: Mapping[str, float] = {"days": 1.0, "weeks": 7.0}

SCHEMA = "clv-model-parameters/1"


def _check_positive(owner: str, **values: float) -> None:
    for name, value in values.items():
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"{owner}.{name} must be a finite positive number, got {value!r}")


@dataclass(frozen=True, slots=True)
class BgNbdParams:
    """Population parameters of the BG/NBD model (Fader, Hardie & Lee 2005).

    Purchase rate lambda ~ Gamma(shape ``r``, rate ``alpha``); dropout
    probability after each repeat purchase p ~ Beta(``a``, ``b``).
    ``alpha`` has the dimension of time (in ``ModelParameters.time_unit``).
    """

    r: float
    alpha: float
    a: float
    b: float

    def __post_init__(self) -> None:
        _check_positive("BgNbdParams", r=self.r, alpha=self.alpha, a=self.a, b=self.b)

    def rescaled_time(self, factor: float) -> "BgNbdParams":
        """Same model with time measured in units ``factor`` times smaller.

        If ``t_new = factor * t_old`` then ``alpha_new = factor * alpha_old``;
        ``r``, ``a`` and ``b`` are dimensionless.  Weeks -> days is ``factor=7``.
        """
        return BgNbdParams(self.r, self.alpha * factor, self.a, self.b)

    def to_dict(self) -> dict[str, float]:
        return {"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "BgNbdParams":
        return cls(float(data["r"]), float(data["alpha"]), float(data["a"]), float(data["b"]))


@dataclass(frozen=True, slots=True)
class GammaGammaParams:
    """Population parameters of the Gamma-Gamma spend model (Fader & Hardie 2013).

    Transaction value z ~ Gamma(shape ``p``, rate nu) with nu ~ Gamma(shape
    ``q``, rate ``v``) across customers.  The population mean spend
    ``p * v / (q - 1)`` only exists for ``q > 1``.
    """

    p: float
    q: float
    v: float

    def __post_init__(self) -> None:
        _check_positive("GammaGammaParams", p=self.p, q=self.q, v=self.v)

    @property
    def population_mean_spend(self) -> float:
        """E[M] = p v / (q - 1); infinite when q <= 1 (no finite mean)."""
        if self.q <= 1.0:
            return math.inf
        return self.p * self.v / (self.q - 1.0)

    def to_dict(self) -> dict[str, float]:
        return {"p": self.p, "q": self.q, "v": self.v}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "GammaGammaParams":
        return cls(float(data["p"]), float(data["q"]), float(data["v"]))


@dataclass(frozen=True, slots=True)
class ModelParameters:
    """Everything a scoring worker needs, with its provenance.

    ``fitted_at`` is an opaque caller-supplied stamp (typically ISO-8601 or
    the event time of the last transaction used); ``calibration_end`` is the
    end of the calibration window in ``time_unit`` on the caller's time axis.
    """

    version: str
    time_unit: TimeUnit
    bgnbd: BgNbdParams
    gamma_gamma: GammaGammaParams | None = None
    fitted_at: str | None = None
    calibration_end: float | None = None
    n_customers: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if not self.version:
            raise ValueError("ModelParameters.version must be a non-empty string")
        if self.time_unit not in TIME_UNITS:
            raise ValueError(f"time_unit must be one of {TIME_UNITS}, got {self.time_unit!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (only str, float, int, None, dict)."""
        return {
            "schema": SCHEMA,
            "version": self.version,
            "time_unit": self.time_unit,
            "bgnbd": self.bgnbd.to_dict(),
            "gamma_gamma": None if self.gamma_gamma is None else self.gamma_gamma.to_dict(),
            "fitted_at": self.fitted_at,
            "calibration_end": self.calibration_end,
            "n_customers": self.n_customers,
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ModelParameters":
        schema = data.get("schema", SCHEMA)
        if schema != SCHEMA:
            raise ValueError(f"unsupported model parameter schema {schema!r}")
        gg = data.get("gamma_gamma")
        cal_end = data.get("calibration_end")
        n_customers = data.get("n_customers")
        return cls(
            version=str(data["version"]),
            time_unit=data["time_unit"],
            bgnbd=BgNbdParams.from_dict(data["bgnbd"]),
            gamma_gamma=None if gg is None else GammaGammaParams.from_dict(gg),
            fitted_at=data.get("fitted_at"),
            calibration_end=None if cal_end is None else float(cal_end),
            n_customers=None if n_customers is None else int(n_customers),
            extra=dict(data.get("extra") or {}),
        )
