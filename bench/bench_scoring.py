"""Cost of re-scoring one customer on the scalar (per-event) path.

Scores N synthetic customers one at a time, as a stream processor does when
an order arrives, and prints microseconds per customer update for P(alive),
predicted CLV and potential CLV, next to two baselines measured in the same
run: the naive CLV formula ``aov * purchases_per_year * years`` (the floor
for any per-event Python scoring) and the vectorized numpy path amortised
per customer (what a batch re-scoring costs).

    .venv/bin/python bench/bench_scoring.py [--n 100000] [--horizon 52] [--steps 12]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streams.models import bgnbd  # noqa: E402
from streams.models.clv import clv, clv_batch, potential_clv, predicted_clv  # noqa: E402
from streams.models.params import BgNbdParams, GammaGammaParams  # noqa: E402

# CDNOW estimates (weeks): Fader, Hardie & Lee (2005); Fader & Hardie (2013).
BG = BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)
GG = GammaGammaParams(p=6.25, q=3.74, v=15.44)


def synthetic_customers(n: int, seed: int):
    """Customers drawn from the BG/NBD itself (rates, ages and recencies), as Python lists."""
    rng = np.random.default_rng(seed)
    T = rng.uniform(1.0, 104.0, n)
    rate = rng.gamma(BG.r, 1.0 / BG.alpha, n)
    x = rng.poisson(rate * T)
    t_x = np.where(x > 0, T * rng.beta(np.maximum(x, 1), 1.0), 0.0)  # max of x uniforms
    mean_spend = np.where(x > 0, rng.gamma(GG.p, 1.0 / rng.gamma(GG.q, 1.0 / GG.v, n)), 0.0)
    return x.astype(float).tolist(), t_x.tolist(), T.tolist(), mean_spend.tolist()


def per_customer_us(run, n: int) -> float:
    start = time.perf_counter()
    run()
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="customers to score")
    parser.add_argument("--horizon", type=float, default=52.0, help="CLV horizon in weeks")
    parser.add_argument("--steps", type=int, default=12, help="discounting periods in the horizon")
    parser.add_argument("--discount", type=float, default=0.01, help="discount rate per period")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    n, horizon, steps, rate = args.n, args.horizon, args.steps, args.discount
    xs, txs, Ts, ms = synthetic_customers(n, args.seed)
    rows = list(zip(xs, txs, Ts, ms))

    print(f"customers={n}  time unit=weeks  horizon={horizon:g} weeks  steps={steps}  "
          f"discount={rate:g}/period  params: {BG}, {GG}")
    print(f"customers with repeat purchases: {sum(1 for x in xs if x > 0)}  "
          f"max x: {max(xs):.0f}  python {sys.version.split()[0]}  numpy {np.__version__}")

    def baseline_simple():
        # aov * purchases_per_year * years, with the same per-customer loop overhead
        years = horizon / 52.0
        return [(m if x > 0 else 35.0) * (x / T * 52.0 if T > 0 else 0.0) * years for x, _, T, m in rows]

    def p_alive_all():
        return [bgnbd.p_alive(BG, x, t_x, T) for x, t_x, T, _ in rows]

    def predicted_all():
        return [predicted_clv(BG, GG, x, t_x, T, m, horizon, rate, steps) for x, t_x, T, m in rows]

    def potential_all():
        return [potential_clv(BG, GG, x, t_x, T, m, horizon, rate, steps) for x, t_x, T, m in rows]

    def both_all():
        return [clv(BG, GG, x, t_x, T, m, horizon, rate, steps) for x, t_x, T, m in rows]

    arrays = [np.asarray(column) for column in (xs, txs, Ts, ms)]

    def vectorized_all():
        return clv_batch(BG, GG, *arrays, horizon, rate, steps)

    results = [
        ("baseline: aov * purchases/year * years (scalar)", baseline_simple),
        ("P(alive) (scalar)", p_alive_all),
        ("predicted CLV (scalar)", predicted_all),
        ("potential CLV (scalar)", potential_all),
        ("predicted + potential CLV together (scalar)", both_all),
        ("baseline: predicted + potential, numpy batch of N", vectorized_all),
    ]
    print(f"{'operation':52s} {'us/customer update':>20s}")
    for label, run in results:
        print(f"{label:52s} {per_customer_us(run, n):20.2f}")

    # sanity: the scalar and vectorized paths agree on this population
    scalar = np.array(both_all())
    batch = np.column_stack(vectorized_all())
    print(f"max relative difference scalar vs numpy path: "
          f"{np.max(np.abs(scalar - batch) / np.maximum(np.abs(batch), 1e-300)):.1e}")


if __name__ == "__main__":
    main()
