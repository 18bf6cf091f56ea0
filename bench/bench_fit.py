"""Time our BG/NBD and Gamma-Gamma fits beside lifetimes' on the same synthetic customers.

    .venv/bin/python bench/bench_fit.py                 # 200k and 1M customers
    .venv/bin/python bench/bench_fit.py --sizes 200000  # one size
    .venv/bin/pip install -e '.[bench]'                 # lifetimes, for the side-by-side column

Customers are drawn from the paper's BG/NBD parameters (Fader, Hardie & Lee 2005, CDNOW:
r=0.243, alpha=4.414, a=0.793, b=2.426, time in weeks) and, for the repeat buyers, the
Gamma-Gamma parameters of Fader & Hardie 2013 (p=6.25, q=3.74, v=15.44).  Each customer's
calibration window T is a whole number of days up to 78 weeks and purchase times are floored
to the day, as a real transaction log gives them; then x, t_x and T are in weeks.

Both libraries get the same arrays in the same process, one after the other; the table shows
wall time, the estimates and the log-likelihood each reached.  Nothing here is part of the test
suite: timings never decide pass or fail.  If lifetimes is not installed, its rows say so.
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from streams.models import bgnbd, gamma_gamma  # noqa: E402
from streams.models.fitting import fit_bgnbd, fit_gamma_gamma  # noqa: E402
from streams.models.params import BgNbdParams, GammaGammaParams  # noqa: E402

PAPER_BGNBD = BgNbdParams(0.243, 4.414, 0.793, 2.426)
PAPER_GG = GammaGammaParams(6.25, 3.74, 15.44)
MAX_DAYS = 78 * 7


def draw_customers(n: int, seed: int = 1):
    """(x, t_x, T, mean_spend) of n BG/NBD customers, whole days, in weeks."""
    rng = np.random.default_rng(seed)
    bg = PAPER_BGNBD
    lam = rng.gamma(bg.r, 1.0 / bg.alpha, n)  # purchases per week while alive
    p = rng.beta(bg.a, bg.b, n)  # dropout probability after each repeat purchase
    T_days = rng.integers(1, MAX_DAYS + 1, n).astype(float)
    T = T_days / 7.0
    x = np.zeros(n)
    t_x = np.zeros(n)
    now = np.zeros(n)
    active = np.arange(n)
    while active.size:
        now[active] += rng.exponential(1.0, active.size) / np.maximum(lam[active], 1e-300)
        bought = now[active] <= T[active]
        active = active[bought]
        x[active] += 1
        t_x[active] = np.floor(now[active] * 7.0) / 7.0  # the day of the purchase
        active = active[rng.random(active.size) >= p[active]]  # alive for the next one?
    gg = PAPER_GG
    nu = rng.gamma(gg.q, 1.0 / gg.v, n)
    safe_x = np.maximum(x, 1.0)
    # the mean of x Gamma(p, nu) values is Gamma(p x, nu x); cents, as a shop records them
    mean_spend = np.where(x > 0, np.round(rng.gamma(gg.p * safe_x, 1.0 / (nu * safe_x)), 2), 0.0)
    return x, t_x, T, mean_spend


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def lifetimes_fitters():
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import lifetimes
            from lifetimes import BetaGeoFitter, GammaGammaFitter
    except Exception as exc:  # not installed, or broken on this numpy/pandas
        return None, f"lifetimes unavailable ({type(exc).__name__}: {exc})"
    return (BetaGeoFitter, GammaGammaFitter), f"lifetimes {lifetimes.__version__}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="200000,1000000", help="customer counts, comma-separated")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-lifetimes", action="store_true", help="time ours only")
    args = parser.parse_args(argv)
    peers, peer_name = (None, "lifetimes skipped") if args.no_lifetimes else lifetimes_fitters()
    import scipy

    print(f"python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, {peer_name}")
    print(f"machine: {platform.machine()}, {len(__import__('os').sched_getaffinity(0))} cores")
    print(f"truth: BG/NBD {PAPER_BGNBD.to_dict()}  Gamma-Gamma {PAPER_GG.to_dict()}")
    header = f"{'customers':>10} {'model':<11} {'fitter':<10} {'seconds':>8}  {'log-lik':>14}  estimates"
    print(header)
    print("-" * len(header))
    for n in (int(s) for s in args.sizes.split(",")):
        t0 = time.perf_counter()
        x, t_x, T, m = draw_customers(n, args.seed)
        repeat = x > 0
        print(f"{n:>10} drawn in {time.perf_counter() - t0:.1f} s: {int(repeat.sum())} repeat buyers, "
              f"{len(np.unique(np.column_stack([x, t_x, T]), axis=0))} distinct (x, t_x, T) rows")
        seconds, ours = timed(lambda: fit_bgnbd(x, t_x, T))
        line(n, "BG/NBD", "ours", seconds, ours.log_likelihood, ours.params.to_dict(),
             "" if ours.usable else f"REFUSED: {ours.refusal}")
        if peers:
            def fit_theirs():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    return peers[0]().fit(x, t_x, T)

            seconds_l, theirs = timed(fit_theirs)
            p = theirs.params_
            est = {"r": p["r"], "alpha": p["alpha"], "a": p["a"], "b": p["b"]}
            ll = float(bgnbd.log_likelihood_batch(BgNbdParams(**est), x, t_x, T).sum())
            line(n, "BG/NBD", "lifetimes", seconds_l, ll, est, f"ours/lifetimes time {seconds / seconds_l:.2f}")
        seconds, ours = timed(lambda: fit_gamma_gamma(x, m))
        line(n, "Gamma-Gamma", "ours", seconds, ours.log_likelihood, ours.params.to_dict(),
             "" if ours.usable else f"REFUSED: {ours.refusal}")
        if peers:
            def fit_theirs_gg():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    return peers[1]().fit(x[repeat], m[repeat])

            seconds_l, theirs = timed(fit_theirs_gg)
            p = theirs.params_
            est = {"p": p["p"], "q": p["q"], "v": p["v"]}
            ll = float(gamma_gamma.log_likelihood_batch(GammaGammaParams(**est), x[repeat], m[repeat]).sum())
            line(n, "Gamma-Gamma", "lifetimes", seconds_l, ll, est, f"ours/lifetimes time {seconds / seconds_l:.2f}")


def line(n, model, fitter, seconds, ll, estimates, note="") -> None:
    shown = " ".join(f"{k}={v:.4f}" for k, v in estimates.items())
    print(f"{n:>10} {model:<11} {fitter:<10} {seconds:>8.2f}  {ll:>14.2f}  {shown}  {note}", flush=True)


if __name__ == "__main__":
    main()
