"""The flavor a database is migrated in: recorded once, then kept; conversion files unplanned."""

from __future__ import annotations

import pytest

from db.migrate import MIGRATIONS, MigrationError, choose_flavor, plan


def test_a_new_database_takes_what_the_server_offers() -> None:
    assert choose_flavor(set(), timescale=True) == "timescale"
    assert choose_flavor(set(), timescale=False) == "postgres"


def test_a_migrated_database_keeps_its_recorded_flavor() -> None:
    assert choose_flavor({"postgres"}, timescale=True) == "postgres"
    assert choose_flavor({"timescale"}, timescale=False) == "timescale"


def test_inconsistent_records_stop_with_one_line() -> None:
    with pytest.raises(MigrationError, match="several flavors"):
        choose_flavor({"postgres", "timescale"}, timescale=True)
    with pytest.raises(MigrationError, match="unknown flavor 'oracle'"):
        choose_flavor({"oracle"}, timescale=True)


def test_conversion_files_belong_to_versions_with_both_variants_and_are_never_planned() -> None:
    undo = sorted(MIGRATIONS.glob("*.to_timescale.sql"))
    assert undo, "the plain flavor's 0002 views must give way to the continuous aggregates"
    planned = {m.path for flavor in ("postgres", "timescale") for m in plan(flavor)}
    for path in undo:
        version = path.name.removesuffix(".to_timescale.sql")
        assert path not in planned
        assert (MIGRATIONS / f"{version}.postgres.sql").is_file(), path.name
        assert (MIGRATIONS / f"{version}.timescale.sql").is_file(), path.name
