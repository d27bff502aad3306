"""Pure logic of the monitoring service: gateway rates, slots, settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from common.settings import load_settings
from monitoring_service.figures import GatewaySample
from monitoring_service.gateway_probe import gateway_rates, parse_requests
from monitoring_service.job import thresholds_from
from monitoring_service.report import slot_start
from monitoring_service.rules import RULE_NAMES
from monitoring_service.settings import MonitoringSettings, ReportSettings

EXPOSITION = """# HELP gateway_requests_total Telemetry requests by kind and HTTP status
# TYPE gateway_requests_total counter
gateway_requests_total{kind="megapack",status="202"} 100.0
gateway_requests_total{kind="megapack",status="401"} 3.0
gateway_requests_total{kind="ev",status="422"} 1.0
gateway_requests_created{kind="megapack",status="202"} 1.7e9
# TYPE gateway_readings_accepted_total counter
gateway_readings_accepted_total{kind="megapack"} 5000.0
"""


def sample(at_s: float, requests: dict[str, float]) -> GatewaySample:
    return GatewaySample(
        scraped_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=at_s), requests=requests
    )


def test_request_counters_are_parsed_by_kind_and_status() -> None:
    assert parse_requests(EXPOSITION) == {
        "megapack|202": 100.0,
        "megapack|401": 3.0,
        "ev|422": 1.0,
    }
    assert parse_requests("") == {}


def test_rates_are_the_counter_differences_over_the_elapsed_time() -> None:
    before = sample(0, {"megapack|202": 100, "megapack|401": 3})
    after = sample(10, {"megapack|202": 150, "megapack|401": 5, "ev|503": 4})
    rates = gateway_rates(before, after)
    assert rates is not None
    assert rates.requests_per_s == pytest.approx((50 + 2 + 4) / 10)
    assert rates.rejections == {"401": 2, "503": 4}
    assert rates.rejections_per_s == pytest.approx(0.6)


def test_a_gateway_restart_counts_from_zero_and_no_time_gives_no_rate() -> None:
    before = sample(0, {"megapack|202": 1000, "megapack|429": 9})
    after = sample(5, {"megapack|202": 20, "megapack|429": 9})
    rates = gateway_rates(before, after)
    assert rates is not None
    assert rates.requests_per_s == pytest.approx(20 / 5)
    assert rates.rejections == {}
    assert gateway_rates(after, after) is None


def test_every_instance_computes_the_same_slot() -> None:
    base = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert slot_start(base + timedelta(seconds=3), 10) == base
    assert slot_start(base + timedelta(seconds=9.999), 10) == base
    assert slot_start(base + timedelta(seconds=10), 10) == base + timedelta(seconds=10)
    assert slot_start(base + timedelta(seconds=1.7), 0.5) == base + timedelta(seconds=1.5)


def test_disabled_rules_are_left_out_and_unknown_ones_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ALERT_RULES_DISABLED", "unit_stale, ev_tire_pressure_low")
    thresholds = thresholds_from(ReportSettings())
    assert "unit_stale" not in thresholds.enabled
    assert len(thresholds.enabled) == len(RULE_NAMES) - 2
    monkeypatch.setenv("ALERT_RULES_DISABLED", "no_such_rule")
    with pytest.raises(SystemExit) as exit_info:
        load_settings(ReportSettings, "monitoring_service")
    assert exit_info.value.code == 2
    line = capsys.readouterr().err.strip()
    assert line.startswith("monitoring_service: invalid configuration: ALERT_RULES_DISABLED")
    assert "no_such_rule" in line


def test_the_service_needs_operator_keys(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OPERATOR_API_KEYS", raising=False)
    with pytest.raises(SystemExit):
        load_settings(MonitoringSettings, "monitoring_service")
    assert "OPERATOR_API_KEYS is required" in capsys.readouterr().err
    monkeypatch.setenv("OPERATOR_API_KEYS", "ops:long-enough-secret")
    monkeypatch.setenv("MONITOR_INTERVAL_S", "0")
    with pytest.raises(SystemExit):
        load_settings(MonitoringSettings, "monitoring_service")
    assert "MONITOR_INTERVAL_S" in capsys.readouterr().err


def replicas(at_s: float, **counters: dict[str, float]) -> GatewaySample:
    total: dict[str, float] = {}
    for values in counters.values():
        for key, value in values.items():
            total[key] = total.get(key, 0.0) + value
    return GatewaySample(
        scraped_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=at_s),
        requests=total,
        replicas=counters,
    )


def test_rates_are_summed_over_every_gateway_replica() -> None:
    before = replicas(0, a={"megapack|202": 100}, b={"megapack|202": 5000, "ev|429": 7})
    after = replicas(10, a={"megapack|202": 130}, b={"megapack|202": 5020, "ev|429": 9})
    rates = gateway_rates(before, after)
    assert rates is not None
    assert rates.requests_per_s == pytest.approx((30 + 20 + 2) / 10)  # not one replica's 3 or 2.2
    assert (rates.rejections, rates.replicas) == ({"429": 2}, 2)


def test_a_restarted_replica_counts_from_zero_and_a_new_one_from_its_next_scrape() -> None:
    before = replicas(0, a={"megapack|202": 900}, b={"megapack|202": 100})
    after = replicas(5, a={"megapack|202": 10}, b={"megapack|202": 110}, c={"megapack|202": 7000})
    rates = gateway_rates(before, after)
    assert rates is not None
    assert rates.requests_per_s == pytest.approx((10 + 10) / 5)  # c's history is not this window
    assert rates.replicas == 3
