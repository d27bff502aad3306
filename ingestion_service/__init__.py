"""Ingestion consumer: stores telemetry batches from RabbitMQ in the database, exactly once."""
