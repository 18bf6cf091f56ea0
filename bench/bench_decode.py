"""Cost of the edge decode per event: the compiled msgspec pass vs the schema path it replaces.

Generates N events with the project's generator (optionally with malformed, duplicate and
out-of-order noise), then times, in one run and in turns so that load hits both alike:
``validation.decode`` (msgspec Structs, falling back to the schema path for what they refuse),
``validation.decode_by_schema`` (json.loads + fastjsonschema + semantic checks: the decode before)
and ``json.loads`` alone as a floor, in CPU time of the process (robust to other work on the
machine). Also counts decisions that differ between the two (must be 0).

    .venv/bin/python bench/bench_decode.py [--n 100000] [--malformed 0.0] [--rounds 3]
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streams.core.validation import EdgeRules, decode, decode_by_schema  # noqa: E402
from streams.generator import EventGenerator, GeneratorConfig  # noqa: E402
from streams.kafka.produce import encode_value  # noqa: E402


def records(n: int, seed: int, malformed: float) -> list[tuple[bytes, int]]:
    cfg = GeneratorConfig(seed=seed, customers=max(100, n // 10), share_malformed=malformed)
    return [(encode_value(ev.value), ev.event_time_ms + 1000) for ev in EventGenerator(cfg).events(limit=n)]


def seconds(run, recs, rules) -> float:
    """CPU seconds of this process: on a shared machine, wall time also counts the waits for a core."""
    gc.collect()
    start = time.process_time()
    run(recs, rules)
    return time.process_time() - start


def run_decode(recs, rules):
    for raw, ts in recs:
        decode(raw, rules, ts)


def run_schema(recs, rules):
    for raw, ts in recs:
        decode_by_schema(raw, rules, ts)


def run_loads(recs, rules):
    loads = json.loads
    for raw, _ in recs:
        loads(raw)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="events to decode")
    parser.add_argument("--malformed", type=float, default=0.0, help="share of malformed payloads")
    parser.add_argument("--rounds", type=int, default=3, help="alternating timing rounds; the best is shown")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rules = EdgeRules()
    started = time.perf_counter()
    recs = records(args.n, args.seed, args.malformed)
    mean_bytes = sum(len(raw) for raw, _ in recs) / len(recs)
    print(f"{len(recs):,} events ({mean_bytes:.0f} B JSON on average, share malformed {args.malformed:g}, "
          f"seed {args.seed}) generated in {time.perf_counter() - started:.1f} s; python {sys.version.split()[0]}")

    mismatches = sum(1 for raw, ts in recs if decode(raw, rules, ts) != decode_by_schema(raw, rules, ts))
    rejected = sum(1 for raw, ts in recs if not hasattr(decode(raw, rules, ts), "event_time_ms"))

    variants = [("before: decode_by_schema (json.loads + fastjsonschema + checks)", run_schema),
                ("after:  decode (msgspec Structs + checks, schema path on refusal)", run_decode),
                ("floor:  json.loads alone", run_loads)]
    best = {label: float("inf") for label, _ in variants}
    for _ in range(args.rounds):  # in turns, so that a load spike hits every variant alike
        for label, run in variants:
            best[label] = min(best[label], seconds(run, recs, rules))
    print(f"{'variant (best of ' + str(args.rounds) + ' rounds, CPU time)':68s} {'us/event':>9s} {'events/s':>10s}")
    for label, _ in variants:
        print(f"{label:68s} {best[label] / len(recs) * 1e6:9.2f} {len(recs) / best[label]:10,.0f}")
    before, after = best[variants[0][0]], best[variants[1][0]]
    print(f"speed-up after/before: {before / after:.1f}x; rejected {rejected:,}; "
          f"decisions differing between the two: {mismatches}")


if __name__ == "__main__":
    main()
