"""HTTP API gateway: authenticates and validates telemetry, publishes it to RabbitMQ."""
