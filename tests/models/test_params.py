"""Model parameter bundle: validation and JSON round trip."""

from __future__ import annotations

import json

import pytest

from streams.models.params import BgNbdParams, GammaGammaParams, ModelParameters


def bundle(**overrides):
    values = dict(
        version="cdnow-2025-01",
        time_unit="weeks",
        bgnbd=BgNbdParams(0.243, 4.414, 0.793, 2.426),
        gamma_gamma=GammaGammaParams(6.25, 3.74, 15.44),
        fitted_at="1997-09-30T23:59:59Z",
        calibration_end=38.86,
        n_customers=2357,
        extra={"log_likelihood": -9582.43},
    )
    values.update(overrides)
    return ModelParameters(**values)


def test_json_round_trip_is_exact():
    original = bundle()
    text = json.dumps(original.to_dict())
    assert ModelParameters.from_dict(json.loads(text)) == original


def test_optional_parts_round_trip():
    original = bundle(gamma_gamma=None, fitted_at=None, calibration_end=None, n_customers=None, extra={})
    assert ModelParameters.from_dict(json.loads(json.dumps(original.to_dict()))) == original


def test_validation():
    with pytest.raises(ValueError):
        bundle(time_unit="months")
    with pytest.raises(ValueError):
        bundle(version="")
    with pytest.raises(ValueError):
        BgNbdParams(0.2, -1.0, 0.8, 2.4)
    with pytest.raises(ValueError):
        GammaGammaParams(6.0, float("nan"), 15.0)
    with pytest.raises(ValueError):
        ModelParameters.from_dict({**bundle().to_dict(), "schema": "something-else/9"})


def test_rescaled_time_converts_weeks_to_days():
    weeks = BgNbdParams(0.243, 4.414, 0.793, 2.426)
    days = weeks.rescaled_time(7)
    assert (days.r, days.a, days.b) == (weeks.r, weeks.a, weeks.b)
    assert days.alpha == pytest.approx(30.898)


def test_params_are_frozen():
    params = BgNbdParams(0.243, 4.414, 0.793, 2.426)
    with pytest.raises(AttributeError):
        params.r = 1.0  # type: ignore[misc]
