"""Is a Kafka broker there? Cheap probes used before any kafka-python client is made."""
from __future__ import annotations

import socket
from typing import Mapping

LOOPBACK = "127.0.0.1"


def reachable(bootstrap: str, timeout_s: float = 0.5) -> bool:
    """True when any of the comma-separated `host:port`s accepts a TCP connection.

    Check this before making a kafka-python client: kafka-python 3.0.12 leaks a socket per
    refused connect attempt (ResourceWarning) and waits out its bootstrap timeout.
    """
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            with socket.create_connection((host or LOOPBACK, int(port)), timeout=timeout_s):
                return True
        except (OSError, ValueError):
            continue
    return False


def answers_metadata(bootstrap: str, timeout_s: float = 2.0, security: Mapping | None = None) -> bool:
    """True when a broker at `bootstrap` answers a metadata request and lists itself (`security`: the
    kafka_security.client_config of the principal asking; a refused login counts as no answer)."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    if not reachable(bootstrap):
        return False
    admin = None
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000),
                                 bootstrap_timeout_ms=int(timeout_s * 1000), client_id="borderfuse-probe",
                                 **(security or {}))
        admin.list_topics()
        return bool(admin.describe_cluster().get("brokers"))
    except (KafkaError, OSError, ValueError):
        return False
    finally:
        if admin is not None:
            admin.close()
