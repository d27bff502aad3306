"""Shapes every HTTP service shares: the body of every refusal."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorBody(BaseModel):
    """Every refusal of every service: `detail` is a message, or for 422 a list of problems,
    each with its `loc` and `msg` (the gateway adds the reading's `index` and the `type`)."""

    detail: str | list[dict[str, Any]]
