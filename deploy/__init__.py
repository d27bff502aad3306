"""Deployment files (compose, nginx, RabbitMQ) and the small tools that go with them."""
