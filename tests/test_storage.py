"""Storage: the migrations are the schema, the audit log is append-only, PostgreSQL works too."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, exc, func, inspect, select, text

from matrix import audit_log
from matrix.blueprint import Blueprint
from matrix.db import _alembic_config, make_engine, migrate, require_schema, schema_is_current
from matrix.errors import MatrixError
from matrix.models import AuditEntry, Person
from matrix.roster import import_roster, read_roster
from matrix.tree import UnitTree
from tests import worlds


def _down_and_up(engine: Engine) -> None:
    """Migrate down to the first revision and up again: every downgrade undoes its upgrade."""
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")
    tables = set(inspect(engine).get_table_names())
    assert "provision_run" not in tables and "media_account" not in tables
    migrate(engine)
    assert schema_is_current(engine)
    assert "ix_provision_run_open_scope" in {
        i["name"] for i in inspect(engine).get_indexes("provision_run")
    }


def test_migrations_go_down_and_up_on_sqlite(engine: Engine) -> None:
    _down_and_up(engine)


@pytest.mark.postgres
def test_migrations_go_down_and_up_on_postgresql(pg_engine: Engine) -> None:
    _down_and_up(pg_engine)


def test_an_uninitialised_database_says_to_run_init(tmp_path: Path) -> None:
    eng = make_engine(f"sqlite:///{tmp_path / 'new.db'}")
    assert not schema_is_current(eng)
    with pytest.raises(MatrixError, match="qunmatrix init"):
        require_schema(eng)
    migrate(eng)
    migrate(eng)  # idempotent
    assert schema_is_current(eng)


def _audit_is_append_only(engine: Engine) -> None:
    with engine.begin() as conn:
        audit_log.record(conn, "wxid_admin", "roster.import", "P", units=3)
    with engine.begin() as conn:
        [entry] = audit_log.entries(conn)
    assert (entry.actor, entry.action, entry.unit_code) == ("wxid_admin", "roster.import", "P")
    assert '"units": 3' in entry.detail
    for statement in ("UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log"):
        with pytest.raises(exc.DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(AuditEntry)).scalar_one() == 1


def test_audit_log_is_append_only_on_sqlite(engine: Engine) -> None:
    _audit_is_append_only(engine)


@pytest.mark.postgres
def test_audit_log_is_append_only_on_postgresql(pg_engine: Engine) -> None:
    _audit_is_append_only(pg_engine)


@pytest.mark.postgres
def test_postgresql_round_trip(pg_engine: Engine, bp: Blueprint, tmp_path: Path) -> None:
    units, persons = worlds.write_roster(tmp_path, *worlds.province(counties=3, schools=4))
    first = import_roster(pg_engine, read_roster(units, persons, bp), bp)
    assert first.units.added == 2 + 3 + 12
    again = import_roster(pg_engine, read_roster(units, persons, bp), bp)
    assert again.unchanged
    tree = UnitTree.load(pg_engine, bp.level_keys)
    assert tree.counts_by_level("P") == {"province": 1, "city": 1, "county": 3, "school": 12}
    with pg_engine.connect() as conn:
        assert (
            conn.execute(select(func.count()).select_from(Person)).scalar_one()
            == first.persons.added
        )
