"""Apache Kafka (KRaft) under the tests and the bench: one node, or a 3-node cluster.

The broker is the pinned ``kafka_2.13`` of ``deploy/kafka/pom.xml``, fetched once by
``python -m streams.kafka.install`` (:mod:`streams.kafka.install`); nothing downloads here.

``KafkaCluster(nodes=1)``
    One process that is broker and controller (``process.roles=broker,controller``), the
    suite's default broker.  Replication factor 1.
``KafkaCluster(nodes=3)``
    Three such processes, three controller voters, ``default.replication.factor=3`` and
    ``min.insync.replicas=2`` (the internal offsets/transaction topics too): what a
    production cluster looks like, for the broker-fault tests.  Each node can be stopped
    (SIGTERM: controlled shutdown), killed (SIGKILL) and started again on the same ports with
    its data kept on disk (:meth:`KafkaCluster.stop_node`, :meth:`~KafkaCluster.kill_node`,
    :meth:`~KafkaCluster.start_node`).

Each node is formatted (``kafka.tools.StorageTool format``, the ``kafka-storage format`` of the
distribution) with a random cluster id into a temp dir, then started as ``java -cp <lib>/*
kafka.Kafka server.properties`` on free ``127.0.0.1`` ports; :meth:`KafkaCluster.start` returns
once every node's broker is registered and answers metadata requests.  :meth:`~KafkaCluster.stop`
ends the processes by PID and removes the temp dir.  Processes are handled as the embedded
brokers are (:mod:`streams.kafka.broker`): own process group, ``PR_SET_PDEATHSIG`` so a
``kill -9`` of the test run leaves no JVM behind, :func:`atexit` stop.

Sizing for a 2-core, 24 GiB machine shared with other work: ``-Xms256m -Xmx1g`` and the serial
GC per JVM (a parallel or G1 collector would start a GC thread per core for a heap this small),
two network and two I/O threads.  Settings deliberately away from Kafka's defaults, each for
tests only:

* ``group.initial.rebalance.delay.ms=0``: the default 3 s holds the first join of every new
  consumer group so that members starting together join one rebalance; every test uses a fresh
  group, so it would add 3 s per test and per worker start.  Kafka's own example
  ``config/server.properties`` sets 0 for development and testing for the same reason.
* ``log.retention.ms=-1`` (no time-based retention): records carry their event time as
  CreateTime (streams/kafka/produce.py), and the generated test events are ~690 days old.  Kafka's
  retention check (30 s after start, then every 5 minutes) deletes every segment whose newest
  timestamp is older than ``log.retention.ms`` (7 days by default), active segment included:
  measured, 100 such records produced to a new topic were gone 31 s after the broker started, and
  integration tests lost their input and changelog mid-test.  Production topics replaying
  historical events need the same thought (a retention longer than the oldest event's age).
* ``share.coordinator.state.topic.*`` follow the node count (their default RF 3 cannot be
  met by one node).

Producer batching, session timeouts and everything else on the client side stay at Kafka's
and Faust's defaults on this broker (see :data:`streams.kafka.broker.BROKER_TRAITS`).
"""

from __future__ import annotations

import atexit
import base64
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .broker import (
    BROKER_TRAITS,
    BrokerTraits,
    _popen,
    faust_settings_for,
    free_port,
    kafka_python_config_for,
    wait_until_ready,
)
from .install import installed_lib_dir, pinned_version

KIND = "kafka"
JVM_OPTIONS = ("-Xms256m", "-Xmx1g", "-XX:+UseSerialGC", "-XX:+ExitOnOutOfMemoryError",
               "-Djava.awt.headless=true")

_LOG4J2 = """\
rootLogger.level = WARN
rootLogger.appenderRef.file.ref = FILE
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {log}
appender.file.append = true
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
# start-up, shutdown and leadership lines: what a fault test needs to read afterwards
logger.server.name = kafka.server.KafkaRaftServer
logger.server.level = INFO
logger.broker.name = kafka.server.BrokerServer
logger.broker.level = INFO
logger.controller.name = kafka.server.ControllerServer
logger.controller.level = INFO
logger.raft.name = org.apache.kafka.raft.QuorumState
logger.raft.level = INFO
"""


def java_binary() -> str:
    """``$JAVA_HOME/bin/java`` when set, else ``java`` from the PATH (Kafka 4 needs Java 17+)."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise FileNotFoundError("no java on the PATH: Apache Kafka 4 needs a Java 17+ runtime")
    return found


def random_cluster_id() -> str:
    """A Kafka ``Uuid`` string (base64url, no padding), as ``kafka-storage random-uuid`` prints."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):  # Kafka's own generator avoids ids that look like an option
            return text


