"""Schemathesis against each service's own OpenAPI, all built-in checks: no 5xx, no violations."""

from __future__ import annotations

import time
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.config import SchemathesisConfig

from tests.support.stack import (
    DEVICE_SECRET,
    OPERATOR_SECRET,
    Service,
)


def _now_timestamps(body: Any) -> None:
    """Move timestamps into the accepted window, which depends on the clock, not the schema."""
    readings = body.get("readings", [body]) if isinstance(body, dict) else []
    for reading in readings if isinstance(readings, list) else []:
        if isinstance(reading, dict) and "timestamp" in reading:
            reading["timestamp"] = time.time_ns() // 1_000_000


# OpenAPI cannot state rules across fields (min_percent < max_percent, `from` before `to`, a
# range no longer than its bucket allows): a schema-valid request may break one and get a 422
# naming it. Every check runs; this one also takes 422 as an answer to schema-valid data.
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "422", "429"]
            }
        }
    }
)


def fuzz(base_url: str, *, secret: str, max_examples: int) -> None:
    """Positive and negative cases for every operation; every built-in check must pass."""
    schema = schemathesis.openapi.from_url(base_url + "/openapi.json", config=CONFIG)
    positive = schema.as_strategy(GenerationMode.POSITIVE).map(lambda case: (True, case))
    negative = schema.as_strategy(GenerationMode.NEGATIVE).map(lambda case: (False, case))

    @given(generated=st.one_of(positive, negative))
    @settings(max_examples=max_examples, deadline=None, suppress_health_check=list(HealthCheck))
    def check(generated: tuple[bool, Case[Any]]) -> None:
        is_positive, case = generated
        if is_positive:
            _now_timestamps(case.body)
        case.call_and_validate(base_url=base_url, headers={"X-API-Key": secret}, timeout=15)

    check()


@pytest.mark.timeout(90)
def test_gateway_honours_its_openapi(gateway: Service, ingestion: Service) -> None:
    fuzz(gateway.url, secret=DEVICE_SECRET, max_examples=150)


@pytest.mark.timeout(90)
def test_operator_services_honour_their_openapi(operator_service: Service) -> None:
    fuzz(operator_service.url, secret=OPERATOR_SECRET, max_examples=150)
