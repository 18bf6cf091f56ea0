"""kafka-python clients for the ops commands: broker-kind work-arounds plus SASL/SSL settings."""
from __future__ import annotations

from typing import Any, Dict

from kafka import KafkaAdminClient

from ..kafka.broker import kafka_python_config_for
from .security import kafka_python_config


def client_config(settings) -> Dict[str, Any]:
    """Keyword arguments every kafka-python client of these settings needs."""
    return {**kafka_python_config_for(settings.broker_profile), **kafka_python_config(settings)}


class Admin(KafkaAdminClient):
    """KafkaAdminClient that tolerates unknown bits in ``authorized_operations``.

    tansu answers DescribeGroups with an authorized-operations bit kafka-python has no
    enum member for (15) and kafka-python then raises ValueError for the whole answer;
    the ops tools never need those operations, so they are dropped when unknown.
    """

    def _process_acl_operations(self, obj):
        try:
            return super()._process_acl_operations(obj)
        except ValueError:
            obj["authorized_operations"] = None
            return obj


def admin(settings, timeout: float = 15.0) -> Admin:
    ms = int(timeout * 1000)
    return Admin(bootstrap_servers=settings.bootstrap, request_timeout_ms=ms, bootstrap_timeout_ms=ms,
                 **client_config(settings))
