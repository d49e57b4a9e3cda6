"""Kafka: the local broker, topics and the producer."""
