"""All configuration, read from environment variables (Faust convention: every
setting is also an env var). The configuration table in docs/configuration.md is generated from
``SETTINGS`` below (``clvstream settings`` prints it), so code and docs agree.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Mapping, Optional

from .core.aggregation import PopulationConfig
from .core.clv import FormulaConfig
from .core.engine import EngineConfig
from .core.events import DAY_MS
from .core.prediction import PredictionConfig
from .core.policies import MatrixPolicy, load_policy_file
from .core.validation import EdgeRules


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _env(name, default, cast=str, doc="", secret=False):
    # repr=False: a Settings object in a traceback or log line never shows a secret
    return field(default=default, repr=not secret, metadata={"env": name, "cast": cast, "doc": doc, "secret": secret})


MASK = "****"
# Kafka's default message.max.bytes is about 1 MB: a bigger bound would only move the failure to the broker.
MAX_PAYLOAD_CEILING = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    # Kafka and Faust
    broker: str = _env("CLV_BROKER", "kafka://127.0.0.1:9092", doc="Kafka bootstrap URL(s), Faust syntax (`kafka://host:port;host2:port`).")
    broker_kind: str = _env("CLV_BROKER_KIND", "kafka", doc="`kafka` (Apache Kafka), `tansu` or `rdkafka-mock`: applies the workarounds a test broker needs (see docs/brokers.md).")
    app_id: str = _env("CLV_APP_ID", "clvstream", doc="Faust application id: consumer group and prefix of internal topics. A what-if replay uses another id.")
    data_dir: str = _env("CLV_DATA_DIR", "./var/clvstream", doc="Local state (RocksDB) directory.")
    store: str = _env("CLV_STORE", "rocksdb://", doc="Table store: `rocksdb://` (rocksdict) or `memory://`.")
    partitions: int = _env("CLV_PARTITIONS", 8, int, doc="Partitions of the input topics and the state table (must match the topics).")
    replication_factor: int = _env("CLV_REPLICATION_FACTOR", 1, int, doc="Replicas of every topic the engine creates (`clvstream topics provision`, Faust's changelog): the cluster's replication factor in production (3 on a 3-broker cluster with `min.insync.replicas=2`).")
    session_timeout_s: float = _env("CLV_SESSION_TIMEOUT", 10.0, float, doc="Consumer group session timeout, seconds.")
    standby_replicas: int = _env("CLV_STANDBY_REPLICAS", 0, int, doc="Faust standby replicas of the state table (warm copies on other workers). 0 by default: with Faust's default of 1, a standby promoted to active during rebalances under CPU load served states it did not have (orders lost in the 3-node fault tests; none without standbys). A takeover then restores the partition from the changelog (`clvstream restore` for large states).")
    web_host: str = _env("CLV_WEB_HOST", "127.0.0.1", doc="Bind address of the worker's web server (metrics, API).")
    web_port: int = _env("CLV_WEB_PORT", 6066, int, doc="Port of the worker's web server.")
    web_advertised_url: str = _env("CLV_WEB_ADVERTISED_URL", "", doc="URL other workers use to reach this worker's web server (customer lookups are forwarded to the key's owner); empty: `http://<CLV_WEB_HOST or the host name>:<CLV_WEB_PORT>`.")
    api_token: str = _env("CLV_API_TOKEN", "", doc="If set, `/customers/...`, `/segments` and `/ui/data` require `Authorization: Bearer <token>` (not `/metrics`, `/health`, `/ready`, the `/ui` page itself).")
    topic_orders: str = _env("CLV_TOPIC_ORDERS", "clv.orders", doc="Orders and refunds (keyed by customer id).")
    topic_interactions: str = _env("CLV_TOPIC_INTERACTIONS", "clv.interactions", doc="Service contacts, complaints, NPS, CES, referrals, reviews.")
    topic_customers: str = _env("CLV_TOPIC_CUSTOMERS", "clv.customers", doc="Signups and profile updates.")
    topic_segment_changes: str = _env("CLV_TOPIC_SEGMENT_CHANGES", "clv.segment-changes", doc="Output: segment changes for campaign engines.")
    topic_dead_letter: str = _env("CLV_TOPIC_DEAD_LETTER", "clv.dead-letter", doc="Output: rejected input with the reason.")
    topic_model_parameters: str = _env("CLV_TOPIC_MODEL_PARAMETERS", "clv.model-parameters", doc="Compacted topic of fitted BG/NBD + Gamma-Gamma parameters; every worker follows it.")
    # Security: passed to the Faust worker (broker_credentials) and to every ops client (streams/ops/security.py)
    security_protocol: str = _env("CLV_BROKER_SECURITY_PROTOCOL", "PLAINTEXT", doc="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.")
    sasl_mechanism: str = _env("CLV_SASL_MECHANISM", "PLAIN", doc="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (with a SASL_* protocol).")
    sasl_username: str = _env("CLV_SASL_USERNAME", "", doc="SASL user name.")
    sasl_password: str = _env("CLV_SASL_PASSWORD", "", doc="SASL password (never printed: show-settings masks it).", secret=True)
    ssl_cafile: str = _env("CLV_SSL_CAFILE", "", doc="CA bundle (PEM) to verify the brokers (SSL, SASL_SSL); empty: system CAs.")
    ssl_certfile: str = _env("CLV_SSL_CERTFILE", "", doc="Client certificate (PEM) for mutual TLS.")
    ssl_keyfile: str = _env("CLV_SSL_KEYFILE", "", doc="Client private key (PEM) for mutual TLS.")
    ssl_key_password: str = _env("CLV_SSL_KEY_PASSWORD", "", doc="Password of the client key (never printed).", secret=True)
    # The live path (streams/topology.py): events settle together at checkpoints
    live_path: str = _env("CLV_LIVE_PATH", "checkpointed", doc="`checkpointed`: events are taken in batches and settle together at a checkpoint (outputs sent and flushed, then the changed states written, then the offsets acknowledged); `per-event`: each event's outputs are acknowledged before its state write (slower; kept for comparison).")
    checkpoint_records: int = _env("CLV_CHECKPOINT_RECORDS", 1000, int, doc="Checkpoint after at most this many records (checkpointed live path).")
    checkpoint_interval_ms: int = _env("CLV_CHECKPOINT_INTERVAL_MS", 40, int, doc="...or when this many milliseconds passed without the batch filling up: the bound on the latency a checkpoint adds.")
    processing_guarantee: str = _env("CLV_PROCESSING_GUARANTEE", "at_least_once", doc="`at_least_once`: outputs may repeat after a crash or a rebalance, each with the same `(customer_id, sequence)` and content; `exactly_once`: per checkpoint, one Kafka transaction per input partition holds its outputs, its changelog records and its input offsets (streams/eos.py; `read_committed` readers then see each change once). Needs a broker with transactions (not tansu or the librdkafka mock) and the checkpointed live path. Measured in docs/operations.md.")
    fetch_max_wait_ms: int = _env("CLV_FETCH_MAX_WAIT_MS", 100, int, doc="Longest wait of the worker's consumer for a fetch to fill (Faust hard-codes 1,500 ms; a parked fetch delays fresh records on some brokers).")
    # Topic provisioning (clvstream topics provision / check)
    input_retention_days: float = _env("CLV_INPUT_RETENTION_DAYS", -1.0, float, doc="Retention of the input topics; -1 keeps them forever, which `clvstream rebuild` needs to replay from the start.")
    output_retention_days: float = _env("CLV_OUTPUT_RETENTION_DAYS", 30.0, float, doc="Retention of segment changes and dead letters (-1: forever).")
    replay: bool = _env("CLV_REPLAY", False, _bool, doc="Mark produced segment changes as `replay: true` (set while rebuilding from history).")
    # Edge rules
    currencies: str = _env("CLV_CURRENCIES", "EUR", doc="Comma-separated accepted currencies; others are dead-lettered (no FX conversion in the engine).")
    max_payload_bytes: int = _env("CLV_MAX_PAYLOAD_BYTES", 65536, int, doc="Larger records are dead-lettered as too_large.")
    max_future_skew_s: float = _env("CLV_MAX_FUTURE_SKEW", 86400.0, float, doc="Event time may lead its record timestamp by at most this, seconds.")
    lateness_days: float = _env("CLV_LATENESS_DAYS", 7.0, float, doc="Allowed out-of-orderness per customer; older events are dead-lettered as late.")
    # Formula CLV
    clv_basis: str = _env("CLV_BASIS", "margin", doc="`margin` (after goods, service, logistics costs and refunds) or `revenue`.")
    clv_lifetime_years: float = _env("CLV_EXPECTED_LIFETIME_YEARS", 3.0, float, doc="Expected customer lifetime in the formula CLV.")
    clv_prior_rate: float = _env("CLV_PRIOR_PURCHASES_PER_YEAR", 2.0, float, doc="Prior purchase rate for customers with little history.")
    clv_prior_weight: float = _env("CLV_PRIOR_WEIGHT_YEARS", 1.0, float, doc="How many years of observation the prior counts for.")
    clv_default_order_value: float = _env("CLV_DEFAULT_ORDER_VALUE", 25.0, float, doc="Value per order for customers without orders.")
    clv_default_acquisition_cost: float = _env("CLV_DEFAULT_ACQUISITION_COST", 0.0, float, doc="Used when a customer has no signup event with a cost.")
    # Predicted / potential CLV (BG/NBD + Gamma-Gamma)
    model_params_file: str = _env("CLV_MODEL_PARAMS_FILE", "", doc="Pin model parameters from a JSON file instead of following the topic (deterministic replays).")
    model_time_unit: str = _env("CLV_MODEL_TIME_UNIT", "weeks", doc="Time unit of fitted parameters: days or weeks (scoring uses the unit stored with the parameters).")
    horizon_days: float = _env("CLV_HORIZON_DAYS", 365.0, float, doc="Horizon of predicted and potential CLV.")
    horizon_steps: int = _env("CLV_HORIZON_STEPS", 12, int, doc="Discounting periods within the horizon.")
    discount_rate: float = _env("CLV_DISCOUNT_RATE", 0.10, float, doc="Annual discount rate of predicted CLV.")
    at_risk_p_alive: float = _env("CLV_AT_RISK_P_ALIVE", 0.5, float, doc="A customer whose P(alive) falls below this is at risk of churn (low loyalty).")
    # Segmentation policy
    policy_file: str = _env("CLV_POLICY_FILE", "", doc="Segmentation policy file (YAML: matrix, criteria or rfm; see docs/policies.md). Empty: the value x loyalty matrix from the settings below.")
    # Value x loyalty matrix (the default policy)
    value_metric: str = _env("CLV_VALUE_METRIC", "formula", doc="CLV figure for the value axis: formula, predicted, historical_margin, historical_revenue.")
    high_value_threshold: float = _env("CLV_HIGH_VALUE_THRESHOLD", 500.0, float, doc="High value at or above this CLV.")
    loyalty_min_orders: int = _env("CLV_LOYALTY_MIN_ORDERS_365D", 2, int, doc="High loyalty needs at least this many orders in 365 days...")
    loyalty_max_recency_days: int = _env("CLV_LOYALTY_MAX_RECENCY_DAYS", 120, int, doc="...and an order within this many days...")
    loyalty_min_last_nps: int = _env("CLV_LOYALTY_MIN_LAST_NPS", 7, int, doc="...and a last NPS answer (if any) of at least this.")
    hysteresis: float = _env("CLV_HYSTERESIS", 0.1, float, doc="Relative band a dimension must fall past before a customer drops (stops flapping).")
    # Population figures (per segment, global cut-offs)
    churn_days: float = _env("CLV_CHURN_DAYS", 365.0, float, doc="Without a fitted model, a customer whose last order is older than this at its latest assessment counts as churned (with a model: P(alive) below `CLV_AT_RISK_P_ALIVE`).")
    population_publish_interval_s: float = _env("CLV_POPULATION_PUBLISH_INTERVAL", 5.0, float, doc="Seconds between publications of a worker's latest partition figures to `<CLV_APP_ID>-population`, which every worker merges for `/segments` and the per-segment metrics (decisions use the versioned cuts, published as they are made).")
    population_period_days: float = _env("CLV_POPULATION_PERIOD_DAYS", 1.0, float, doc="Event time between population versions: relative cut-offs are cut at these boundaries and decide from the next one on, so replays meet the same versions.")
    population_idle_timeout_s: float = _env("CLV_POPULATION_IDLE_TIMEOUT", 60.0, float, doc="Wall-clock seconds a record may wait for a lagging partition's cut before that partition is declared idle (decisions then name `~partial` versions: the one place determinism is given up).")

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> "Settings":
        env = os.environ if env is None else env
        values = {}
        for f in fields(cls):
            name = f.metadata["env"]
            if name in env:
                try:
                    values[f.name] = f.metadata["cast"](env[name])
                except ValueError as exc:
                    raise ValueError(f"{name}={env[name]!r}: {exc}") from None
        settings = cls(**values)
        settings.engine_config()  # fail at start-up, not on the first event
        settings.prediction_config()
        if min(settings.churn_days, settings.population_publish_interval_s, settings.population_period_days,
               settings.population_idle_timeout_s) <= 0:
            raise ValueError("CLV_CHURN_DAYS, CLV_POPULATION_PUBLISH_INTERVAL, CLV_POPULATION_PERIOD_DAYS and "
                             "CLV_POPULATION_IDLE_TIMEOUT must be positive")
        from .ops.security import check as check_security

        check_security(settings)
        if not 0 < settings.max_payload_bytes <= MAX_PAYLOAD_CEILING:
            raise ValueError(f"CLV_MAX_PAYLOAD_BYTES must be between 1 and {MAX_PAYLOAD_CEILING}")
        if settings.live_path not in ("checkpointed", "per-event"):
            raise ValueError(f"CLV_LIVE_PATH must be checkpointed or per-event, not {settings.live_path!r}")
        if settings.processing_guarantee not in ("at_least_once", "exactly_once"):
            raise ValueError("CLV_PROCESSING_GUARANTEE must be at_least_once or exactly_once, "
                             f"not {settings.processing_guarantee!r}")
        if settings.exactly_once:
            from .kafka.broker import BROKER_TRAITS

            traits = BROKER_TRAITS.get(settings.broker_kind)
            if traits is not None and not traits.transactions_honoured:
                raise ValueError(f"CLV_PROCESSING_GUARANTEE=exactly_once needs Kafka transactions, which "
                                 f"CLV_BROKER_KIND={settings.broker_kind} does not honour (docs/brokers.md)")
            if settings.live_path != "checkpointed":
                raise ValueError("CLV_PROCESSING_GUARANTEE=exactly_once needs CLV_LIVE_PATH=checkpointed")
        if settings.replication_factor < 1:
            raise ValueError("CLV_REPLICATION_FACTOR must be at least 1")
        if settings.standby_replicas < 0:
            raise ValueError("CLV_STANDBY_REPLICAS must be 0 or more")
        if min(settings.checkpoint_records, settings.checkpoint_interval_ms, settings.fetch_max_wait_ms) <= 0:
            raise ValueError("CLV_CHECKPOINT_RECORDS, CLV_CHECKPOINT_INTERVAL_MS and CLV_FETCH_MAX_WAIT_MS must be positive")
        if settings.model_time_unit not in ("days", "weeks"):
            raise ValueError(f"CLV_MODEL_TIME_UNIT must be days or weeks, not {settings.model_time_unit!r}")
        return settings

    @property
    def exactly_once(self) -> bool:
        return self.processing_guarantee == "exactly_once"

    @property
    def broker_profile(self) -> str:
        """The broker kind as streams/kafka/broker.py names it ("external" for a real Kafka)."""
        return "external" if self.broker_kind == "kafka" else self.broker_kind

    @property
    def bootstrap(self) -> str:
        """kafka-python style bootstrap list from the Faust broker URL."""
        return ",".join(u.split("://", 1)[-1] for u in self.broker.replace(",", ";").split(";"))

    @property
    def advertised_url(self) -> str:
        """Faust's canonical URL: where the query API forwards a lookup for a key this worker owns."""
        if self.web_advertised_url:
            return self.web_advertised_url.rstrip("/")
        import socket

        host = self.web_host if self.web_host not in ("", "0.0.0.0", "::") else socket.gethostname()
        return f"http://{host}:{self.web_port}"

    def edge_rules(self) -> EdgeRules:
        return EdgeRules(accepted_currencies=frozenset(c.strip() for c in self.currencies.split(",") if c.strip()),
                         max_payload_bytes=self.max_payload_bytes,
                         max_future_skew_ms=int(self.max_future_skew_s * 1000))

    def engine_config(self) -> EngineConfig:
        currency = self.currencies.split(",")[0].strip()
        return EngineConfig(
            lateness_ms=int(self.lateness_days * DAY_MS),
            formula=FormulaConfig(basis=self.clv_basis, expected_lifetime_years=self.clv_lifetime_years,
                                  prior_purchases_per_year=self.clv_prior_rate,
                                  prior_weight_years=self.clv_prior_weight,
                                  default_order_value=self.clv_default_order_value,
                                  default_acquisition_cost=self.clv_default_acquisition_cost,
                                  currency=currency),
            policy=self.policy())

    def policy(self):
        """The active segmentation policy: the policy file, else the matrix from the CLV_* settings.
        A bad file raises PolicyFileError naming each problem's line and field."""
        if self.policy_file:
            return load_policy_file(self.policy_file)
        return MatrixPolicy(value_metric=self.value_metric, high_value_threshold=self.high_value_threshold,
                            loyalty_min_orders_365d=self.loyalty_min_orders,
                            loyalty_max_recency_days=self.loyalty_max_recency_days,
                            loyalty_min_last_nps=self.loyalty_min_last_nps, hysteresis=self.hysteresis,
                            at_risk_p_alive=self.at_risk_p_alive)

    def population_period_ms(self) -> int:
        return int(round(self.population_period_days * DAY_MS))

    def population_config(self) -> PopulationConfig:
        return PopulationConfig.for_policy(self.engine_config().policy, churn_days=self.churn_days,
                                          at_risk_p_alive=self.at_risk_p_alive)

    def prediction_config(self) -> PredictionConfig:
        return PredictionConfig(horizon_days=self.horizon_days, steps=self.horizon_steps,
                                annual_discount_rate=self.discount_rate, basis=self.clv_basis)

    def with_env(self) -> dict:
        """The env vars that reproduce these settings (for child processes)."""
        return {f.metadata["env"]: str(getattr(self, f.name)) for f in fields(self)}


def settings_values(settings: Settings) -> str:
    """Current value of every setting, secrets masked (what `clvstream show-settings` prints)."""
    rows = []
    for f in fields(Settings):
        value = getattr(settings, f.name)
        shown = MASK if f.metadata["secret"] and value else value
        rows.append(f"{f.metadata['env']}={shown}")
    return "\n".join(rows)


def settings_table() -> str:
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for f in fields(Settings):
        rows.append(f"| `{f.metadata['env']}` | `{f.default}` | {f.metadata['doc']} |")
    return "\n".join(rows)
