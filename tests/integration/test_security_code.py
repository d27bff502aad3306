"""Guards over the code itself: SQL only with parameters, keys compared in constant time."""

from __future__ import annotations

import ast
import hmac
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from common import keys
from tests.support.stack import ROOT

PACKAGES = (
    "common", "db", "api_gateway", "ingestion_service", "control_service",
    "monitoring_service", "simulator",
)  # fmt: skip
SQL_CALLS = {"execute", "executemany", "fetch", "fetchrow", "fetchval", "prepare", "cursor"}
# Reviewed places that must splice an identifier: (file, why).
REVIEWED = {
    "db/migrate.py": "CREATE DATABASE names the DSN's own database; identifiers take no $n",
}
SQL_WORDS = ("SELECT ", "INSERT ", "UPDATE ", "DELETE ", "CREATE ", "DROP ", "ALTER ")


def _sources() -> Iterator[tuple[Path, ast.Module]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield path, ast.parse(path.read_text(), filename=str(path))


def _functions(tree: ast.Module) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def _is_sql_text(node: ast.AST) -> bool:
    text = ast.unparse(node).upper()
    return any(word in text for word in SQL_WORDS)


def _built(node: ast.AST) -> bool:
    """Text assembled at run time: an f-string with fields, %, + or .format()."""
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(part, ast.FormattedValue) for part in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
        return not all(isinstance(side, ast.Constant) for side in (node.left, node.right))
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "format"
    )


def test_sql_handed_to_the_driver_is_never_built_inline_from_values() -> None:
    offenders = []
    for path, tree in _sources():
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr in SQL_CALLS and node.args and _built(node.args[0]):
                # Identifiers (table and column names) may be spliced in; values never.
                fields = [
                    part.value
                    for part in ast.walk(node.args[0])
                    if isinstance(part, ast.FormattedValue)
                ]
                reviewed = str(path.relative_to(ROOT)) in REVIEWED
                splices_values = any(not isinstance(f, ast.Name | ast.Subscript) for f in fields)
                if not reviewed and (not fields or splices_values):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, f"SQL built from expressions (use $n parameters): {offenders}"


def test_public_functions_never_splice_their_own_arguments_into_sql() -> None:
    offenders = []
    for path, tree in _sources():
        for function in _functions(tree):
            if function.name.startswith("_"):
                continue  # private helpers build fixed statements from fixed tables at import
            arguments = {a.arg for a in (*function.args.args, *function.args.kwonlyargs)}
            for node in ast.walk(function):
                if isinstance(node, ast.JoinedStr) and _is_sql_text(node):
                    names = {
                        name.id
                        for part in node.values
                        if isinstance(part, ast.FormattedValue)
                        for name in ast.walk(part.value)
                        if isinstance(name, ast.Name)
                    }
                    if names & arguments:
                        offenders.append(
                            f"{path.relative_to(ROOT)}:{node.lineno} {names & arguments}"
                        )
    assert not offenders, f"request values spliced into SQL text: {offenders}"


def test_guard_catches_sql_built_from_a_value() -> None:
    """The first guard bites: an f-string with a call inside, passed to execute."""
    source = (
        "async def f(conn, unit):\n    await conn.execute(f'DELETE FROM t WHERE u={unit.strip()}')"
    )
    tree = ast.parse(source)
    call = next(
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call)
        and isinstance(n.func, ast.Attribute)
        and n.func.attr == "execute"
    )
    assert _built(call.args[0])
    assert _is_sql_text(call.args[0])


def test_ruff_keeps_flagging_string_built_sql() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]["lint"]
    assert "S" in config["select"] or "S608" in config["select"]
    assert "S608" not in config.get("ignore", [])


def test_key_lookup_compares_every_key_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed = keys.parse_api_keys("a:first-secret,b:second-secret,c:third-secret")
    calls: list[tuple[bytes, bytes]] = []
    original = hmac.compare_digest

    def counting(left: bytes, right: bytes) -> bool:
        calls.append((left, right))
        return original(left, right)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    for presented in ("first-secret", "third-secret", "nobody-knows-this"):
        calls.clear()
        keys.find_key(parsed, presented)
        assert len(calls) == len(parsed), "the lookup stopped early: timing reveals the key"


def test_key_repr_shows_no_secret_material() -> None:
    (key,) = keys.parse_api_keys("north:north-secret-123:site=SITE-01")
    assert "north-secret-123" not in repr(key)
    assert key.digest.hex() not in repr(key)
