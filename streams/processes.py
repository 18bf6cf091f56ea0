"""Several live worker processes on one machine: one per core (`clvstream workers --processes N`).

A Faust worker is one Python process, so it uses one core. Kafka's consumer group already
shares the partitions among any number of workers; on one machine each worker only needs
its own local state directory (RocksDB takes a lock on it) and its own web port. This
module starts N ``clvstream worker`` processes with exactly that, each in the group of the
same application id, and stops them together.

Process i gets ``CLV_DATA_DIR=<data dir>/p<i>`` and ``CLV_WEB_PORT=<web port> + i``; a
``CLV_WEB_ADVERTISED_URL`` containing ``{port}`` is filled per process (customer lookups are
forwarded to the owner's URL, so each process must advertise its own).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import List, Optional

from .settings import Settings


def process_settings(settings: Settings, index: int) -> Settings:
    """The settings of worker process ``index`` (0-based) of a machine."""
    url = settings.web_advertised_url
    if url and "{port}" not in url and index > 0:
        raise ValueError("CLV_WEB_ADVERTISED_URL names one port; with several processes write {port} in it "
                         "(e.g. http://host-a:{port}) or leave it empty")
    return replace(settings, data_dir=str(Path(settings.data_dir) / f"p{index}"),
                   web_port=settings.web_port + index,
                   web_advertised_url=url.format(port=settings.web_port + index) if url else url)


def start(settings: Settings, index: int, log_level: str = "warn", log_dir: Optional[Path] = None) -> subprocess.Popen:
    own = process_settings(settings, index)
    Path(own.data_dir).parent.mkdir(parents=True, exist_ok=True)
    out = open(Path(log_dir) / f"worker-p{index}.log", "ab") if log_dir else None
    return subprocess.Popen([sys.executable, "-m", "streams.app", "worker", "-l", log_level],
                            env={**os.environ, **own.with_env()}, stdout=out, stderr=subprocess.STDOUT if out else None,
                            start_new_session=True, preexec_fn=_die_with_parent)


def _die_with_parent() -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def stop(procs: List[subprocess.Popen], timeout: float = 20.0) -> None:
    """SIGTERM to all at once (each leaves the group), then wait; SIGKILL what hangs."""
    for proc in procs:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    for proc in procs:
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(5)


def run(settings: Settings, processes: int, log_level: str = "warn", log_dir: Optional[Path] = None) -> int:
    """Run ``processes`` workers until one exits or this process is told to stop; return its code."""
    if processes < 1:
        raise ValueError("--processes must be at least 1")
    procs = [start(settings, i, log_level, log_dir) for i in range(processes)]
    stopping = threading.Event()

    def _stop(signum, frame):
        stopping.set()

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stopping.is_set():
            exited = [p for p in procs if p.poll() is not None]
            if exited:
                return exited[0].returncode or 0
            stopping.wait(0.5)
        return 0
    finally:
        stop(procs)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
