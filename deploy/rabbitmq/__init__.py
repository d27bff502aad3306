"""RabbitMQ deployment: definitions template, config, and the renderer that adds password hashes."""
