"""Batches as columns: the reading models' rules checked a column at a time, and published.

`common/readings.py` is the definition of a valid reading, and pydantic words every 422. Run
reading by reading it is most of the gateway's CPU, so the gateway first turns a batch into
columns (one list per field, in the models' terms: epoch-ms timestamps, state names, None for
an absent optional) and checks the same rules, read off the models' fields, over each column
with C-level builtins: `sum` catches NaN and infinities, `min`/`max` the bounds, one regular
expression matches every id of a column joined by newlines. The answer is "all valid" or "not
sure"; on "not sure" the gateway validates with pydantic, which decides and explains. So a
batch passes here only if the models pass it too (a property test holds the two together).
The columns are then published as they are (`MegapackColumns` / `EvColumns`).

The rules themselves are read off the models by `api_gateway/column_rules.py`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from itertools import chain
from operator import attrgetter, itemgetter, methodcaller
from typing import Any

from google.protobuf.message import Message
from pydantic import BaseModel

from api_gateway.column_rules import Rule
from common.readings import (
    MAX_EPOCH_MS,
    MAX_FUTURE_MS,
    TINY,
    timestamp_ms,
)

Columns = dict[str, list[Any]]
NUMBERS = frozenset({int, float})
NAN = float("nan")


def numbers_ok(values: Sequence[Any], low: float, high: float) -> bool:
    """Finite, within [low, high], and no magnitude under TINY but zero (the models flush those)."""
    if not values:
        return True
    if not math.isfinite(sum(values)):  # any NaN or infinity makes the sum non-finite
        return False
    if min(values) < low or max(values) > high:
        return False
    return min(map(abs, filter(None, values)), default=TINY) >= TINY


def strings_ok(values: Sequence[Any], pattern: re.Pattern[str]) -> bool:
    """Every value a string matching the pattern (a newline inside one would split it)."""
    if not values:
        return True
    joined = "\n".join(values)
    return joined.count("\n") == len(values) - 1 and pattern.fullmatch(joined) is not None


def json_columns(rules: tuple[Rule, ...], readings: list[Any]) -> Columns | None:
    """The columns of JSON readings; None when their shape already rules the fast path out."""
    names = frozenset(rule.name for rule in rules)
    required = frozenset(rule.name for rule in rules if not rule.optional)
    for reading in readings:
        if type(reading) is not dict or not required <= reading.keys() <= names:
            return None
    columns: Columns = {}
    try:
        for rule in rules:
            if rule.optional:
                columns[rule.name] = [r.get(rule.name, rule.default) for r in readings]
            else:
                columns[rule.name] = list(map(itemgetter(rule.name), readings))
            if rule.how == "timestamp":
                stamps = columns[rule.name]
                columns[rule.name] = [v if type(v) is int else timestamp_ms(v) for v in stamps]
    except (ValueError, OverflowError):  # a timestamp that does not parse
        return None
    return columns


def protobuf_columns(
    rules: tuple[Rule, ...], messages: Sequence[Any], *, enum_names: dict[str, dict[int, str]]
) -> Columns:
    """The columns of decoded protobuf readings (an unknown enum number becomes None)."""
    columns: Columns = {}
    for rule in rules:
        attribute = "timestamp_ms" if rule.how == "timestamp" else rule.name
        column = list(map(attrgetter(attribute), messages))
        if rule.nullable:  # an unset optional is absent (None), not zero
            # An unset field reads as its zero value, so a column without a zero has every
            # value set: one C-level `in` instead of a HasField per reading.
            if (0 if rule.how == "number" else "") in column:
                present = list(map(methodcaller("HasField", attribute), messages))
                if not all(present):
                    column = [v if has else None for v, has in zip(column, present, strict=True)]
        elif rule.how == "choice":
            column = list(map(enum_names[rule.name].get, column))
        columns[rule.name] = column
    return columns


def model_columns(rules: tuple[Rule, ...], models: Sequence[BaseModel]) -> Columns:
    """The columns of validated models."""
    return {rule.name: [getattr(model, rule.name) for model in models] for rule in rules}


def columns_ok(
    rules: tuple[Rule, ...], columns: Columns, *, now_ms: int, oldest_ms: int, typed: bool
) -> bool:
    """True if every reading is valid; `typed` when the values' types are known (protobuf)."""
    try:
        return all(_column_ok(rule, columns[rule.name], now_ms, oldest_ms, typed) for rule in rules)
    except (TypeError, ValueError):  # an unhashable choice, a list where a number belongs, ...
        return False


def _column_ok(rule: Rule, column: list[Any], now_ms: int, oldest_ms: int, typed: bool) -> bool:
    if rule.nullable:
        column = [value for value in column if value is not None]
    if rule.how == "timestamp":
        low, high = max(0, oldest_ms), min(MAX_EPOCH_MS, now_ms + MAX_FUTURE_MS)
        return _typed(column, {int}, typed) and low <= min(column) and max(column) <= high
    if rule.how == "number":
        return _typed(column, NUMBERS, typed) and numbers_ok(column, rule.low, rule.high)
    if rule.how == "choice":
        return set(column) <= rule.choices
    assert rule.pattern is not None
    if rule.how == "codes":
        if not typed and not set(map(type, column)) <= {list}:
            return False
        if max(map(len, column), default=0) > rule.max_items:
            return False
        column = list(chain.from_iterable(column))
    return _typed(column, {str}, typed) and strings_ok(column, rule.pattern)


def _typed(column: list[Any], types: Iterable[type], typed: bool) -> bool:
    return typed or set(map(type, column)) <= frozenset(types)


def fill_columns(
    target: Message,
    rules: tuple[Rule, ...],
    columns: Columns,
    *,
    enum_numbers: dict[str, dict[str, int]],
) -> None:
    """Write valid columns into a `MegapackColumns` / `EvColumns` message."""
    for rule in rules:
        column: Iterable[Any] = columns[rule.name]
        name = "timestamp_ms" if rule.how == "timestamp" else rule.name
        if rule.how == "choice":
            column = map(enum_numbers[rule.name].__getitem__, column)
        elif rule.how == "codes":
            counts = getattr(target, rule.name.removesuffix("s") + "_counts")
            counts.extend(map(len, columns[rule.name]))
            column = chain.from_iterable(column)
        elif rule.nullable:
            absent = NAN if rule.how == "number" else ""
            column = [absent if value is None else value for value in column]
        getattr(target, name).extend(column)
