"""Cost of the edge decode per event: the compiled msgspec pass vs the decoders it replaces.

Generates N events with the project's generator (optionally with malformed noise), then times,
in one run and in turns so that load hits every variant alike, in CPU time of the process (on a
shared machine wall time also counts the waits for a core):

- ``validation.decode`` of this tree: msgspec Structs, the schema path for what they refuse;
- ``validation.decode`` of another checkout (``--before-tree``, e.g. the main worktree or
  ``git worktree add /tmp/before <rev>``), in a subprocess over the same records: the decode before;
- ``validation.decode_by_schema`` of this tree: json.loads + fastjsonschema + the semantic checks,
  plus a second json.loads that reads money exactly (the path of every refused document);
- ``json.loads`` alone, as a floor.

It also counts decisions that differ between ``decode`` and ``decode_by_schema`` (must be 0).

    .venv/bin/python bench/bench_decode.py [--n 100000] [--malformed 0.0] [--rounds 3] [--before-tree /work/main]
"""

from __future__ import annotations

import argparse
import gc
import json
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streams.core.validation import EdgeRules, decode, decode_by_schema  # noqa: E402
from streams.generator import EventGenerator, GeneratorConfig  # noqa: E402
from streams.kafka.produce import encode_value  # noqa: E402

# Run in a subprocess with another checkout first on sys.path: prints the CPU seconds of one pass.
_TIME_OTHER_TREE = """
import gc, pickle, sys, time
sys.path.insert(0, sys.argv[1])
from streams.core.validation import EdgeRules, decode
recs = pickle.load(open(sys.argv[2], "rb"))
rules = EdgeRules()
gc.collect()
start = time.process_time()
for raw, ts in recs:
    decode(raw, rules, ts)
print(time.process_time() - start)
"""


def records(n: int, seed: int, malformed: float) -> list[tuple[bytes, int]]:
    cfg = GeneratorConfig(seed=seed, customers=max(100, n // 10), share_malformed=malformed)
    return [(encode_value(ev.value), ev.event_time_ms + 1000) for ev in EventGenerator(cfg).events(limit=n)]


def seconds(run, recs, rules) -> float:
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
        try:
            loads(raw)
        except (ValueError, TypeError, RecursionError):  # the malformed share
            pass


def other_tree(tree: str, recs_file: str):
    def run() -> float:
        out = subprocess.run([sys.executable, "-c", _TIME_OTHER_TREE, tree, recs_file], cwd=tree,
                             check=True, capture_output=True, text=True)
        return float(out.stdout.strip().splitlines()[-1])
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="events to decode")
    parser.add_argument("--malformed", type=float, default=0.0, help="share of malformed payloads")
    parser.add_argument("--rounds", type=int, default=3, help="alternating timing rounds; the best is shown")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--before-tree", help="a checkout whose validation.decode is timed as 'before'")
    args = parser.parse_args()
    rules = EdgeRules()
    started = time.perf_counter()
    recs = records(args.n, args.seed, args.malformed)
    mean_bytes = sum(len(raw) for raw, _ in recs) / len(recs)
    print(f"{len(recs):,} events ({mean_bytes:.0f} B JSON on average, share malformed {args.malformed:g}, "
          f"seed {args.seed}) generated in {time.perf_counter() - started:.1f} s; python {sys.version.split()[0]}")

    mismatches = sum(1 for raw, ts in recs if decode(raw, rules, ts) != decode_by_schema(raw, rules, ts))
    rejected = sum(1 for raw, ts in recs if not hasattr(decode(raw, rules, ts), "event_time_ms"))

    variants = [("after:  decode (msgspec Structs + checks, schema path on refusal)",
                 lambda: seconds(run_decode, recs, rules))]
    with tempfile.NamedTemporaryFile(suffix=".pkl") as recs_file:
        if args.before_tree:
            pickle.dump(recs, recs_file)
            recs_file.flush()
            variants.append((f"before: decode of {args.before_tree} (json.loads + fastjsonschema + checks)",
                             other_tree(args.before_tree, recs_file.name)))
        variants += [("schema path: decode_by_schema (+ exact money re-read)", lambda: seconds(run_schema, recs, rules)),
                     ("floor:  json.loads alone", lambda: seconds(run_loads, recs, rules))]
        best = {label: float("inf") for label, _ in variants}
        for _ in range(args.rounds):  # in turns, so that a load spike hits every variant alike
            for label, timed in variants:
                best[label] = min(best[label], timed())
    print(f"{'variant (best of ' + str(args.rounds) + ' rounds, CPU time)':78s} {'us/event':>9s} {'events/s':>10s}")
    for label, _ in variants:
        print(f"{label:78s} {best[label] / len(recs) * 1e6:9.2f} {len(recs) / best[label]:10,.0f}")
    after = best[variants[0][0]]
    if args.before_tree:
        print(f"speed-up after/before: {best[variants[1][0]] / after:.1f}x")
    print(f"rejected {rejected:,}; decisions differing between decode and decode_by_schema: {mismatches}")


if __name__ == "__main__":
    main()
