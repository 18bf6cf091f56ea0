from pathlib import Path

import pytest

from streams.settings import Settings, settings_table

CONFIGURATION_DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_env_overrides_and_engine_config():
    s = Settings.from_env({"CLV_PARTITIONS": "12", "CLV_BASIS": "revenue", "CLV_REPLAY": "yes",
                           "CLV_BROKER": "kafka://a:1;kafka://b:2", "CLV_LATENESS_DAYS": "2"})
    assert s.partitions == 12 and s.replay is True and s.bootstrap == "a:1,b:2"
    cfg = s.engine_config()
    assert cfg.formula.basis == "revenue" and cfg.lateness_ms == 2 * 86_400_000


@pytest.mark.parametrize("env,message", [
    ({"CLV_PARTITIONS": "many"}, "CLV_PARTITIONS"),
    ({"CLV_BASIS": "profit"}, "basis"),
    ({"CLV_HYSTERESIS": "1.5"}, "hysteresis"),
    ({"CLV_LATENESS_DAYS": "400"}, "lateness"),
    ({"CLV_MODEL_TIME_UNIT": "months"}, "CLV_MODEL_TIME_UNIT"),
])
def test_bad_settings_fail_at_start_up(env, message):
    with pytest.raises(ValueError, match=message):
        Settings.from_env(env)


def test_standby_replicas_are_off_unless_asked_for():
    """CLV_STANDBY_REPLICAS: Faust's default of 1 standby lost states on promotion in the cluster fault
    tests under CPU load, so the worker runs without standbys unless told otherwise."""
    from streams.topology import create_app

    assert create_app(Settings()).conf.table_standby_replicas == 0
    assert create_app(Settings.from_env({"CLV_STANDBY_REPLICAS": "1"})).conf.table_standby_replicas == 1
    with pytest.raises(ValueError, match="CLV_STANDBY_REPLICAS"):
        Settings.from_env({"CLV_STANDBY_REPLICAS": "-1"})


def test_docs_document_every_setting():
    assert settings_table() in CONFIGURATION_DOC.read_text(), \
        "docs/configuration.md's table is stale: paste `clvstream show-settings --defaults`"


def test_child_env_round_trips():
    s = Settings.from_env({"CLV_PARTITIONS": "3", "CLV_HIGH_VALUE_THRESHOLD": "750"})
    assert Settings.from_env(s.with_env()) == s


def test_topic_specs_list_a_merged_input_topic_once():
    from dataclasses import replace

    from streams.demo import topic_specs

    merged = replace(Settings(), topic_interactions="clv.orders", topic_customers="clv.orders")
    names = [t.name for t in topic_specs(merged)]
    assert len(names) == len(set(names)) and "clv.orders" in names
    assert {"clvstream-customer-state-changelog", "clvstream-rekey", "clvstream-redrive"} <= set(names)


def test_churn_uses_the_at_risk_setting_for_policies_without_their_own():
    from dataclasses import replace as _replace

    from streams.settings import Settings as _Settings

    rfm = _replace(_Settings(), policy_file="deploy/policies/rfm.yaml", at_risk_p_alive=0.3)
    assert rfm.population_config().at_risk_p_alive == 0.3
    matrix = _replace(_Settings(), at_risk_p_alive=0.3)  # the matrix carries its own threshold from the setting
    assert matrix.population_config().at_risk_p_alive == 0.3


def test_replication_factor_reaches_every_topic_and_faust():
    """CLV_REPLICATION_FACTOR: every provisioned topic and the topics Faust creates itself (its changelog)
    get the cluster's replication factor, not the default 1 a broker kill would take offline."""
    from streams.topics import topic_specs
    from streams.topology import create_app

    settings = Settings.from_env({"CLV_REPLICATION_FACTOR": "3"})
    assert {spec.replication_factor for spec in topic_specs(settings)} == {3}
    assert create_app(settings).conf.topic_replication_factor == 3
    with pytest.raises(ValueError, match="CLV_REPLICATION_FACTOR"):
        Settings.from_env({"CLV_REPLICATION_FACTOR": "0"})
