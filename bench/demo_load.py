"""The demo at its default rate with busy loops beside it: does the worker keep up (issue 13)?

    .venv/bin/python bench/demo_load.py                      # 500 events/s, 1 busy loop, 180 s
    .venv/bin/python bench/demo_load.py --busy 2 --seconds 300 --rate 500
    .venv/bin/python bench/demo_load.py --no-fit         # the formula CLV throughout (no model fitted)

Runs ``streams.demo.run`` (the embedded tansu broker, the worker, the generator, as ``make demo``
does) with ``--busy`` processes spinning on a core each beside it, and reads the demo's own status
lines (every few seconds: events sent, records the worker has handled, its consumer lag). The backlog
is events sent minus records handled, so it also counts what the worker has fetched and not yet
handled, which its consumer lag does not. Prints the backlog over time and a verdict:

  keeps up   the backlog over the last third of the run stays below ``--tolerance`` seconds of
             traffic and does not grow (its last value is no more than its first of that third
             plus one second of traffic).

Timings decide nothing in the test suite; this is a measurement. Not part of pytest.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streams import demo  # noqa: E402

STATUS = re.compile(r"^\[(\d+):(\d+)\] sent ([\d,]+) .*?\| read ([\d,]+)[^|]*?, lag ([\d,]+)")


class StatusLines:
    """The demo's screen: every line kept with its time; status lines parsed."""

    def __init__(self, echo: bool):
        self.echo = echo
        self.samples = []  # (elapsed s, sent, handled, consumer lag)
        self.lines = []

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if not line:
                continue
            self.lines.append(line)
            m = STATUS.match(line)
            if m:
                minutes, seconds, sent, read, lag = m.groups()
                self.samples.append((int(minutes) * 60 + int(seconds), _n(sent), _n(read), _n(lag)))
            if self.echo or m or line.startswith("model "):
                print(line, flush=True)
        return len(text)

    def flush(self) -> None:
        pass


def _n(text: str) -> int:
    return int(text.replace(",", ""))


def busy_loops(n: int) -> list:
    # One process per loop: a thread would share our GIL and slow the generator, not the machine.
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def verdict(samples: list, rate: float, tolerance_s: float) -> tuple:
    if len(samples) < 6:
        return False, "too few status lines to judge (is the worker running?)"
    tail = samples[len(samples) * 2 // 3:]
    backlogs = [sent - handled for _, sent, handled, _ in tail]
    worst, first, last = max(backlogs), backlogs[0], backlogs[-1]
    bound = tolerance_s * rate
    ok = worst <= bound and last <= first + rate
    return ok, (f"last third ({tail[0][0]}-{tail[-1][0]} s): backlog max {worst:,} (bound {bound:,.0f} = "
                f"{tolerance_s:g} s of traffic), first {first:,}, last {last:,}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=float, default=500.0)
    p.add_argument("--busy", type=int, default=1, help="busy-loop processes beside the demo")
    p.add_argument("--seconds", type=float, default=180.0)
    p.add_argument("--customers", type=int, default=2000)
    p.add_argument("--tolerance", type=float, default=4.0, help="seconds of traffic the backlog may hold")
    p.add_argument("--echo", action="store_true", help="print every demo line, not only the status lines")
    p.add_argument("--no-fit", action="store_true",
                   help="never fit BG/NBD + Gamma-Gamma (the demo fits after 30 s; scoring then costs more)")
    a = p.parse_args(argv)
    print(f"machine   {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; {a.busy} busy loop(s); "
          f"demo at {a.rate:.0f} events/s for {a.seconds:.0f} s", flush=True)
    loops = busy_loops(a.busy)
    screen = StatusLines(a.echo)
    started = time.monotonic()
    try:
        demo.run(customers=a.customers, rate=a.rate, duration=a.seconds, out=screen,
                 fit_after=None if a.no_fit else 30.0)
    finally:
        for proc in loops:
            proc.kill()
            proc.wait()
    print(f"ran       {time.monotonic() - started:.0f} s; {len(screen.samples)} status lines")
    for when, sent, handled, lag in screen.samples[::3]:
        print(f"  {when:4d} s  sent {sent:>8,}  handled {handled:>8,}  backlog {sent - handled:>7,}  "
              f"consumer lag {lag:>7,}")
    ok, why = verdict(screen.samples, a.rate, a.tolerance)
    print(f"{'keeps up' if ok else 'falls behind'}: {why}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
