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
