"""Spark Structured Streaming: Kafka -> 10 s candles and raw trades -> store."""
