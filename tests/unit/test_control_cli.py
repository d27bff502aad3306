"""The operators' command line against a mocked HTTP transport."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from control_service.__main__ import parser
from control_service.cli import Client, CliError, command_body, run
from control_service.settings import ClientSettings

COMMAND: dict[str, Any] = {
    "command_id": "0b5b6c1e-0000-4000-8000-000000000001",
    "unit_id": "MP-0001",
    "kind": "megapack",
    "type": "set_power",
    "params": {"power_kw": -500.0},
    "status": "sent",
    "requested_by": "ops",
    "expires_at": "2026-11-22T05:00:30Z",
    "reason": None,
    "delivery_error": None,
    "history": [
        {"status": "pending", "at": "2026-11-22T05:00:00Z"},
        {"status": "sent", "at": "2026-11-22T05:00:00.01Z"},
    ],
}


def client(handler: Any) -> Client:
    settings = ClientSettings(operator_api_key="ops-secret", control_url="http://control")
    http = httpx.Client(base_url="http://control", transport=httpx.MockTransport(handler))
    return Client(settings, http)


def test_send_puts_the_options_into_params_negative_numbers_included() -> None:
    args = parser().parse_args(["send", "MP-0001", "set_power", "--power-kw", "-500"])
    assert command_body(args) == {"type": "set_power", "params": {"power_kw": -500.0}}
    args = parser().parse_args(
        ["send", "MP-0001", "set_soc_limits", "--min-percent", "10", "--max-percent", "90"]
    )
    assert command_body(args)["params"] == {"min_percent": 10.0, "max_percent": 90.0}


def test_send_posts_the_body_and_the_idempotency_key(capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202, json=COMMAND)

    args = parser().parse_args(
        ["send", "MP-0001", "set_mode", "--mode", "DISCHARGING", "--idempotency-key", "k-9"]
    )
    assert run(args, client(handler)) == 0
    assert seen[0].url.path == "/v1/units/MP-0001/commands"
    assert seen[0].headers["Idempotency-Key"] == "k-9"
    assert json.loads(seen[0].content) == {"type": "set_mode", "params": {"mode": "DISCHARGING"}}
    printed = capsys.readouterr().out
    assert COMMAND["command_id"] in printed
    assert "status: sent" in printed


def test_status_wait_polls_until_a_final_status_and_exits_1_on_rejection() -> None:
    answers = iter(["sent", "acknowledged", "rejected"])

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={**COMMAND, "status": next(answers), "reason": "no"})

    args = parser().parse_args(["status", COMMAND["command_id"], "--wait", "--timeout-s", "5"])
    assert run(args, client(handler)) == 1


def test_refusals_become_one_line_errors() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(409, json={"detail": "MP-0001 is in FAULT; set_power is not allowed"})

    args = parser().parse_args(["send", "MP-0001", "set_power", "--power-kw", "10"])
    with pytest.raises(CliError, match=r"409: MP-0001 is in FAULT") as caught:
        run(args, client(handler))
    assert caught.value.code == 1


def test_validation_errors_name_each_field() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        detail = [{"loc": ["body", "params", "power_kw"], "msg": "bad"}]
        return httpx.Response(422, json={"detail": detail})

    args = parser().parse_args(["send", "MP-0001", "set_power", "--params", '{"power_kw": "x"}'])
    with pytest.raises(CliError, match=r"422: body.params.power_kw: bad"):
        run(args, client(handler))


def test_an_unreachable_service_exits_3() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    args = parser().parse_args(["status", COMMAND["command_id"]])
    with pytest.raises(CliError) as caught:
        run(args, client(handler))
    assert caught.value.code == 3


@pytest.mark.parametrize("argv", [["--help"], ["send", "--help"], ["status", "--help"]])
def test_every_command_has_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        parser().parse_args(argv)
    assert caught.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_send_to_a_site_posts_one_group_and_prints_each_units_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    seen: list[httpx.Request] = []
    group = {
        "group_id": "0b5b6c1e-0000-4000-8000-0000000000aa",
        "type": "set_mode",
        "counts": {"sent": 1, "rejected": 1},
        "commands": [
            {"unit_id": "MP-0001", "status": "sent", "reason": None},
            {"unit_id": "MP-0002", "status": "rejected", "reason": "MP-0002 is in FAULT"},
        ],
    }

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "POST":
            return httpx.Response(202, json={"group_id": group["group_id"], "commands": 2})
        return httpx.Response(200, json=group)

    args = parser().parse_args(
        ["send", "--site", "SITE-01", "set_mode", "--mode", "STANDBY", "--hold-s", "60"]
    )
    assert run(args, client(handler)) == 1  # one unit refused it
    body = json.loads(seen[0].content)
    assert (seen[0].url.path, body["selector"]) == ("/v1/command-groups", {"site_id": "SITE-01"})
    assert body["params"] == {"mode": "STANDBY", "hold_s": 60}
    assert seen[1].url.path == f"/v1/command-groups/{group['group_id']}"
    printed = capsys.readouterr().out
    assert "rejected 1" in printed
    assert "MP-0002 is in FAULT" in printed
    both = parser().parse_args(["send", "MP-0001", "set_mode", "--units", "MP-0002"])
    with pytest.raises(CliError):
        run(both, client(handler))
