"""The development Kafka broker: fetch the jars, run a single-node KRaft broker on loopback (never used by the service)."""
