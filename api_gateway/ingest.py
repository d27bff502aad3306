"""Turn one telemetry request body into a validated, publishable envelope (no I/O here)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from google.protobuf.message import DecodeError
from google.protobuf.unknown_fields import UnknownFieldSet
from pydantic import TypeAdapter, ValidationError

from api_gateway.column_rules import rules_of
from api_gateway.columns import (
    Columns,
    columns_ok,
    fill_columns,
    json_columns,
    model_columns,
    protobuf_columns,
)
from common.codec import ENUM_NAMES, ENUM_NUMBERS, message_to_dict
from common.keys import ApiKey
from common.readings import EvReading, MegapackReading
from proto.megapack.v1 import telemetry_pb2 as pb

Kind = Literal["megapack", "ev"]
JSON_TYPES = ("application/json",)
PROTOBUF_TYPES = ("application/x-protobuf", "application/protobuf")
_ADAPTERS: dict[Kind, TypeAdapter[Any]] = {
    "megapack": TypeAdapter(list[MegapackReading]),
    "ev": TypeAdapter(list[EvReading]),
}
# Below this many readings pydantic alone is cheaper than the column checks' fixed cost
# (measured: 17 vs 30 µs for one reading, 71 vs 64 µs for eight).
COLUMNS_FROM = 6
_RULES = {"megapack": rules_of(MegapackReading), "ev": rules_of(EvReading)}
_SCOPE_FIELD: dict[Kind, str] = {"megapack": "site_id", "ev": "fleet_id"}
_SCOPE_KIND: dict[Kind, str] = {"megapack": "site", "ev": "fleet"}


class RequestError(Exception):
    """A request the gateway refuses: an HTTP status and a detail naming the problem."""

    def __init__(self, status: int, detail: object) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Accepted:
    """A validated request, ready to publish."""

    batch_id: str
    readings: int
    envelope: bytes


@dataclass(frozen=True, slots=True)
class Window:
    """Limits that depend on settings and the clock."""

    max_readings: int
    now_us: int
    retention_days: int

    @property
    def context(self) -> dict[str, Any]:
        now_ms = self.now_us // 1000
        return {"now_ms": now_ms, "oldest_ms": now_ms - self.retention_days * 86_400_000}


def media_type(content_type: str | None) -> str:
    """The bare media type of a Content-Type header (JSON when absent)."""
    if not content_type:
        return "application/json"
    return content_type.split(";", 1)[0].strip().lower()


def accept(
    *, kind: Kind, body: bytes, content_type: str | None, key: ApiKey, window: Window
) -> Accepted:
    """Parse, count, validate and scope-check a request; raise RequestError on any problem."""
    media = media_type(content_type)
    rules = _RULES[kind]
    columns: Columns | None
    if media in JSON_TYPES:
        raw = _json_readings(body)
        _check_count(len(raw), window)
        columns = json_columns(rules, raw) if len(raw) >= COLUMNS_FROM else None
        if columns is None or not columns_ok(rules, columns, **window.context, typed=False):
            columns = model_columns(rules, _validate(kind, raw, window))
    elif media in PROTOBUF_TYPES:
        messages = _protobuf_readings(kind, body)
        _check_count(len(messages), window)
        columns = None
        if len(messages) >= COLUMNS_FROM:
            columns = protobuf_columns(rules, messages, enum_names=ENUM_NAMES)
        if columns is None or not columns_ok(rules, columns, **window.context, typed=True):
            columns = model_columns(
                rules, _validate(kind, list(map(message_to_dict, messages)), window)
            )
    else:
        raise RequestError(415, "Content-Type must be application/json or application/x-protobuf")
    _check_scope(kind, columns[_SCOPE_FIELD[kind]], key)
    batch = pb.TelemetryBatch(
        batch_id=str(uuid.uuid4()), received_at_us=window.now_us, key_id=key.name
    )
    fill_columns(getattr(batch, f"{kind}_columns"), rules, columns, enum_numbers=ENUM_NUMBERS)
    envelope = pb.TelemetryEnvelope(batches=[batch]).SerializeToString()
    return Accepted(batch.batch_id, len(columns[rules[0].name]), envelope)


def _json_readings(body: bytes) -> list[Any]:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise RequestError(400, f"body is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise RequestError(422, 'body must be one reading object or {"readings": [...]}')
    if "readings" not in document:
        return [document]
    if len(document) != 1:
        extra = sorted(k for k in document if k != "readings")
        raise RequestError(422, f"unknown top-level fields: {', '.join(map(str, extra))[:200]}")
    readings = document["readings"]
    if not isinstance(readings, list) or not readings:
        raise RequestError(422, "readings must be a non-empty list")
    return readings


def _protobuf_readings(kind: Kind, body: bytes) -> Sequence[Any]:
    try:
        batch = pb.TelemetryBatch.FromString(body)
    except (DecodeError, RuntimeError) as error:
        raise RequestError(400, f"body is not a valid TelemetryBatch protobuf: {error}") from None
    other = batch.ev if kind == "megapack" else batch.megapack
    if other:
        raise RequestError(422, f"this endpoint takes {kind} readings only")
    readings = batch.megapack if kind == "megapack" else batch.ev
    if not readings:
        raise RequestError(422, "readings must be a non-empty list")
    if len(UnknownFieldSet(batch)) or any(map(len, map(UnknownFieldSet, readings))):
        raise RequestError(422, "protobuf body carries unknown fields")
    if batch.HasField("megapack_columns") or batch.HasField("ev_columns"):
        raise RequestError(422, "megapack_columns and ev_columns are set by the gateway only")
    return readings


def _check_count(count: int, window: Window) -> None:
    if count > window.max_readings:
        raise RequestError(
            413, f"{count} readings in one request; at most {window.max_readings} are allowed"
        )


def _validate(kind: Kind, raw: list[Any], window: Window) -> list[Any]:
    """The validated readings (tiny values flushed to zero), or a 422 naming every problem."""
    try:
        readings: list[Any] = _ADAPTERS[kind].validate_python(raw, context=window.context)
    except ValidationError as error:
        raise RequestError(422, _errors(error)) from None
    return readings


def _errors(error: ValidationError) -> list[dict[str, Any]]:
    details = []
    for item in error.errors(include_url=False, include_input=False, include_context=False):
        index, *field = item["loc"] or (0,)
        message = item["msg"].removeprefix("Value error, ")
        details.append(
            {"index": index, "loc": [str(p) for p in field], "msg": message, "type": item["type"]}
        )
    return details


def _check_scope(kind: Kind, scopes: list[Any], key: ApiKey) -> None:
    if key.scope is None:
        return
    scope_kind, scope_id = key.scope
    for index, scope in enumerate(scopes):
        if scope_kind != _SCOPE_KIND[kind] or scope != scope_id:
            raise RequestError(
                403,
                f"key {key.name!r} may only send readings of {scope_kind} {scope_id} "
                f"(reading {index} is outside it)",
            )
