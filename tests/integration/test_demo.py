"""The README's demo, the way a user sees it: in a terminal (tmux), stopped with Ctrl-C.

The demo runs in a detached tmux session on a private server socket; the test reads the
screen with capture-pane, presses Ctrl-C with send-keys and waits on conditions only.
"""
from __future__ import annotations

import itertools
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.integration.harness import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
STATUS = re.compile(r"^\[\d\d:\d\d\] sent [\d,]+ \([\d,]+/s\) \| (worker starting|worker joining its group|read [\d,]+.*, lag [\d,]+) \| "
                    r"customers [\d,]+, first assessed [\d,]+ \| moves [\d,]+ \| dead letters \d+ \| at \S+")
MOVE = re.compile(r"^\d{4}-\d{2}-\d{2}\s+cust-\d{6}\s+(HV|LV)/(HL|LL) -> (HV|LV)/(HL|LL)\s+"
                  r"(value|loyalty|at risk)")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:  # a zombie is gone for our purposes
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


SERVERS = itertools.count()


class Terminal:
    """One tmux session on its own server (never the user's tmux server)."""

    def __init__(self, tmp: Path, command: str):
        self.tmux = shutil.which("tmux")
        # a fresh tmux server per terminal, its socket in the test's temp dir (nothing left in /tmp/tmux-*)
        self.socket = str(tmp / f"tmux-{next(SERVERS)}.sock")
        conf = tmp / "tmux.conf"
        conf.write_text("set -g history-limit 100000\nset -g remain-on-exit on\n")
        self.run("-f", str(conf), "new-session", "-d", "-s", "demo", "-x", "200", "-y", "50", command)

    def run(self, *args: str) -> str:
        done = subprocess.run([self.tmux, "-S", self.socket, *args], capture_output=True, text=True)
        assert done.returncode == 0, f"tmux {' '.join(args[:2])}: {done.stderr.strip()}"
        return done.stdout

    def screen(self) -> list:
        """Everything printed so far, wrapped lines joined, as a user scrolling back would read it."""
        return self.run("capture-pane", "-p", "-J", "-S", "-", "-t", "demo").rstrip("\n").splitlines()

    def exited(self):
        """The demo's exit status once it has exited, else None (the pane stays: remain-on-exit)."""
        dead, status, signal = self.run("display-message", "-p", "-t", "demo",
                                        "#{pane_dead}|#{pane_dead_status}|#{pane_dead_signal}").strip().split("|")
        if dead != "1":
            return None
        if signal:
            return -int(signal)
        return int(status) if status else None  # tmux sets the status a moment after the pane dies

    def wait_for(self, condition, timeout: float, what: str) -> list:
        deadline = time.monotonic() + timeout
        while True:
            lines = self.screen()
            if condition(lines):
                return lines
            if self.exited() is not None or time.monotonic() > deadline:
                pytest.fail(f"{what}: not seen within {timeout:.0f} s; screen:\n" + "\n".join(lines[-60:]))
            time.sleep(0.5)  # polling interval of the condition, not a wait for the demo

    def wait_for_exit(self, timeout: float):
        deadline = time.monotonic() + timeout
        while (status := self.exited()) is None and time.monotonic() < deadline:
            time.sleep(0.2)
        return status

    def close(self) -> None:
        subprocess.run([self.tmux, "-S", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def terminal_factory(tmp_path):
    if shutil.which("tmux") is None:
        if CI:
            pytest.fail("tmux is not installed (Debian package `tmux`); CI must install it")
        pytest.skip("tmux is not installed (Debian package `tmux`)")
    made = []

    def make(command: str) -> Terminal:
        made.append(Terminal(tmp_path, command))
        return made[-1]

    yield make
    for term in made:
        term.close()


def demo_command(demo_tmp: Path, *args: str) -> str:
    """The demo as a user starts it from a shell, its temp dir under ``demo_tmp`` so "nothing left behind" is
    checkable; the shell writes the demo's exit status to ``demo_tmp/../exit-status`` (tmux under load
    sometimes marks the pane dead without recording a status)."""
    env = {"TMPDIR": str(demo_tmp), "CLV_WEB_PORT": str(free_port()), "PYTHONUNBUFFERED": "1"}
    status_file = demo_tmp.parent / "exit-status"
    inner = (f"cd {shlex.quote(str(ROOT))} && env {' '.join(f'{k}={shlex.quote(v)}' for k, v in env.items())} "
             f"{shlex.quote(sys.executable)} -m streams.app demo {' '.join(args)}; "
             f"echo $? > {shlex.quote(str(status_file))}")
    return f"bash -c {shlex.quote(inner)}"


def demo_process(term) -> int:
    """The demo's pid: the child of the pane's shell."""
    shell = term.run("display-message", "-p", "-t", "demo", "#{pane_pid}").strip()
    deadline = time.monotonic() + 10
    while True:
        children = subprocess.run(["pgrep", "-P", shell], capture_output=True, text=True).stdout.split()
        if children or time.monotonic() > deadline:
            assert len(children) == 1, f"the pane's shell has children {children}"
            return int(children[0])
        time.sleep(0.1)


def child_pids(lines) -> list:
    """The broker's and the worker's pid, as the demo prints them."""
    found = (re.match(r"^broker .*\(pid (\d+)\)", l) or re.match(r"^worker\s+pid (\d+)", l) for l in lines)
    return [int(m.group(1)) for m in found if m]


def test_demo_in_a_terminal_shows_moves_and_status_and_stops_cleanly_on_ctrl_c(tmp_path, terminal_factory):
    demo_tmp = tmp_path / "tmp"
    demo_tmp.mkdir()
    term = terminal_factory(demo_command(demo_tmp, "--customers 300 --rate 300 --fit-after 8"))

    # the fit retries every 20 s until it converges; then the model scores the moves (P(alive) shown)
    lines = term.wait_for(lambda ls: any("published" in l for l in ls)
                          and sum(bool(STATUS.match(l)) for l in ls) >= 3
                          and any(MOVE.match(l) and "P(alive)" in l for l in ls),
                          timeout=180, what="a fitted model, 3 status lines and a move scored by the model")
    url = next(l.split()[2] for l in lines if re.match(r"live page http://127\.0\.0\.1:\d+/ui ", l))
    with urllib.request.urlopen(url, timeout=10) as page:  # the URL the demo prints is the worker's page
        assert page.status == 200 and b"<title>clvstream" in page.read()
    pids = child_pids(lines)
    assert len(pids) == 2, "\n".join(lines[:10])
    moves = [l for l in lines if MOVE.match(l)]
    assert moves and not any("first assessment" in l for l in lines), "first assessments are counted, not printed"
    for line in lines:  # one writer: every line is a whole line of one kind
        assert (STATUS.match(line) or MOVE.match(line) or re.match(r"^(broker|worker|live page|generator|model) ", line)
                or line.startswith("Moves that matter")), f"garbled or unexpected line: {line!r}"

    demo_pid = demo_process(term)
    term.run("send-keys", "-t", "demo", "C-c")
    pressed = time.monotonic()
    summary_seen = None  # when the summary appeared: tells a slow stop from a slow exit
    while alive(demo_pid) and time.monotonic() - pressed < 5.0:
        # the visible part only: capturing the whole history this often slows the tmux server down
        if summary_seen is None and "stopped after " in term.run("capture-pane", "-p", "-t", "demo"):
            summary_seen = time.monotonic() - pressed
        time.sleep(0.1)
    gone = not alive(demo_pid)
    screen = term.screen()
    assert gone, (f"still running 5 s after Ctrl-C (summary seen after "
                  f"{'-' if summary_seen is None else f'{summary_seen:.1f} s'}):\n" + "\n".join(screen[-20:]))
    status_file = demo_tmp.parent / "exit-status"
    deadline = time.monotonic() + 30  # the shell writes it as soon as it sees the demo exit
    while not (status_file.exists() and status_file.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert status_file.read_text().strip() == "0", "\n".join(screen[-30:])
    term.wait_for_exit(timeout=30)  # the shell is done too: the screen is complete
    screen = term.screen()
    # the terminal echoes Ctrl-C as "^C" at the start of the next line
    tail = [l.removeprefix("^C") for l in screen if l.strip() and not l.startswith("Pane is dead")]
    summary_at = max(i for i, l in enumerate(tail) if l.startswith("stopped after "))
    assert re.match(r"stopped after \d+ s: [1-9]\d* events sent, [1-9]\d* segment changes, \d+ dead letters",
                    tail[summary_at])
    assert [l.split()[0] for l in tail[summary_at + 1:]] == ["customers", "moves", "dead", "segments"], \
        "the summary comes last"
    assert not list(demo_tmp.iterdir()), f"left behind: {list(demo_tmp.iterdir())}"
    assert not [p for p in pids if alive(p)], f"processes left behind: {pids}"


def test_closing_the_terminal_stops_the_demo_and_leaves_nothing_behind(tmp_path, terminal_factory):
    """The terminal window closed (SIGHUP) instead of Ctrl-C: the same cleanup, nobody to read a summary."""
    demo_tmp = tmp_path / "tmp"
    demo_tmp.mkdir()
    term = terminal_factory(demo_command(demo_tmp, "--customers 100 --rate 100 --fit-after 0"))
    lines = term.wait_for(lambda ls: any(STATUS.match(l) and " read " in l for l in ls), timeout=90,
                          what="a status line from a running worker")
    pids = child_pids(lines)
    assert len(pids) == 2 and list(demo_tmp.iterdir())
    term.run("kill-session", "-t", "demo")  # tmux hangs up the pane's process: SIGHUP
    deadline = time.monotonic() + 10
    while (list(demo_tmp.iterdir()) or any(alive(p) for p in pids)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not list(demo_tmp.iterdir()), f"left behind: {list(demo_tmp.iterdir())}"
    assert not [p for p in pids if alive(p)], f"processes left behind: {pids}"
