"""Ingestion: the event contract, synthetic streams and publishing to Kafka."""
