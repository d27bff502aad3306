"""`AMQP_URL` lists (SPEC §15): parsing, the one-line error, heartbeats, the replication target."""

from __future__ import annotations

import re

import pytest

from common.amqp_urls import node_label, redact, split_amqp_urls, with_heartbeat
from common.settings import BaseServiceSettings, load_settings
from common.topology import QUORUM_REPLICAS, quorum_arguments

ONE = "amqp://gw:pw@rmq1:5672/"
THREE = "amqp://gw:pw@rmq1:5672/, amqp://gw:pw@rmq2:5672/,amqps://gw:pw@rmq3/vh"


def test_a_list_splits_in_order_and_a_single_url_is_a_list_of_one() -> None:
    assert split_amqp_urls(ONE) == (ONE,)
    assert split_amqp_urls(THREE) == (
        "amqp://gw:pw@rmq1:5672/",
        "amqp://gw:pw@rmq2:5672/",
        "amqps://gw:pw@rmq3/vh",
    )


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "must name at least one broker"),
        (f"{ONE},", "URL 2 of 2 (empty) is empty (a stray comma?)"),
        (
            f"{ONE},http://gw:secret@rmq2/",
            "URL 2 of 2 (http://gw:***@rmq2/) must start with amqp://",
        ),
        ("amqp://", "the URL (amqp://) names no host"),
        ("amqp://gw:secret@rmq1:99999/", "cannot be parsed"),
    ],
)
def test_a_bad_entry_is_named_without_its_password(value: str, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)) as caught:
        split_amqp_urls(value)
    assert "secret" not in str(caught.value)


def test_settings_keep_the_list_normalised() -> None:
    settings = BaseServiceSettings(amqp_url=THREE)
    assert split_amqp_urls(settings.amqp_url) == split_amqp_urls(THREE)
    assert " " not in settings.amqp_url


def test_a_bad_list_stops_a_service_with_one_line_naming_amqp_url(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AMQP_URL", "amqp://a:topsecret@h1/,ftp://h2/")
    with pytest.raises(SystemExit) as stopped:
        load_settings(BaseServiceSettings, "svc")
    assert stopped.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "svc: invalid configuration: AMQP_URL URL 2 of 2 (ftp://h2/) must start with "
        "amqp:// or amqps://"
    ]


def test_heartbeat_is_added_unless_the_url_chooses_one() -> None:
    assert with_heartbeat("amqp://h/") == "amqp://h/?heartbeat=5"
    assert with_heartbeat("amqp://h/?name=gw") == "amqp://h/?name=gw&heartbeat=5"
    assert with_heartbeat("amqp://h/?heartbeat=30") == "amqp://h/?heartbeat=30"


def test_redact_and_node_label() -> None:
    assert redact("amqp://gw:pw@rmq1:5672/") == "amqp://gw:***@rmq1:5672/"
    assert redact("amqp://rmq1/") == "amqp://rmq1/"
    assert node_label("amqp://gw:pw@rmq1/") == "rmq1:5672"
    assert node_label("amqps://rmq1/") == "rmq1:5671"


def test_every_quorum_queue_asks_for_three_replicas() -> None:
    assert QUORUM_REPLICAS == 3
    assert quorum_arguments()["x-quorum-initial-group-size"] == 3
    dead_lettered = quorum_arguments(dead_letter_exchange="dlx", max_length=10)
    assert dead_lettered["x-quorum-initial-group-size"] == 3
