"""The README's demo command: live output, clean stop on Ctrl-C, no process left behind."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.integration.harness import free_port

pytestmark = pytest.mark.integration


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purposes
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split()[2] != "Z"


def test_demo_shows_segment_changes_and_stops_cleanly_on_ctrl_c(tmp_path):
    env = {**os.environ, "CLV_WEB_PORT": str(free_port())}
    proc = subprocess.Popen([sys.executable, "-m", "streams.app", "demo", "--customers", "300", "--rate", "300",
                             "--fit-after", "8"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                            text=True)
    lines, deadline = [], time.monotonic() + 150  # the fit retries every 20 s until it converges
    try:
        for line in proc.stdout:
            lines.append(line)
            if "published" in line or time.monotonic() > deadline:
                break
        time.sleep(3)  # some changes scored by the fitted model
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = "".join(lines) + rest
    assert proc.returncode == 0, out[-3000:]
    pids = [int(p) for p in re.findall(r"\(pid (\d+)\)|worker\s+pid (\d+)", out) for p in p if p]
    assert len(pids) == 2, out[:2000]  # broker and worker
    changes = [l for l in out.splitlines() if re.match(r"\d{4}-\d{2}-\d{2}\s+cust-\d+", l)]
    assert len(changes) > 50, out[-2000:]
    assert any("predicted" in l for l in changes), "changes after the fit carry predicted CLV"
    assert re.search(r"stopped: \d+ events sent, \d+ segment changes", out)
    time.sleep(1)
    assert not [p for p in pids if alive(p)], f"left behind: {pids}"
