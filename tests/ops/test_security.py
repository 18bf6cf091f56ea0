"""SASL/SSL settings from the environment reach every client library; secrets are never shown."""
from __future__ import annotations

import ssl

import pytest

from streams.ops import security
from streams.ops.clients import client_config
from streams.settings import MASK, Settings, settings_values

SASL_SSL = {"CLV_BROKER_SECURITY_PROTOCOL": "SASL_SSL", "CLV_SASL_MECHANISM": "SCRAM-SHA-512",
            "CLV_SASL_USERNAME": "clv-worker", "CLV_SASL_PASSWORD": "s3cret-pw"}


def test_plaintext_is_the_default_and_adds_nothing():
    s = Settings.from_env({})
    assert security.kafka_python_config(s) == security.aiokafka_config(s) == security.faust_credentials(s) == {}


def test_sasl_ssl_reaches_kafka_python_aiokafka_and_faust():
    s = Settings.from_env(SASL_SSL)
    kp = security.kafka_python_config(s)
    assert kp == {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
                  "sasl_plain_username": "clv-worker", "sasl_plain_password": "s3cret-pw",
                  "ssl_check_hostname": True}
    aio = security.aiokafka_config(s)
    assert aio["security_protocol"] == "SASL_SSL" and isinstance(aio["ssl_context"], ssl.SSLContext)
    assert aio["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    creds = security.faust_credentials(s)["broker_credentials"]
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    auth = credentials_to_aiokafka_auth(creds)
    assert auth["security_protocol"] == "SASL_SSL" and auth["sasl_mechanism"] == "SCRAM-SHA-512"
    assert auth["sasl_plain_username"] == "clv-worker" and auth["sasl_plain_password"] == "s3cret-pw"
    assert client_config(s)["sasl_plain_password"] == "s3cret-pw"  # ops commands use it too


def test_sasl_plaintext_and_mutual_tls(tmp_path):
    s = Settings.from_env({**SASL_SSL, "CLV_BROKER_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "CLV_SASL_MECHANISM": "plain"})
    assert security.kafka_python_config(s)["sasl_mechanism"] == "PLAIN"
    assert "ssl_context" not in security.aiokafka_config(s)
    tls = Settings.from_env({"CLV_BROKER_SECURITY_PROTOCOL": "SSL", "CLV_SSL_CAFILE": "/etc/ca.pem",
                             "CLV_SSL_CERTFILE": "/etc/c.pem", "CLV_SSL_KEYFILE": "/etc/k.pem",
                             "CLV_SSL_KEY_PASSWORD": "kp"})
    assert security.kafka_python_config(tls) == {
        "security_protocol": "SSL", "ssl_check_hostname": True, "ssl_cafile": "/etc/ca.pem",
        "ssl_certfile": "/etc/c.pem", "ssl_keyfile": "/etc/k.pem", "ssl_password": "kp"}


@pytest.mark.parametrize("env, message", [
    ({"CLV_BROKER_SECURITY_PROTOCOL": "TLS"}, "CLV_BROKER_SECURITY_PROTOCOL"),
    ({"CLV_BROKER_SECURITY_PROTOCOL": "SASL_SSL", "CLV_SASL_USERNAME": "u"}, "CLV_SASL_PASSWORD"),
    ({**SASL_SSL, "CLV_SASL_MECHANISM": "GSSAPI"}, "CLV_SASL_MECHANISM"),
    ({"CLV_BROKER_SECURITY_PROTOCOL": "SSL", "CLV_SSL_CERTFILE": "/c.pem"}, "CLV_SSL_KEYFILE"),
    ({"CLV_MAX_PAYLOAD_BYTES": str(8 * 1024 * 1024)}, "CLV_MAX_PAYLOAD_BYTES"),
    ({"CLV_MAX_PAYLOAD_BYTES": "0"}, "CLV_MAX_PAYLOAD_BYTES"),
])
def test_inconsistent_settings_fail_at_start(env, message):
    with pytest.raises(ValueError, match=message):
        Settings.from_env(env)


def test_secrets_are_masked_in_show_settings_and_repr():
    s = Settings.from_env({**SASL_SSL, "CLV_SSL_KEY_PASSWORD": "keypw"})
    shown = settings_values(s)
    assert "s3cret-pw" not in shown and "keypw" not in shown
    assert f"CLV_SASL_PASSWORD={MASK}" in shown and "CLV_SASL_USERNAME=clv-worker" in shown
    assert "s3cret-pw" not in repr(s) and "keypw" not in repr(s)
    assert "CLV_SASL_PASSWORD=\n" in settings_values(Settings.from_env({})) + "\n"  # empty is shown empty


def test_ops_client_config_combines_broker_work_arounds_and_sasl_ssl():
    """What redrive, fit, what-if and the offset tools hand to kafka-python, parsed from the environment."""
    s = Settings.from_env({**SASL_SSL, "CLV_SSL_CAFILE": "/etc/kafka/ca.pem", "CLV_BROKER_KIND": "rdkafka-mock"})
    assert client_config(s) == {"api_version": (2, 3), "security_protocol": "SASL_SSL",
                                "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "clv-worker",
                                "sasl_plain_password": "s3cret-pw", "ssl_check_hostname": True,
                                "ssl_cafile": "/etc/kafka/ca.pem"}


CLIENT_BUILDERS = {"KafkaConsumer", "KafkaProducer", "KafkaAdminClient", "AIOKafkaConsumer", "AIOKafkaProducer",
                   "producer", "read_to_end", "latest_values"}


def test_every_kafka_client_outside_the_helpers_gets_a_config():
    """Each command builds its clients with ``**config`` (client_config / aiokafka_config): a client
    built without it silently ignores CLV_SASL_* / CLV_SSL_* (redrive and fit once did). The helpers in
    streams/kafka/ take the config as keywords; the demo runs its own plaintext embedded broker."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "streams"
    missing = []
    for path in sorted(root.rglob("*.py")):
        if path.parent.name == "kafka" or path.name == "demo.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if name in CLIENT_BUILDERS and not any(k.arg is None for k in node.keywords):
                    missing.append(f"{path.relative_to(root.parent)}:{node.lineno} {name}")
    assert not missing, missing
