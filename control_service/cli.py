"""The operators' command line: a thin client of the control API (CONTROL_URL, OPERATOR_API_KEY)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import httpx

from control_service.model import FINAL_STATUSES
from control_service.settings import ClientSettings

EXIT_OK, EXIT_REFUSED, EXIT_UNREACHABLE = 0, 1, 3

_PARAM_OPTIONS = {  # option dest -> params field
    "mode": "mode",
    "power_kw": "power_kw",
    "min_percent": "min_percent",
    "max_percent": "max_percent",
    "limit_percent": "limit_percent",
    "hold_s": "hold_s",
}


class CliError(Exception):
    """A failure to report in one line, with the exit code to leave with."""

    def __init__(self, message: str, code: int = EXIT_REFUSED) -> None:
        super().__init__(message)
        self.code = code


def command_body(args: argparse.Namespace) -> dict[str, Any]:
    """The JSON body of `send`, from its options (`--params` JSON merged under the options)."""
    params: dict[str, Any] = {}
    if args.params:
        try:
            params = json.loads(args.params)
        except json.JSONDecodeError as error:
            raise CliError(f"--params is not JSON: {error}", 2) from None
        if not isinstance(params, dict):
            raise CliError("--params must be a JSON object", 2)
    for dest, field in _PARAM_OPTIONS.items():
        value = getattr(args, dest, None)
        if value is not None:
            params[field] = value
    body: dict[str, Any] = {"type": args.type, "params": params}
    if args.ttl_s is not None:
        body["ttl_s"] = args.ttl_s
    if getattr(args, "not_before", None):
        body["not_before"] = args.not_before
    return body


def selector(args: argparse.Namespace) -> dict[str, Any] | None:
    """The group selector of `send --site/--fleet/--units`, or None for one unit."""
    if getattr(args, "site", None):
        chosen: dict[str, Any] = {"site_id": args.site}
    elif getattr(args, "fleet", None):
        chosen = {"fleet_id": args.fleet}
    elif getattr(args, "units", None):
        chosen = {"unit_ids": [unit.strip() for unit in args.units.split(",") if unit.strip()]}
    else:
        if not getattr(args, "unit_id", None):
            raise CliError("send: give a unit id, or --site, --fleet or --units", 2)
        return None
    if getattr(args, "unit_id", None):
        raise CliError("send: give a unit id or --site/--fleet/--units, not both", 2)
    return chosen


def describe_group(group: dict[str, Any]) -> str:
    """A group as a few readable lines: counts, then each unit's command."""
    counts = ", ".join(f"{status} {n}" for status, n in sorted(group["counts"].items()))
    lines = [
        f"group {group['group_id']}: {group['type']} to {len(group['commands'])} units",
        f"  {counts}",
    ]
    lines += [
        f"  {c['unit_id']:<16} {c['status']:<12} {c.get('reason') or ''}".rstrip()
        for c in group["commands"]
    ]
    return "\n".join(lines)


def describe(command: dict[str, Any]) -> str:
    """A command as a few readable lines."""
    params = json.dumps(command["params"], separators=(", ", ": ")) if command["params"] else ""
    lines = [
        f"command {command['command_id']}",
        f"  {command['type']} {params} -> {command['unit_id']} ({command['kind']})".rstrip(),
        f"  status: {command['status']}",
    ]
    lines += [f"    {step['status']:<13} {step['at']}" for step in command["history"]]
    lines.append(f"  requested by {command['requested_by']}, expires {command['expires_at']}")
    if command.get("reason"):
        lines.append(f"  reason: {command['reason']}")
    if command.get("delivery_error") and command["status"] == "pending":
        lines.append(f"  not delivered yet: {command['delivery_error']}")
    return "\n".join(lines)


