"""Migration planning picks one file per version for the database's flavor."""

from __future__ import annotations

from pathlib import Path

import pytest

from db.migrate import plan, statements


def test_every_flavor_gets_every_version_once() -> None:
    postgres = plan("postgres")
    timescale = plan("timescale")
    assert [m.version for m in postgres] == [m.version for m in timescale]
    assert [m.version for m in postgres] == sorted(m.version for m in postgres)
    assert all(".timescale." not in m.path.name for m in postgres)
    assert all(".postgres." not in m.path.name for m in timescale)


def test_timescale_extras_run_outside_a_transaction_and_split_cleanly() -> None:
    extras = next(m for m in plan("timescale") if m.version == "0002_telemetry_extras")
    assert not extras.transactional
    parts = statements(extras.sql)
    assert any(
        p.startswith("CREATE MATERIALIZED VIEW IF NOT EXISTS megapack_telemetry_1m") for p in parts
    )
    assert sum("add_continuous_aggregate_policy" in p for p in parts) == 2
    assert all(not p.endswith(";") for p in parts)


def test_unknown_file_names_are_refused(tmp_path: Path) -> None:
    (tmp_path / "0001_ok.sql").write_text("SELECT 1;")
    (tmp_path / "readme.sql").write_text("")
    with pytest.raises(ValueError, match="not understood"):
        plan("postgres", tmp_path)
