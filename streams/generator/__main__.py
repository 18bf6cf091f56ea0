"""``python -m streams.generator --customers 100 --limit 20``: JSON lines on stdout.

Each line is ``{"topic": role, "key": customer_id, "value": event}`` (or just
the event with ``--values-only``); malformed records show their payload as
``value_base64`` with the ``expected_rejection``.  ``--bench`` consumes the
stream without printing and reports the rate on stderr.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time

from . import EventGenerator, GeneratorConfig


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m streams.generator", description=__doc__)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--customers", type=int, default=1000, help="initial population")
    ap.add_argument("--arrival-per-day", type=float, default=10.0)
    ap.add_argument("--start", default="2025-01-01T00:00:00Z")
    ap.add_argument("--currency", default="EUR")
    ap.add_argument("--days", type=float, default=None, help="stop after this many simulated days")
    ap.add_argument("--limit", type=int, default=None, help="stop after this many records")
    ap.add_argument("--duplicates", type=float, default=0.0, help="share of duplicated events")
    ap.add_argument("--out-of-order", type=float, default=0.0, help="share of delayed events")
    ap.add_argument("--max-disorder-seconds", type=float, default=60.0)
    ap.add_argument("--malformed", type=float, default=0.0, help="share of malformed records")
    ap.add_argument("--values-only", action="store_true")
    ap.add_argument("--bench", action="store_true", help="measure events/s instead of printing")
    args = ap.parse_args(argv)
    if args.days is None and args.limit is None:
        ap.error("give --limit and/or --days (the stream is otherwise endless)")

    cfg = GeneratorConfig(
        seed=args.seed,
        customers=args.customers,
        arrival_per_day=args.arrival_per_day,
        start=args.start,
        currency=args.currency,
        share_duplicates=args.duplicates,
        share_out_of_order=args.out_of_order,
        max_disorder_seconds=args.max_disorder_seconds,
        share_malformed=args.malformed,
    )
    t0 = time.perf_counter()
    gen = EventGenerator(cfg)
    until = None
    if args.days is not None:
        until = cfg.start_ms + int(args.days * 86_400_000)
    stream = gen.events(until=until, limit=args.limit)

    if args.bench:
        n = 0
        for _ in stream:
            n += 1
        dt = time.perf_counter() - t0
        rep = gen.report()
        print(
            json.dumps(
                {
                    "events": n,
                    "seconds": round(dt, 3),
                    "events_per_second": round(n / dt) if dt else None,
                    "customers": len(rep.customers),
                    "by_kind": rep.by_kind,
                    "simulated_until": gen.format_time(rep.as_of_ms),
                }
            ),
            file=sys.stderr,
        )
        return 0

    write = sys.stdout.write
    dumps = json.dumps
    try:
        for ev in stream:
            if isinstance(ev.value, bytes):
                rec = {
                    "topic": ev.topic_role,
                    "key": ev.key,
                    "value_base64": base64.b64encode(ev.value).decode("ascii"),
                    "expected_rejection": ev.expected_rejection,
                }
                write(dumps(rec) + "\n")
            elif args.values_only:
                write(dumps(ev.value) + "\n")
            else:
                rec = {"topic": ev.topic_role, "key": ev.key, "value": ev.value}
                if ev.duplicate:
                    rec["duplicate"] = True
                write(dumps(rec) + "\n")
    except BrokenPipeError:  # e.g. piped into `head`
        sys.stderr.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
