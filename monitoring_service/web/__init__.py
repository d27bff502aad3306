"""The operators' web console: static files (`static/`), its own API and the push channel."""
