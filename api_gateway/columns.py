"""The reading models' rules checked a column at a time, over a whole batch.

`common/readings.py` is the definition of a valid reading, and pydantic words every 422. Run
reading by reading it is most of the gateway's CPU, so for each batch the gateway first asks
this module, which checks the same rules (read off the models' fields) over each column with
C-level builtins: `sum` catches NaN and infinities, `min`/`max` the bounds, one regular
expression matches every id of a column joined by newlines. The answer is "all valid" or "not
sure"; on "not sure" the gateway validates with pydantic, which decides and explains. So a
batch passes here only if the models pass it too (a property test holds the two together).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain
from operator import attrgetter, itemgetter
from typing import Any, Literal, cast, get_args, get_origin

from annotated_types import Ge, Le, MaxLen
from pydantic import BaseModel

from common.readings import MAX_EPOCH_MS, MAX_FUTURE_MS, TINY, timestamp_ms

How = Literal["number", "id", "choice", "codes", "timestamp"]
NUMBERS = frozenset({int, float})


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


def _metadata(annotation: Any) -> Iterable[Any]:
    """Constraint objects anywhere in an annotation (Annotated, Optional, list items)."""
    yield from getattr(annotation, "metadata", ())
    for argument in get_args(annotation):
        yield from _metadata(argument)


def _many(pattern: str) -> re.Pattern[str]:
    """A pattern `^X$` turned into one that matches `X\\nX\\n...X` (never an empty string)."""
    one = pattern.removeprefix("^").removesuffix("$")
    return re.compile(f"(?:{one})(?:\n(?:{one}))*")


def rules_of(model: type[BaseModel]) -> tuple[Rule, ...]:
    """The model's fields as column rules; a field of another shape is a programming error."""
    rules = []
    for name, field in model.model_fields.items():
        optional = not field.is_required()
        nullable = type(None) in get_args(field.annotation)
        constraints = [*field.metadata, *_metadata(field.annotation)]
        patterns = sorted({c.pattern for c in constraints if getattr(c, "pattern", None)})
        annotation = field.annotation
        if name == "timestamp":
            rules.append(Rule(name, "timestamp", optional, nullable))
        elif get_origin(annotation) is Literal:
            rules.append(
                Rule(name, "choice", optional, nullable, choices=frozenset(get_args(annotation)))
            )
        elif get_origin(annotation) is list and len(patterns) == 1:
            items = next(c.max_length for c in constraints if isinstance(c, MaxLen))
            many = _many(patterns[0])
            rules.append(Rule(name, "codes", optional, nullable, pattern=many, max_items=items))
        elif len(patterns) == 1:
            rules.append(Rule(name, "id", optional, nullable, pattern=_many(patterns[0])))
        elif float in (annotation, *get_args(annotation)):
            low = next(cast(float, c.ge) for c in constraints if isinstance(c, Ge))
            high = next(cast(float, c.le) for c in constraints if isinstance(c, Le))
            rules.append(Rule(name, "number", optional, nullable, low=low, high=high))
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


def timestamps_ok(values: Sequence[int], *, now_ms: int, oldest_ms: int) -> bool:
    """Epoch milliseconds inside the accepted window and the years 1970 to 9999."""
    low, high = max(0, oldest_ms), min(MAX_EPOCH_MS, now_ms + MAX_FUTURE_MS)
    return not values or (low <= min(values) and max(values) <= high)


def check_json(
    rules: tuple[Rule, ...], readings: list[Any], *, now_ms: int, oldest_ms: int
) -> list[int] | None:
    """Each reading's epoch-ms timestamp if every JSON reading is valid; None when not sure."""
    names = frozenset(rule.name for rule in rules)
    required = frozenset(rule.name for rule in rules if not rule.optional)
    try:
        for reading in readings:
            if type(reading) is not dict or not required <= reading.keys() <= names:
                return None
        stamps: list[int] = []
        for rule in rules:
            if rule.optional:
                column = [r[rule.name] for r in readings if rule.name in r]
            else:
                column = list(map(itemgetter(rule.name), readings))
            if rule.nullable:
                column = [value for value in column if value is not None]
            if rule.how == "timestamp":
                stamps = [v if type(v) is int else timestamp_ms(v) for v in column]
                if not timestamps_ok(stamps, now_ms=now_ms, oldest_ms=oldest_ms):
                    return None
            elif not _json_column_ok(rule, column):
                return None
        return stamps
    except (
        TypeError,
        ValueError,
        OverflowError,
    ):  # unhashable choices, a timestamp that does not parse, ...
        return None


def _json_column_ok(rule: Rule, column: list[Any]) -> bool:
    if rule.how == "number":
        return set(map(type, column)) <= NUMBERS and numbers_ok(column, rule.low, rule.high)
    if rule.how == "choice":
        return set(column) <= rule.choices
    assert rule.pattern is not None
    if rule.how == "codes":
        if (
            not set(map(type, column)) <= {list}
            or max(map(len, column), default=0) > rule.max_items
        ):
            return False
        column = list(chain.from_iterable(column))
    return set(map(type, column)) <= {str} and strings_ok(column, rule.pattern)


def check_protobuf(
    rules: tuple[Rule, ...],
    messages: Sequence[Any],
    *,
    choice_numbers: dict[str, frozenset[int]],
    now_ms: int,
    oldest_ms: int,
) -> bool:
    """True if every decoded protobuf reading is valid (as its JSON shape would be)."""
    for rule in rules:
        attribute = "timestamp_ms" if rule.how == "timestamp" else rule.name
        column: list[Any] = list(map(attrgetter(attribute), messages))
        if rule.nullable:  # an unset optional is absent (None), not zero
            column = [v for m, v in zip(messages, column, strict=True) if m.HasField(attribute)]
        if rule.how == "timestamp":
            ok = timestamps_ok(column, now_ms=now_ms, oldest_ms=oldest_ms)
        elif rule.how == "number":
            ok = numbers_ok(column, rule.low, rule.high)
        elif rule.how == "choice":
            ok = set(column) <= choice_numbers[rule.name]
        else:
            assert rule.pattern is not None
            if rule.how == "codes":
                if max(map(len, column), default=0) > rule.max_items:
                    return False
                column = list(chain.from_iterable(column))
            ok = strings_ok(column, rule.pattern)
        if not ok:
            return False
    return True
