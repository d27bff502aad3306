"""API keys parse strictly, match in constant time, and never show their secret."""

from __future__ import annotations

import pytest

from common.keys import find_key, parse_api_keys


def test_keys_parse_with_optional_scope() -> None:
    keys = parse_api_keys("sim:dev-secret,north:k-9f2abcd:site=SITE-01, ev:secret-ev1:fleet=F1")
    assert [(k.name, k.scope) for k in keys] == [
        ("sim", None),
        ("north", ("site", "SITE-01")),
        ("ev", ("fleet", "F1")),
    ]
    assert find_key(keys, "k-9f2abcd") is keys[1]
    assert find_key(keys, "k-9f2abcX") is None
    assert find_key(keys, None) is None


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "nosecret",
        "a:short",
        "a:longenough:region=X",
        "a:longenough,a:otherlong1",
        "b c:longenough",
    ],
)
def test_bad_key_lists_are_refused(spec: str) -> None:
    with pytest.raises(ValueError, match=r"entry|at least one"):
        parse_api_keys(spec)


def test_secrets_never_show_in_repr_or_errors() -> None:
    keys = parse_api_keys("sim:super-secret-value")
    assert "super-secret-value" not in repr(keys)
    with pytest.raises(ValueError, match="scope") as error:
        parse_api_keys("sim:super-secret-value:zone=1")
    assert "super-secret-value" not in str(error.value)