class Client:
    """The HTTP calls the command line makes."""

    def __init__(self, settings: ClientSettings, http: httpx.Client | None = None) -> None:
        self._http = http or httpx.Client(
            base_url=settings.control_url,
            headers={"X-API-Key": settings.operator_api_key},
            timeout=settings.control_timeout_s,
        )

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise CliError(f"cannot reach the control service: {error}", EXIT_UNREACHABLE) from None
        if response.status_code >= 400:
            try:
                detail: Any = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            if isinstance(detail, list):
                detail = "; ".join(
                    f"{'.'.join(str(part) for part in item.get('loc', []))}: {item.get('msg')}"
                    for item in detail
                )
            raise CliError(f"{response.status_code}: {detail}")
        result: dict[str, Any] = response.json()
        return result

    def send(
        self, unit_id: str, body: dict[str, Any], idempotency_key: str | None
    ) -> dict[str, Any]:
        """POST a command."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return self._call("POST", f"/v1/units/{unit_id}/commands", json=body, headers=headers)

    def send_group(self, body: dict[str, Any], idempotency_key: str | None) -> dict[str, Any]:
        """POST a group command."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return self._call("POST", "/v1/command-groups", json=body, headers=headers)

    def group(self, group_id: str) -> dict[str, Any]:
        """GET a group's progress."""
        return self._call("GET", f"/v1/command-groups/{group_id}")

    def wait_group(self, group_id: str, *, timeout_s: float, poll_s: float = 0.5) -> dict[str, Any]:
        """Poll until every command of the group is final (or time runs out)."""
        deadline = time.monotonic() + timeout_s
        group = self.group(group_id)
        while not _all_final(group) and time.monotonic() < deadline:
            time.sleep(poll_s)
            group = self.group(group_id)
        return group

    def status(self, command_id: str) -> dict[str, Any]:
        """GET one command."""
        return self._call("GET", f"/v1/commands/{command_id}")

    def list(self, unit_id: str, *, limit: int, status: str | None) -> dict[str, Any]:
        """GET a unit's latest commands."""
        query: dict[str, Any] = {"limit": limit, **({"status": status} if status else {})}
        return self._call("GET", f"/v1/units/{unit_id}/commands", params=query)

    def wait(self, command_id: str, *, timeout_s: float, poll_s: float = 0.25) -> dict[str, Any]:
        """Poll until the command reaches a final status (or time runs out)."""
        deadline = time.monotonic() + timeout_s
        command = self.status(command_id)
        while command["status"] not in FINAL_STATUSES and time.monotonic() < deadline:
            time.sleep(poll_s)
            command = self.status(command_id)
        return command


def run(args: argparse.Namespace, client: Client) -> int:
    """Run `send`, `status` or `list`; returns the exit code."""
    if args.command == "list":
        page = client.list(args.unit_id, limit=args.limit, status=args.status)
        if args.json:
            print(json.dumps(page, indent=2))
        for command in [] if args.json else page["items"]:
            print(
                f"{command['created_at']}  {command['command_id']}  {command['type']:<16} "
                f"{command['status']:<12} {command.get('reason') or ''}".rstrip()
            )
        return EXIT_OK
    if args.command == "send" and (chosen := selector(args)) is not None:
        return _send_group(args, client, {**command_body(args), "selector": chosen})
    if args.command == "send":
        command = client.send(args.unit_id, command_body(args), args.idempotency_key)
    else:
        command = client.status(args.command_id)
    if args.wait:
        command = client.wait(str(command["command_id"]), timeout_s=args.timeout_s)
    print(json.dumps(command, indent=2) if args.json else describe(command))
    if args.wait and command["status"] not in FINAL_STATUSES:
        print(f"still {command['status']} after {args.timeout_s:g} s", file=sys.stderr)
        return EXIT_REFUSED
    return EXIT_REFUSED if command["status"] in UNSUCCESSFUL else EXIT_OK


UNSUCCESSFUL = ("rejected", "failed", "expired", "superseded")


def _all_final(group: dict[str, Any]) -> bool:
    return all(c["status"] in FINAL_STATUSES for c in group["commands"])


def _send_group(args: argparse.Namespace, client: Client, body: dict[str, Any]) -> int:
    accepted = client.send_group(body, args.idempotency_key)
    group_id = str(accepted["group_id"])
    if args.wait:
        group = client.wait_group(group_id, timeout_s=args.timeout_s)
    else:
        group = client.group(group_id)
    print(json.dumps(group, indent=2) if args.json else describe_group(group))
    if args.wait and not _all_final(group):
        print(f"not every command is final after {args.timeout_s:g} s", file=sys.stderr)
        return EXIT_REFUSED
    unsuccessful = any(c["status"] in UNSUCCESSFUL for c in group["commands"])
    return EXIT_REFUSED if unsuccessful else EXIT_OK
