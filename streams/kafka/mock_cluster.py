"""Launcher for librdkafka's in-process mock Kafka cluster.

Run as ``python -m streams.kafka.mock_cluster --brokers N``.  It creates a mock
cluster of N brokers listening on free 127.0.0.1 ports, prints exactly one line
``BOOTSTRAP 127.0.0.1:P1,127.0.0.1:P2,...`` on stdout and keeps the cluster
alive until SIGTERM/SIGINT.  :class:`streams.kafka.broker.EmbeddedBroker`
(kind ``"rdkafka-mock"``) starts this module and reads that line.

Why ctypes and not ``confluent_kafka.Producer({"test.mock.num.brokers": N})``:
that also starts a mock cluster (verified), but the Python binding gives no
access to the mock's C API, and the mock does **not implement CreateTopics**
(its ApiVersions list has no key 19; the admin request just drops the
connection) and reports controller id 0 while its brokers are 1..N.  The only
way to create a topic with a chosen partition count is
``rd_kafka_mock_topic_create()``, so this launcher calls librdkafka (the copy
bundled with confluent-kafka) directly.  With ``--control-stdin`` it serves a
tiny line protocol on stdin/stdout::

    CREATE <topic> <partitions> <replication_factor>  ->  OK | ERR <reason>
    PING                                               ->  PONG

and exits when stdin reaches EOF (the owning process went away).
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import glob
import os
import signal
import sys
import threading

_RD_KAFKA_PRODUCER = 0


def _load_librdkafka() -> ctypes.CDLL:
    """Load the librdkafka shipped in the confluent-kafka wheel (or a system one)."""
    candidates: list[str] = []
    try:
        import confluent_kafka  # noqa: F401  (only to locate the bundled library)

        site = os.path.dirname(os.path.dirname(confluent_kafka.__file__))
        candidates += sorted(glob.glob(os.path.join(site, "confluent_kafka.libs", "librdkafka*.so*")))
    except ImportError:
        pass
    system = ctypes.util.find_library("rdkafka")
    if system:
        candidates.append(system)
    for path in candidates:
        try:
            lib = ctypes.CDLL(path)
            lib.rd_kafka_mock_cluster_new  # noqa: B018  (symbol check)
        except (OSError, AttributeError):
            continue
        break
    else:
        raise RuntimeError(f"no librdkafka with the mock cluster API found (tried {candidates})")

    lib.rd_kafka_conf_new.restype = ctypes.c_void_p
    lib.rd_kafka_conf_set.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p,
                                      ctypes.c_char_p, ctypes.c_size_t]
    lib.rd_kafka_conf_set.restype = ctypes.c_int
    lib.rd_kafka_new.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    lib.rd_kafka_new.restype = ctypes.c_void_p
    lib.rd_kafka_destroy.argtypes = [ctypes.c_void_p]
    lib.rd_kafka_mock_cluster_new.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.rd_kafka_mock_cluster_new.restype = ctypes.c_void_p
    lib.rd_kafka_mock_cluster_destroy.argtypes = [ctypes.c_void_p]
    lib.rd_kafka_mock_cluster_bootstraps.argtypes = [ctypes.c_void_p]
    lib.rd_kafka_mock_cluster_bootstraps.restype = ctypes.c_char_p
    lib.rd_kafka_mock_topic_create.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_int]
    lib.rd_kafka_mock_topic_create.restype = ctypes.c_int
    lib.rd_kafka_err2name.argtypes = [ctypes.c_int]
    lib.rd_kafka_err2name.restype = ctypes.c_char_p
    return lib


class MockCluster:
    """A librdkafka mock cluster owned by this process (memory only)."""

    def __init__(self, brokers: int = 1, debug: str | None = None) -> None:
        self._lib = lib = _load_librdkafka()
        errstr = ctypes.create_string_buffer(512)
        conf = lib.rd_kafka_conf_new()
        settings = [("client.id", "clvstream-mock-cluster")]
        if debug:  # librdkafka debug contexts, e.g. "mock" or "mock,protocol": logged to stderr
            settings.append(("debug", debug))
        for key, value in settings:
            if lib.rd_kafka_conf_set(conf, key.encode(), value.encode(), errstr, len(errstr)) != 0:
                raise RuntimeError(f"rd_kafka_conf_set({key}): {errstr.value.decode()}")
        # A bare producer handle (no bootstrap servers) only hosts the mock's threads.
        self._rk = lib.rd_kafka_new(_RD_KAFKA_PRODUCER, conf, errstr, len(errstr))
        if not self._rk:
            raise RuntimeError(f"rd_kafka_new: {errstr.value.decode()}")
        self._mc = lib.rd_kafka_mock_cluster_new(self._rk, int(brokers))
        if not self._mc:
            lib.rd_kafka_destroy(self._rk)
            raise RuntimeError("rd_kafka_mock_cluster_new failed")
        self.bootstrap: str = lib.rd_kafka_mock_cluster_bootstraps(self._mc).decode()

    def create_topic(self, name: str, partitions: int, replication_factor: int = 1) -> str:
        """Create a topic; returns librdkafka's error name ("NO_ERROR" on success)."""
        err = self._lib.rd_kafka_mock_topic_create(self._mc, name.encode(), int(partitions),
                                                    int(replication_factor))
        return self._lib.rd_kafka_err2name(err).decode()

    def close(self) -> None:
        if self._mc:
            self._lib.rd_kafka_mock_cluster_destroy(self._mc)
            self._mc = None
        if self._rk:
            self._lib.rd_kafka_destroy(self._rk)
            self._rk = None


def _serve_stdin(cluster: MockCluster) -> None:
    for raw in sys.stdin:
        parts = raw.split()
        if not parts:
            continue
        cmd = parts[0].upper()
        if cmd == "PING":
            reply = "PONG"
        elif cmd == "CREATE" and len(parts) == 4:
            try:
                err = cluster.create_topic(parts[1], int(parts[2]), int(parts[3]))
            except ValueError as exc:
                err = f"BAD_REQUEST {exc}"
            reply = "OK" if err == "NO_ERROR" else f"ERR {err}"
        else:
            reply = f"ERR UNKNOWN_COMMAND {raw.strip()!r}"
        sys.stdout.write(reply + "\n")
        sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brokers", type=int, default=1, help="number of mock brokers")
    parser.add_argument("--debug", default=None, help='librdkafka debug contexts, e.g. "mock"')
    parser.add_argument("--control-stdin", action="store_true",
                        help="serve CREATE/PING commands on stdin; exit at EOF")
    args = parser.parse_args(argv)

    stop = threading.Event()

    def _on_signal(signum, frame):  # noqa: ARG001
        if not stop.is_set():  # a second signal must not interrupt the clean-up
            stop.set()
            raise SystemExit(0)

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    cluster = MockCluster(args.brokers, debug=args.debug)
    try:
        print(f"mock cluster with {args.brokers} broker(s) at {cluster.bootstrap}",
              file=sys.stderr, flush=True)
        sys.stdout.write(f"BOOTSTRAP {cluster.bootstrap}\n")
        sys.stdout.flush()
        if args.control_stdin:
            _serve_stdin(cluster)  # returns at EOF: the owner is gone
        else:
            while not stop.wait(1.0):
                pass
    except SystemExit:
        pass
    finally:
        cluster.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
