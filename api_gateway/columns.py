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

The column checks know every rule the models state, and nothing else: `rules_of` refuses, at
import, a model with a validator, a constraint or an alias it does not mirror, so a rule added
to the models later cannot be passed over by the fast path without anyone noticing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain
from operator import attrgetter, itemgetter, methodcaller
from typing import Any, Literal, cast, get_args, get_origin

from annotated_types import Ge, Le, MaxLen
from google.protobuf.message import Message
from pydantic import BaseModel, Field, WithJsonSchema

from common.readings import (
    MAX_EPOCH_MS,
    MAX_FUTURE_MS,
    TINY,
    ReadingBase,
    _flush_tiny_field,
    timestamp_ms,
)

How = Literal["number", "id", "choice", "codes", "timestamp"]
Columns = dict[str, list[Any]]
NUMBERS = frozenset({int, float})
NAN = float("nan")


@dataclass(frozen=True, slots=True)
class Rule:
    """One field's rule, as the model states it."""

    name: str
    how: How
    optional: bool  # may be absent
    nullable: bool  # may be null
    low: float = 0.0
    high: float = 0.0
    choices: frozenset[str] = frozenset()
    pattern: re.Pattern[str] | None = None  # matches values joined by "\n"
    max_items: int = 0
    default: Any = None  # the model's value for an absent optional field


def _metadata(annotation: Any) -> Iterable[Any]:
    """Constraint objects anywhere in an annotation (Annotated, Optional, list items)."""
    yield from getattr(annotation, "metadata", ())
    for argument in get_args(annotation):
        yield from _metadata(argument)


def _many(pattern: str) -> re.Pattern[str]:
    """A pattern `^X$` turned into one that matches `X\\nX\\n...X` (never an empty string)."""
    one = pattern.removeprefix("^").removesuffix("$")
    return re.compile(f"(?:{one})(?:\n(?:{one}))*")


# The validators the column checks mirror, and the fields' kinds each may cover: the
# timestamp parser and window (the "timestamp" rule), and the flush of tiny magnitudes
# (numbers_ok refuses those, and pydantic then decides).
_MIRRORED_VALIDATORS: dict[Any, How] = {
    getattr(ReadingBase._epoch_ms, "__func__", None): "timestamp",
    _flush_tiny_field: "number",
}
_GENERAL = type(Field(pattern="x").metadata[0])  # pydantic's holder of `pattern=` and friends
_ALLOW_INF_NAN = type(Field(allow_inf_nan=False).metadata[0])
# The constraints each kind of rule mirrors (a `pattern` for ids and codes; WithJsonSchema
# only documents the timestamp). Any other object in a field's metadata is refused.
_MIRRORED_METADATA: dict[How, tuple[type, ...]] = {
    "number": (Ge, Le, _ALLOW_INF_NAN),
    "id": (_GENERAL,),
    "codes": (_GENERAL, MaxLen),
    "choice": (),
    "timestamp": (WithJsonSchema,),
}


def _refuse_unmirrored(model: type[BaseModel], rules: tuple[Rule, ...]) -> None:
    """TypeError for any rule of the model the column checks would not apply."""
    where = model.__name__
    kinds = {rule.name: rule.how for rule in rules}
    decorators = model.__pydantic_decorators__
    for kind in ("model_validators", "root_validators", "validators"):
        if getattr(decorators, kind):
            raise TypeError(f"{where}: {kind} are not mirrored by api_gateway/columns.py")
    for name, decorator in decorators.field_validators.items():
        function = getattr(decorator.func, "__func__", decorator.func)
        how = _MIRRORED_VALIDATORS.get(function)
        fields = decorator.info.fields
        if how is None or any(kinds.get(field) != how for field in fields):
            raise TypeError(
                f"{where}.{name} validates {', '.join(fields)}: api_gateway/columns.py does "
                "not mirror this validator (teach it the rule, or the fast path would skip it)"
            )
    for name, field in model.model_fields.items():
        if field.alias is not None or field.validation_alias is not None:
            raise TypeError(f"{where}.{name}: aliases are not mirrored by api_gateway/columns.py")
        for constraint in (*field.metadata, *_metadata(field.annotation)):
            allowed = _MIRRORED_METADATA[kinds[name]]
            general = type(constraint) is _GENERAL and set(vars(constraint)) != {"pattern"}
            if not isinstance(constraint, allowed) or general:
                raise TypeError(
                    f"{where}.{name}: api_gateway/columns.py does not mirror {constraint!r}"
                )


def rules_of(model: type[BaseModel]) -> tuple[Rule, ...]:
    """The model's fields as column rules; a field of another shape, or a validator or
    constraint the column checks do not mirror, is a programming error (TypeError)."""
    rules = _rules(model)
    _refuse_unmirrored(model, rules)
    return rules


def _rules(model: type[BaseModel]) -> tuple[Rule, ...]:
    rules = []
    for name, field in model.model_fields.items():
        optional = not field.is_required()
        default = None if not optional else field.get_default(call_default_factory=True)
        nullable = type(None) in get_args(field.annotation)
        constraints = [*field.metadata, *_metadata(field.annotation)]
        patterns = sorted({c.pattern for c in constraints if getattr(c, "pattern", None)})
        annotation = field.annotation
        if name == "timestamp":
            rules.append(Rule(name, "timestamp", optional, nullable, default=default))
        elif get_origin(annotation) is Literal:
            rules.append(
                Rule(
                    name,
                    "choice",
                    optional,
                    nullable,
                    default=default,
                    choices=frozenset(get_args(annotation)),
                )
            )
        elif get_origin(annotation) is list and len(patterns) == 1:
            items = next(c.max_length for c in constraints if isinstance(c, MaxLen))
            many = _many(patterns[0])
            rules.append(
                Rule(
                    name,
                    "codes",
                    optional,
                    nullable,
                    default=default,
                    pattern=many,
                    max_items=items,
                )
            )
        elif len(patterns) == 1:
            rules.append(
                Rule(name, "id", optional, nullable, default=default, pattern=_many(patterns[0]))
            )
        elif float in (annotation, *get_args(annotation)):
            low = next((cast(float, c.ge) for c in constraints if isinstance(c, Ge)), None)
            high = next((cast(float, c.le) for c in constraints if isinstance(c, Le)), None)
            if low is None or high is None:
                raise TypeError(f"{model.__name__}.{name}: a number needs both ge= and le=")
            rules.append(
                Rule(name, "number", optional, nullable, default=default, low=low, high=high)
            )
        else:
            raise TypeError(f"no column rule for {model.__name__}.{name}")
    return tuple(rules)


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
