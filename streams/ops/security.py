"""Kafka SASL/SSL settings from the environment, mapped to each client library.

One source (``Settings``: CLV_BROKER_SECURITY_PROTOCOL, CLV_SASL_*, CLV_SSL_*) feeds
Faust (``broker_credentials``), aiokafka (the worker's model-parameter follower) and
kafka-python (every ops command), so a secured cluster needs no code change.
Secrets live in the returned configs only; nothing here logs them.
"""
from __future__ import annotations

import ssl
from typing import Any, Dict

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def check(settings) -> None:
    """Raise ValueError for an inconsistent security configuration (at start-up, not at first connect)."""
    protocol = settings.security_protocol.upper()
    if protocol not in PROTOCOLS:
        raise ValueError(f"CLV_BROKER_SECURITY_PROTOCOL must be one of {PROTOCOLS}, not {settings.security_protocol!r}")
    if protocol.startswith("SASL"):
        if settings.sasl_mechanism.upper() not in MECHANISMS:
            raise ValueError(f"CLV_SASL_MECHANISM must be one of {MECHANISMS}, not {settings.sasl_mechanism!r}")
        if not settings.sasl_username or not settings.sasl_password:
            raise ValueError(f"{protocol} needs CLV_SASL_USERNAME and CLV_SASL_PASSWORD")
    if bool(settings.ssl_certfile) != bool(settings.ssl_keyfile):
        raise ValueError("CLV_SSL_CERTFILE and CLV_SSL_KEYFILE go together (mutual TLS)")


def _uses_ssl(settings) -> bool:
    return settings.security_protocol.upper() in ("SSL", "SASL_SSL")


def ssl_context(settings) -> ssl.SSLContext:
    """A verifying client TLS context (CA file or system CAs, optional client certificate)."""
    context = ssl.create_default_context(cafile=settings.ssl_cafile or None)
    if settings.ssl_certfile:
        context.load_cert_chain(settings.ssl_certfile, settings.ssl_keyfile or None,
                                password=settings.ssl_key_password or None)
    return context


def _protocol_and_sasl(settings) -> Dict[str, Any]:
    """What kafka-python and aiokafka share: the protocol and the SASL login (same keyword names)."""
    protocol = settings.security_protocol.upper()
    conf: Dict[str, Any] = {"security_protocol": protocol}
    if protocol.startswith("SASL"):
        conf.update(sasl_mechanism=settings.sasl_mechanism.upper(), sasl_plain_username=settings.sasl_username,
                    sasl_plain_password=settings.sasl_password)
    return conf


def kafka_python_config(settings) -> Dict[str, Any]:
    """kafka-python producer/consumer/admin keyword arguments (empty for PLAINTEXT)."""
    if settings.security_protocol.upper() == "PLAINTEXT":
        return {}
    conf = _protocol_and_sasl(settings)
    if _uses_ssl(settings):
        conf["ssl_check_hostname"] = True
        if settings.ssl_cafile:
            conf["ssl_cafile"] = settings.ssl_cafile
        if settings.ssl_certfile:
            conf.update(ssl_certfile=settings.ssl_certfile, ssl_keyfile=settings.ssl_keyfile)
            if settings.ssl_key_password:
                conf["ssl_password"] = settings.ssl_key_password
    return conf


def aiokafka_config(settings) -> Dict[str, Any]:
    """aiokafka client keyword arguments (same names as kafka-python, TLS as a context)."""
    if settings.security_protocol.upper() == "PLAINTEXT":
        return {}
    conf = _protocol_and_sasl(settings)
    if _uses_ssl(settings):
        conf["ssl_context"] = ssl_context(settings)
    return conf


def faust_credentials(settings) -> Dict[str, Any]:
    """Faust App settings: ``broker_credentials`` (SASL, SASL over TLS or TLS), empty for PLAINTEXT."""
    import faust

    protocol = settings.security_protocol.upper()
    if protocol == "PLAINTEXT":
        return {}
    context = ssl_context(settings) if _uses_ssl(settings) else None
    if protocol.startswith("SASL"):
        return {"broker_credentials": faust.SASLCredentials(
            username=settings.sasl_username, password=settings.sasl_password,
            mechanism=settings.sasl_mechanism.upper(), ssl_context=context)}
    return {"broker_credentials": faust.SSLCredentials(context)}
