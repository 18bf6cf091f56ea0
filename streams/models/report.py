"""The fit's diagnostics as pictures: three PNGs (matplotlib, Agg backend) and an index.html.

* ``calibration_vs_holdout.png``: customers grouped by their calibration-period
  repeat purchases; mean actual vs mean predicted purchases in the holdout
  (the BG/NBD paper's Figure 4);
* ``p_alive_matrix.png``: P(alive) over frequency x recency for a customer of
  the longest age seen (lifetimes' ``plot_probability_alive_matrix``);
* ``tracking.png``: expected vs actual repeat purchases per period, and the
  cumulative curves (the paper's Figures 2 and 3).

A picture that has no data (no holdout check, a refused fit) is still drawn
with the reason written on it, so the page always has its three images.
Nothing here reads the wall clock: the page shows what the caller passes.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Optional

import numpy as np

from .diagnostics import HoldoutCheck, Tracking, p_alive_matrix
from .fitting import FitResult

PICTURES = (
    ("calibration_vs_holdout.png", "Calibration vs holdout purchases",
     "Customers grouped by their repeat purchases in the calibration period: what they bought in the holdout "
     "period on average, and what the model fitted on the calibration period predicted."),
    ("p_alive_matrix.png", "P(alive) by frequency and recency",
     "Probability that a customer of the longest age seen is still active, by repeat purchases (frequency) "
     "and the age at the last one (recency)."),
    ("tracking.png", "Expected vs actual repeat purchases per period",
     "Repeat purchases per week across all customers: actual, and expected by the model from each "
     "customer's first purchase on."),
)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)  # files only: no display, whatever the environment says
    import matplotlib.pyplot as plt

    return plt


def _note(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=11, transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _calibration_vs_holdout(plt, holdout: Optional[HoldoutCheck], unit: str, why_not: str):
    fig, ax = plt.subplots(figsize=(8, 5), dpi=100)
    if holdout is None or not holdout.by_frequency:
        reason = why_not or (holdout.calibration_fit.refusal if holdout else "no holdout check")
        _note(ax, "No holdout check:\n" + _wrap(reason))
    else:
        rows = np.array(holdout.by_frequency, dtype=float)
        labels = [(f"{int(k)}+" if k == rows[-1, 0] and k >= 7 else str(int(k))) + f"\n{int(n)}"
                  for k, n in rows[:, :2]]
        positions = np.arange(len(rows))
        ax.plot(positions, rows[:, 2], "o-", color="#1f4e79", label="actual")
        ax.plot(positions, rows[:, 3], "s--", color="#c55a11", label="model (fitted on calibration)")
        ax.set_xticks(positions, labels)
        ax.set_xlabel("repeat purchases in the calibration period (and customers in each group)")
        ax.set_ylabel(f"mean purchases in the {holdout.length:g}-{unit.rstrip('s')} holdout")
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper left")
        ax.set_title(f"Holdout: predicted {holdout.predicted_total:.0f}, actual {holdout.actual_total:.0f} "
                     f"({holdout.relative_error:+.1%}), {holdout.customers} customers")
        ax.grid(alpha=0.3)
        fig.tight_layout()
    return fig


def _p_alive(plt, fit: FitResult, x, T, unit: str):
    fig, ax = plt.subplots(figsize=(8, 6), dpi=100)
    if fit.params is None:
        _note(ax, "No P(alive) matrix: nothing was fitted.\n" + _wrap(fit.refusal or ""))
        return fig
    max_age = float(np.max(T)) if len(T) else 1.0
    max_x = int(np.percentile(x, 99)) if len(x) else 1
    freq, rec, matrix = p_alive_matrix(fit.params, max_age, max(max_x, 5))
    image = ax.imshow(matrix, origin="lower", aspect="auto", cmap="RdYlGn", vmin=0.0, vmax=1.0,
                      extent=(rec[0], rec[-1], freq[0] - 0.5, freq[-1] + 0.5), interpolation="nearest")
    fig.colorbar(image, ax=ax, label="P(alive)")
    ax.set_xlabel(f"recency: age at the last purchase ({unit})")
    ax.set_ylabel("frequency: repeat purchases")
    title = f"P(alive) at age {max_age:.0f} {unit}"
    if fit.refusal:
        title += " (fit refused: for inspection only)"
    ax.set_title(title)
    return fig


def _tracking(plt, tracked: Optional[Tracking], unit: str, why_not: str):
    fig, (ax, cum) = plt.subplots(2, 1, figsize=(9, 7), dpi=100, sharex=True)
    if tracked is None or len(tracked.actual) == 0:
        _note(ax, "No tracking: " + _wrap(why_not or "too short a history"))
        cum.set_visible(False)
        return fig
    starts = tracked.edges[:-1] - tracked.edges[0]  # periods from the first one (the axis may be any epoch)
    ax.plot(starts, tracked.actual, color="#1f4e79", label="actual")
    ax.plot(starts, tracked.expected, "--", color="#c55a11", label="expected (model)")
    ax.set_ylabel("repeat purchases per period")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    ax.set_title("Repeat purchases per period")
    cum.plot(starts, np.cumsum(tracked.actual), color="#1f4e79", label="actual")
    cum.plot(starts, np.cumsum(tracked.expected), "--", color="#c55a11", label="expected (model)")
    cum.set_ylabel("cumulative repeat purchases")
    cum.set_xlabel(f"{unit} since the start of the first period")
    cum.legend(loc="upper left")
    cum.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _wrap(text: str, width: int = 70) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width)) if text else ""


def write_report(directory, *, bgnbd_fit: FitResult, x, t_x, T, time_unit: str,
                 holdout: Optional[HoldoutCheck] = None, tracking: Optional[Tracking] = None,
                 summary: str = "", holdout_note: str = "") -> Path:
    """Write the three PNGs and ``index.html`` into ``directory`` (created); return the index path."""
    plt = _pyplot()
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    figures = (
        _calibration_vs_holdout(plt, holdout, time_unit, holdout_note),
        _p_alive(plt, bgnbd_fit, np.asarray(x, dtype=float), np.asarray(T, dtype=float), time_unit),
        _tracking(plt, tracking, time_unit, ""),
    )
    for (name, _, _), fig in zip(PICTURES, figures):
        fig.savefig(out / name)
        plt.close(fig)
    sections = "\n".join(
        f'<section><h2>{html.escape(title)}</h2><p>{html.escape(caption)}</p>'
        f'<img src="{name}" alt="{html.escape(title)}" width="800"></section>'
        for name, title, caption in PICTURES)
    index = out / "index.html"
    index.write_text(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>clvstream fit report</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
        "pre{background:#f4f4f4;padding:1em;overflow-x:auto}img{max-width:100%;border:1px solid #ddd}</style>"
        f"</head><body><h1>BG/NBD + Gamma-Gamma fit</h1><pre>{html.escape(summary)}</pre>\n{sections}\n"
        "</body></html>\n", encoding="utf-8")
    return index
