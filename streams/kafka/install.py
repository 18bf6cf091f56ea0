"""Fetch the pinned Apache Kafka broker into a local cache: ``python -m streams.kafka.install``.

The broker's runtime classpath is described by ``deploy/kafka/pom.xml`` (``kafka.version``
pins it).  This module resolves it with Maven into ``var/kafka/<version>/lib`` (git-ignored),
once: a ``.complete`` marker holding the POM's hash makes later runs return at once, and a
changed POM fetches again.  ``make test``, ``make bench`` and ``.ci/run`` run it, so nothing
downloads during the tests; :mod:`streams.kafka.apache` only reads the cache and says to run
this command when it is missing.

Needs ``mvn`` and a Java 17+ runtime on the PATH.  ``CLV_KAFKA_CACHE`` moves the cache root
(default: ``<repo>/var/kafka``).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
POM = ROOT / "deploy" / "kafka" / "pom.xml"
INSTALL_COMMAND = "python -m streams.kafka.install"
_MARKER = ".complete"
_NS = {"m": "http://maven.apache.org/POM/4.0.0"}


def pinned_version(pom: Path = POM) -> str:
    """``kafka.version`` of the POM (the one version tests, bench and deploy files use)."""
    node = ET.parse(pom).getroot().find("m:properties/m:kafka.version", _NS)
    if node is None or not (node.text or "").strip():
        raise ValueError(f"{pom} has no <kafka.version> property")
    return node.text.strip()


def cache_root() -> Path:
    return Path(os.environ.get("CLV_KAFKA_CACHE") or ROOT / "var" / "kafka")


def lib_dir(version: str | None = None) -> Path:
    """Where the jars of ``version`` (default: the pinned one) live once fetched."""
    return cache_root() / (version or pinned_version()) / "lib"


def _pom_digest(pom: Path) -> str:
    return hashlib.sha256(pom.read_bytes()).hexdigest()


def installed_lib_dir(pom: Path = POM) -> Path:
    """The fetched classpath directory; FileNotFoundError (saying what to run) when absent or stale."""
    lib = lib_dir(pinned_version(pom))
    marker = lib / _MARKER
    if not marker.is_file() or marker.read_text().strip() != _pom_digest(pom):
        raise FileNotFoundError(f"Apache Kafka {pinned_version(pom)} is not fetched into {lib}: run "
                                f"`{INSTALL_COMMAND}` (or `make test`, which runs it) first")
    return lib


def install(pom: Path = POM, *, quiet: bool = True) -> Path:
    """Resolve the POM's runtime classpath into the cache (no-op when already there)."""
    try:
        return installed_lib_dir(pom)
    except FileNotFoundError:
        pass
    if shutil.which("mvn") is None:
        raise RuntimeError("mvn (Apache Maven) is not on the PATH: install it (Debian: apt-get install maven)")
    lib = lib_dir(pinned_version(pom))
    lib.parent.mkdir(parents=True, exist_ok=True)
    # Copy into a fresh sibling directory and rename it into place, so an interrupted fetch never
    # leaves a half classpath that looks complete.
    staging = Path(tempfile.mkdtemp(prefix=".lib-", dir=lib.parent))
    try:
        cmd = ["mvn", "-B", "-Dstyle.color=never", "-f", str(pom), "dependency:copy-dependencies", "-DincludeScope=runtime",
               f"-DoutputDirectory={staging}"]
        if quiet:
            cmd.insert(1, "-q")
        subprocess.run(cmd, check=True, cwd=str(pom.parent))
        if not any(staging.glob("kafka_2.13-*.jar")):
            raise RuntimeError(f"Maven resolved no kafka_2.13 jar into {staging}")
        (staging / _MARKER).write_text(_pom_digest(pom) + "\n")
        if lib.exists():
            shutil.rmtree(lib)
        staging.rename(lib)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(pom.parent / "target", ignore_errors=True)
    return lib


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report whether the broker is fetched (exit 1 if not)")
    parser.add_argument("--verbose", action="store_true", help="show Maven's output")
    args = parser.parse_args(argv)
    if args.check:
        try:
            print(installed_lib_dir())
            return 0
        except FileNotFoundError as exc:
            print(exc, file=sys.stderr)
            return 1
    started = time.monotonic()
    lib = install(quiet=not args.verbose)
    print(f"Apache Kafka {pinned_version()}: {lib} ({time.monotonic() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
