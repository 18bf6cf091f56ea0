"""`clvstream fit --report DIR` on CDNOW: three PNG pictures and an index.html that links them."""

from __future__ import annotations

import re
import struct

import numpy as np
import pytest

from streams.models.diagnostics import holdout_check, tracking
from streams.models.fitting import fit_bgnbd
from streams.models.report import PICTURES, write_report
from streams.models.summary import as_arrays, holdout_purchases, purchase_occasions, summarize
from tests.models.test_holdout import CALIBRATION_END, HOLDOUT_END, HOLDOUT_WEEKS, load_transactions

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def cdnow_report(tmp_path_factory):
    transactions = load_transactions()
    calibration = summarize(transactions, CALIBRATION_END, time_unit="weeks")
    x, t_x, T, _ = as_arrays(calibration)
    fit = fit_bgnbd(x, t_x, T)
    counts = holdout_purchases(transactions, CALIBRATION_END, HOLDOUT_END)
    actual = np.array([counts[s.customer_id] for s in calibration], dtype=float)
    check = holdout_check(x, t_x, T, actual, HOLDOUT_WEEKS)
    occasions = purchase_occasions(transactions)
    births = [days[0][0] / 7 for days in occasions.values()]
    repeats = [day / 7 for days in occasions.values() for day, _ in days[1:]]
    start = min(day for days in occasions.values() for day, _ in days[:1])
    edges = (start + 7 * np.arange(79)) / 7  # the paper's 78 weeks
    tracked = tracking(fit.params, births, repeats, edges)
    directory = tmp_path_factory.mktemp("report")
    index = write_report(directory, bgnbd_fit=fit, x=x, t_x=t_x, T=T, time_unit="weeks", holdout=check,
                         tracking=tracked, summary="CDNOW 39 + 39 weeks")
    return index, check, tracked


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, path
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_report_writes_three_sane_pngs_linked_from_the_index(cdnow_report):
    index, _, _ = cdnow_report
    page = index.read_text()
    linked = re.findall(r'<img src="([^"]+)"', page)
    assert linked == [name for name, _, _ in PICTURES]
    for name in linked:
        picture = index.parent / name
        width, height = png_size(picture)
        assert 600 <= width <= 2000 and 400 <= height <= 2000, (name, width, height)
        assert 15_000 < picture.stat().st_size < 2_000_000, name  # drawn, not blank
    assert "CDNOW 39 + 39 weeks" in page


def test_report_data_match_the_published_holdout(cdnow_report):
    _, check, tracked = cdnow_report
    # the same forecast test_holdout pins (lifetimes cross-check: 1653.41 predicted)
    assert check.predicted_total == pytest.approx(1653.41, abs=0.05)
    assert sum(row[1] for row in check.by_frequency) == 2357
    # the paper's Figure 2: cumulative tracking within 5% over 78 weeks
    assert tracked.expected.sum() == pytest.approx(tracked.actual.sum(), rel=0.05)


def test_report_without_holdout_still_has_every_picture(tmp_path):
    fit = fit_bgnbd([0, 0], [0.0, 0.0], [0.0, 0.0])  # refused: nothing to fit
    index = write_report(tmp_path, bgnbd_fit=fit, x=[0, 0], t_x=[0, 0], T=[0, 0], time_unit="weeks",
                         holdout_note="too short a history")
    for name, _, _ in PICTURES:
        png_size(tmp_path / name)
    assert "index.html" == index.name


def test_tracking_leaves_a_gap_where_the_model_cannot_be_evaluated():
    # Extreme parameters (an early fit on little history): eq. (9)'s hypergeometric term is NaN
    # at long ages. Those periods are unknown (NaN), the others exact, and nothing overflows.
    import warnings

    from streams.models.bgnbd import BgNbdParams, expected_purchases_batch

    params = BgNbdParams(r=0.5, alpha=1.0, a=1e-4, b=1e4)
    edges = np.array([0.0, 1.0, 10.0, 1000.0])
    assert np.isnan(expected_purchases_batch(params, np.array([1000.0])))[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tracked = tracking(params, births=[0.0, 0.0], repeat_times=[0.5, 5.0], edges=edges)
    cumulative = 2 * expected_purchases_batch(params, edges[:3])
    assert tracked.expected[:2] == pytest.approx(np.diff(cumulative))
    assert np.isnan(tracked.expected[2])
    assert list(tracked.actual) == [1.0, 1.0, 0.0]
