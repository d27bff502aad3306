"""Guards over the code itself: SQL only with parameters, keys compared in constant time."""

from __future__ import annotations

import ast
import hmac
import tomllib
from collections.abc import Iterator

import pytest

from common import keys
from tests.support.stack import ROOT

PACKAGES = (
    "common", "db", "api_gateway", "ingestion_service", "control_service",
    "monitoring_service", "simulator",
)  # fmt: skip
SQL_CALLS = {"execute", "executemany", "fetch", "fetchrow", "fetchval", "prepare", "cursor"}
# Reviewed places that must splice something other than a module-level constant into SQL:
# a whole file ("path") or one function ("path::function"), with why it is safe.
REVIEWED = {
    "db/migrate.py": "CREATE DATABASE names the DSN's own database; identifiers take no $n",
    "db/commands.py::_transition_sql": "statuses from the fixed PREDECESSORS table, at import",
    "db/monitoring_queries.py::latest_reading": "table and column from the fixed _TABLES",
    "db/monitoring_queries.py::telemetry": "table and column names from the fixed _TABLES",
    "db/command_groups.py::units_for": "one of three fixed WHERE clauses on the fixed _UNIT",
    "db/command_jobs.py::verify_effects": "fixed fragments: _MATCHES (EFFECT_TOLERANCE), lag",
    "db/kpis.py": "fragments from ORIGIN, the fixed STATES and the partials constants only",
    "db/monitoring_alert_actions.py::list_alerts": "COLUMNS: the fixed SHELVED expression",
    "db/monitoring_alert_actions.py::get_alert": "COLUMNS: the fixed SHELVED expression",
    "db/monitoring_alerts.py::change_severity": "SEVERITY_RANK over fixed column names",
}
SQL_WORDS = ("SELECT ", "INSERT ", "UPDATE ", "DELETE ", "CREATE ", "DROP ", "ALTER ")


def _sources() -> Iterator[tuple[str, ast.Module]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield str(path.relative_to(ROOT)), ast.parse(path.read_text(), filename=str(path))


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


def _constants(tree: ast.Module) -> set[str]:
    """Names the module binds, at its top level, to a string literal (fixed SQL fragments)."""
    return {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign | ast.AnnAssign)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    }


def _in_functions(tree: ast.AST) -> Iterator[tuple[str, ast.AST]]:
    """(name of the innermost enclosing function, or "" at module level; node) for every node."""

    def walk(node: ast.AST, function: str) -> Iterator[tuple[str, ast.AST]]:
        for child in ast.iter_child_nodes(node):
            inner = (
                child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else None
            )
            yield function, child
            yield from walk(child, inner or function)

    yield from walk(tree, "")


def _unreviewed_splices(path: str, tree: ast.Module) -> list[str]:
    """Places where SQL text is built from anything but the module's constant strings:
    public or private functions alike, fields that are plain names included."""
    constants = _constants(tree)
    found = []
    for function, node in _in_functions(tree):
        if path in REVIEWED or f"{path}::{function}" in REVIEWED:
            continue
        sql: ast.expr | None = None
        if isinstance(node, ast.JoinedStr) and _built(node) and _is_sql_text(node):
            sql = node  # an SQL f-string, wherever it is and whatever it is handed to
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in SQL_CALLS
            and node.args
            and _built(node.args[0])
        ):
            sql = node.args[0]  # text built inline for the driver, SQL words or not
        if sql is None:
            continue
        fields = [part.value for part in ast.walk(sql) if isinstance(part, ast.FormattedValue)]
        fixed = [isinstance(f, ast.Name) and f.id in constants for f in fields]
        if not isinstance(sql, ast.JoinedStr) or not all(fixed):
            where = f"{path}:{getattr(sql, 'lineno', '?')} in {function or 'module'}"
            found.append(f"{where}: {ast.unparse(sql)[:60]}")
    return sorted(set(found))


def test_sql_is_never_built_from_anything_but_constant_fragments() -> None:
    offenders = [place for path, tree in _sources() for place in _unreviewed_splices(path, tree)]
    assert not offenders, f"SQL built at run time (use $n parameters, or review it): {offenders}"


def test_every_reviewed_place_still_exists() -> None:
    """A stale entry would silently review whatever later takes the name."""
    functions = {
        f"{path}::{node.name}"
        for path, tree in _sources()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    files = {path for path, _ in _sources()}
    assert set(REVIEWED) <= functions | files


@pytest.mark.parametrize(
    "source",
    [
        # a call inside the field
        "async def f(conn, unit):\n    await conn.execute(f'DELETE FROM t WHERE u={unit.strip()}')",
        # a plain name: the argument itself
        "async def f(conn, unit):\n    await conn.execute(f'DELETE FROM t WHERE u={unit}')",
        # a private function, building the text to hand on later
        "def _q(unit):\n    return f'SELECT * FROM t WHERE u = {unit}'",
        # a local name, not a module constant
        "def q(x):\n    where = str(x)\n    return f'SELECT * FROM t WHERE {where}'",
        # % and + on SQL handed to the driver
        "async def f(conn, unit):\n    await conn.fetch('SELECT * FROM t WHERE u = %s' % unit)",
        "async def f(conn, u):\n    await conn.fetch('SELECT * FROM t WHERE u = ' + u)",
    ],
)
def test_the_guard_catches_sql_built_from_a_value(source: str) -> None:
    assert _unreviewed_splices("example.py", ast.parse(source))


def test_the_guard_lets_module_constants_through() -> None:
    source = (
        "COLUMNS = 'a, b'\n"
        "async def f(conn, unit):\n"
        "    await conn.fetch(f'SELECT {COLUMNS} FROM t WHERE u = $1', unit)"
    )
    assert _unreviewed_splices("example.py", ast.parse(source)) == []


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
