"""Batch loading into the store, no Kafka or Spark: tapes (and published history)."""