@dataclass
class KafkaNode:
    """One combined broker+controller process and its files."""

    node_id: int
    port: int  # PLAINTEXT listener (clients, replication)
    controller_port: int
    home: Path  # config, log4j config, server log
    data_dir: Path  # log.dirs (KRaft metadata log too)
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.home / "server.log"

    @property
    def config_path(self) -> Path:
        return self.home / "server.properties"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class KafkaCluster:
    """``nodes`` Apache Kafka KRaft nodes (1 or 3, each broker and controller) on loopback.

    ``with KafkaCluster(3) as cluster: use(cluster.bootstrap)``.  Attributes: ``kind``
    (``"kafka"``), ``bootstrap`` (comma list of every node), ``nodes``
    (:class:`KafkaNode`, ``node_id`` 1..n), ``traits``, ``version``.
    """

    kind = KIND

    def __init__(self, nodes: int = 1, *, jvm_options: tuple[str, ...] = JVM_OPTIONS,
                 extra_config: dict[str, Any] | None = None) -> None:
        if nodes not in (1, 3):
            raise ValueError("a single node or a 3-node cluster")
        self.size = nodes
        self.jvm_options = tuple(jvm_options)
        self.extra_config = dict(extra_config or {})
        self.version = pinned_version()
        self.cluster_id = random_cluster_id()
        self.nodes: list[KafkaNode] = []
        self.root: Path | None = None
        self._lock = threading.RLock()

    # -- public API --------------------------------------------------------

    @property
    def traits(self) -> BrokerTraits:
        return BROKER_TRAITS[KIND]

    @property
    def bootstrap(self) -> str:
        return ",".join(node.address for node in self.nodes)

    @property
    def running(self) -> bool:
        return any(node.running for node in self.nodes)

    def faust_settings(self, **kwargs: Any) -> dict[str, Any]:
        return faust_settings_for(KIND, **kwargs)

    def kafka_python_config(self) -> dict[str, Any]:
        return kafka_python_config_for(KIND)

    def node(self, node_id: int) -> KafkaNode:
        return self.nodes[node_id - 1]

    def start(self, timeout: float = 120.0) -> "KafkaCluster":
        """Format and start every node; return once all brokers are registered and answer."""
        with self._lock:
            if self.nodes:
                raise RuntimeError("cluster already started")
            lib = installed_lib_dir()  # FileNotFoundError says which command fetches it
            deadline = time.monotonic() + timeout
            for attempt in (1, 2):  # a port taken between free_port() and the JVM's bind: new ports
                atexit.register(self.stop)
                try:
                    self.root = Path(tempfile.mkdtemp(prefix=f"kafka-{self.size}n-"))
                    self._layout()
                    self._format_all(lib, deadline)
                    for node in self.nodes:
                        self._spawn(node, lib)
                    self._wait_registered(deadline)
                    return self
                except BaseException as exc:
                    tails = self._log_tails()
                    exited = any(n.proc is not None and n.proc.poll() is not None for n in self.nodes)
                    self.stop()
                    if not isinstance(exc, Exception):
                        raise
                    if attempt == 1 and exited and time.monotonic() < deadline:
                        continue
                    raise RuntimeError(f"Apache Kafka ({self.size} node(s)) failed to start: {exc}\n{tails}") from exc
            raise AssertionError("unreachable")

    def stop(self, timeout: float = 15.0) -> None:
        """End every node (SIGTERM, then SIGKILL after ``timeout``) and remove the temp dir.  Idempotent."""
        with self._lock:
            live = [node for node in self.nodes if node.proc is not None]
            for node in live:
                if node.running:
                    _signal_group(node.proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            for node in live:
                self._reap(node, max(0.1, deadline - time.monotonic()))
            if self.root is not None:
                shutil.rmtree(self.root, ignore_errors=True)
                self.root = None
            self.nodes = []
            atexit.unregister(self.stop)

    def stop_node(self, node_id: int, timeout: float = 30.0) -> None:
        """SIGTERM one node (controlled shutdown: leadership moves first); data stays on disk."""
        node = self.node(node_id)
        if node.running:
            _signal_group(node.proc.pid, signal.SIGTERM)
        self._reap(node, timeout)

    def kill_node(self, node_id: int) -> None:
        """SIGKILL one node, as a crashed machine would; data stays on disk."""
        node = self.node(node_id)
        if node.running:
            _signal_group(node.proc.pid, signal.SIGKILL)
        self._reap(node, 10.0)

    def start_node(self, node_id: int, timeout: float = 90.0) -> None:
        """Start a stopped or killed node again on its ports with its data; wait until it is back."""
        with self._lock:
            node = self.node(node_id)
            if node.running:
                raise RuntimeError(f"node {node_id} is running")
            self._spawn(node, installed_lib_dir())
            self._wait_registered(time.monotonic() + timeout, only=node)

    def restart_node(self, node_id: int, *, kill: bool = False, timeout: float = 90.0) -> None:
        (self.kill_node if kill else self.stop_node)(node_id)
        self.start_node(node_id, timeout=timeout)

    def __enter__(self) -> "KafkaCluster":
        return self.start() if not self.nodes else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"KafkaCluster(nodes={self.size}, version={self.version!r}, bootstrap={self.bootstrap!r})"

    # -- internals ---------------------------------------------------------

    def _layout(self) -> None:
        assert self.root is not None
        ports = _distinct_free_ports(2 * self.size)
        for i in range(self.size):
            home = self.root / f"node-{i + 1}"
            self.nodes.append(KafkaNode(node_id=i + 1, port=ports[2 * i], controller_port=ports[2 * i + 1],
                                        home=home, data_dir=home / "data"))
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.nodes)
        replicas = self.size
        min_isr = 2 if self.size >= 3 else 1
        for node in self.nodes:
            node.home.mkdir(parents=True)
            config = {
                "process.roles": "broker,controller",
                "node.id": node.node_id,
                "controller.quorum.voters": voters,
                "listeners": f"PLAINTEXT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}",
                "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.port}",
                "controller.listener.names": "CONTROLLER",
                "inter.broker.listener.name": "PLAINTEXT",
                "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "log.dirs": str(node.data_dir),
                "default.replication.factor": replicas,
                "min.insync.replicas": min_isr,
                "offsets.topic.replication.factor": replicas,
                "transaction.state.log.replication.factor": replicas,
                "transaction.state.log.min.isr": min_isr,
                "share.coordinator.state.topic.replication.factor": replicas,
                "share.coordinator.state.topic.min.isr": min_isr,
                "num.network.threads": 2,
                "num.io.threads": 2,
                "group.initial.rebalance.delay.ms": 0,  # see the module docstring
                "log.retention.ms": -1,  # see the module docstring: generated events are ~2 years old
                **self.extra_config,
            }
            node.config_path.write_text("".join(f"{k}={v}\n" for k, v in config.items()))
            (node.home / "log4j2.properties").write_text(_LOG4J2.format(log=node.log_path))

    def _java(self, lib: Path, node: KafkaNode, main: str, *args: str) -> list[str]:
        return [java_binary(), *self.jvm_options, f"-Dlog4j2.configurationFile={node.home / 'log4j2.properties'}",
                "-cp", f"{lib}/*", main, *args]

    def _format_all(self, lib: Path, deadline: float) -> None:
        """``kafka-storage format`` of every node, concurrently (each is a ~2 s JVM start)."""
        procs = []
        for node in self.nodes:
            cmd = self._java(lib, node, "kafka.tools.StorageTool", "format", "-t", self.cluster_id,
                             "-c", str(node.config_path))
            with open(node.home / "format.log", "wb") as out:
                procs.append((node, _popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)))
        for node, proc in procs:
            try:
                code = proc.wait(max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
                raise TimeoutError(f"kafka-storage format of node {node.node_id} did not finish in time") from None
            if code != 0:
                raise RuntimeError(f"kafka-storage format of node {node.node_id} exited {code}: "
                                   f"{(node.home / 'format.log').read_text(errors='replace')[-2000:]}")

    def _spawn(self, node: KafkaNode, lib: Path) -> None:
        cmd = self._java(lib, node, "kafka.Kafka", str(node.config_path))
        # stdout/stderr take what log4j does not (JVM warnings, a crash before logging starts)
        with open(node.home / "stdout.log", "ab") as out:
            node.proc = _popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)

    def _wait_registered(self, deadline: float, only: KafkaNode | None = None) -> None:
        """Until each node (or ``only``) answers metadata and every running node is a registered broker."""
        targets = [only] if only is not None else self.nodes
        for node in targets:
            proc = node.proc
            wait_until_ready(node.address, max(0.5, deadline - time.monotonic()),
                             alive=lambda proc=proc: proc.poll() is None)
        wanted = {n.node_id for n in self.nodes if n.running}
        last: object = None
        while time.monotonic() < deadline:
            last = self._registered_brokers(targets[0].address)
            if last is not None and wanted <= last:
                return
            time.sleep(0.2)
        raise TimeoutError(f"brokers {sorted(wanted)} not all registered in time (metadata lists {last})")

    def _registered_brokers(self, address: str) -> set[int] | None:
        from kafka import KafkaAdminClient

        try:
            admin = KafkaAdminClient(bootstrap_servers=address, request_timeout_ms=3000,
                                     **kafka_python_config_for(KIND))
        except Exception:  # noqa: BLE001 - not answering yet
            return None
        try:
            # DescribeCluster lists fenced brokers too: only unfenced ones take leadership
            return {int(b["broker_id"]) for b in admin.describe_cluster()["brokers"] if not b.get("is_fenced")}
        except Exception:  # noqa: BLE001
            return None
        finally:
            admin.close()

    def _reap(self, node: KafkaNode, timeout: float) -> None:
        proc = node.proc
        if proc is None:
            return
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait(10)
        _signal_group(proc.pid, signal.SIGKILL)  # anything left in its group (none expected)
        node.proc = None

    def _log_tails(self, n: int = 1500) -> str:
        parts = []
        for node in self.nodes:
            for name in ("format.log", "stdout.log", "server.log"):
                path = node.home / name
                if path.is_file() and path.stat().st_size:
                    parts.append(f"--- node {node.node_id} {name} ---\n"
                                 + path.read_bytes()[-n:].decode(errors="replace"))
        return "\n".join(parts)


def _distinct_free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # started with its own session: pgid == pid
    except (ProcessLookupError, PermissionError):
        pass


__all__ = ["JVM_OPTIONS", "KIND", "KafkaCluster", "KafkaNode", "java_binary", "random_cluster_id"]
