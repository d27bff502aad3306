"""Monitoring service: scheduled fleet reports, stateful alerts and the query API."""
