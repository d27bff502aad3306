"""The column checks refuse, at import, a reading model with a rule they do not mirror."""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import AfterValidator, Field, field_validator, model_validator

from api_gateway.column_rules import rules_of
from common.readings import EvReading, FaultCode, MegapackReading, UnitId


def test_the_real_models_are_fully_mirrored() -> None:
    for model in (MegapackReading, EvReading):
        assert {rule.name for rule in rules_of(model)} == set(model.model_fields)


class WithFieldValidator(MegapackReading):
    @field_validator("unit_id")
    @classmethod
    def _site_prefix(cls, value: str) -> str:
        if not value.startswith("MP-"):
            raise ValueError("must start with MP-")
        return value


class WithModelValidator(MegapackReading):
    @model_validator(mode="after")
    def _charging_draws_power(self) -> WithModelValidator:
        return self


class WithGreaterThan(MegapackReading):
    voltage_v: float = Field(ge=-1, gt=0, le=2_000, allow_inf_nan=False)  # gt: not mirrored


class WithMultipleOf(MegapackReading):
    soc_percent: float = Field(ge=0, le=100, multiple_of=0.5)


class WithMinLength(MegapackReading):
    fault_codes: list[FaultCode] = Field(default_factory=list, max_length=32, min_length=1)


class WithAnnotatedValidator(MegapackReading):
    site_id: Annotated[UnitId, AfterValidator(str.upper)]


class WithStrictPattern(MegapackReading):
    site_id: str = Field(pattern=r"^S[0-9]+$", max_length=8)


class WithAlias(MegapackReading):
    site_id: UnitId = Field(alias="site")


class WithAnUnboundedNumber(MegapackReading):
    power_kw: float = Field(ge=-10_000)  # no upper bound: the columns need both


class WithTheFlushOnAnId(MegapackReading):
    """A known validator, but on a field whose column check does not apply it."""

    _flush_id = field_validator("unit_id")(MegapackReading._flush.__func__)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "model",
    [
        WithFieldValidator,
        WithModelValidator,
        WithGreaterThan,
        WithMultipleOf,
        WithMinLength,
        WithAnnotatedValidator,
        WithStrictPattern,
        WithAlias,
        WithAnUnboundedNumber,
        WithTheFlushOnAnId,
    ],
)
def test_a_rule_the_columns_do_not_mirror_is_refused(model: type[MegapackReading]) -> None:
    with pytest.raises(TypeError, match=model.__name__):
        rules_of(model)
