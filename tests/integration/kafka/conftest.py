"""The Kafka integration tests share one tansu broker for the session (see tests/kafka_broker.py)."""

from tests.kafka_broker import kafka_bootstrap

__all__ = ["kafka_bootstrap"]
