"""The reading models' fields as column rules (`rules_of`), for the checks of
`api_gateway/columns.py`.

The column checks know every rule the models state, and nothing else: `rules_of` refuses, at
import, a model with a validator, a constraint or an alias it does not mirror, so a rule added
to the models later cannot be passed over by the fast path without anyone noticing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args, get_origin

from annotated_types import Ge, Le, MaxLen
from pydantic import BaseModel, Field, WithJsonSchema

from common.readings import ReadingBase, _flush_tiny_field

How = Literal["number", "id", "choice", "codes", "timestamp"]


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
            raise TypeError(f"{where}: {kind} are not mirrored by api_gateway/column_rules.py")
    for name, decorator in decorators.field_validators.items():
        function = getattr(decorator.func, "__func__", decorator.func)
        how = _MIRRORED_VALIDATORS.get(function)
        fields = decorator.info.fields
        if how is None or any(kinds.get(field) != how for field in fields):
            raise TypeError(
                f"{where}.{name} validates {', '.join(fields)}: api_gateway/column_rules.py does "
                "not mirror this validator (teach it the rule, or the fast path would skip it)"
            )
    for name, field in model.model_fields.items():
        if field.alias is not None or field.validation_alias is not None:
            raise TypeError(
                f"{where}.{name}: aliases are not mirrored by api_gateway/column_rules.py"
            )
        for constraint in (*field.metadata, *_metadata(field.annotation)):
            allowed = _MIRRORED_METADATA[kinds[name]]
            general = type(constraint) is _GENERAL and set(vars(constraint)) != {"pattern"}
            if not isinstance(constraint, allowed) or general:
                raise TypeError(
                    f"{where}.{name}: api_gateway/column_rules.py does not mirror {constraint!r}"
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
