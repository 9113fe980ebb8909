"""Migrations: one linear chain in file order, and its head is exactly the schema of the models."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, ForeignKeyConstraint, UniqueConstraint, inspect
from sqlmodel import SQLModel

import matrix.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from matrix.db import MIGRATIONS, _alembic_config, schema_is_current

FILE_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.py$")


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_alembic_config())


def _files() -> list[Path]:
    return sorted(p for p in (MIGRATIONS / "versions").glob("*.py") if p.name != "__init__.py")


def test_every_migration_file_is_numbered_without_gaps() -> None:
    names = [p.name for p in _files()]
    assert names, "no migrations found"
    assert all(FILE_NAME.match(name) for name in names), names
    numbers = [int(name[:4]) for name in names]
    assert numbers == list(range(1, len(numbers) + 1))


def test_the_chain_is_linear_in_file_order() -> None:
    scripts = _scripts()
    assert len(scripts.get_heads()) == 1
    assert len(scripts.get_bases()) == 1
    by_file = {Path(rev.path).name: rev for rev in scripts.walk_revisions()}
    files = [p.name for p in _files()]
    assert sorted(by_file) == files  # every file is a revision, every revision a file
    previous: str | None = None
    for name in files:
        rev = by_file[name]
        assert rev.revision == name[:4], f"{name}: revision id should be its number"
        assert rev.down_revision == previous, f"{name}: should revise {previous}"
        assert not rev.branch_labels and not rev.dependencies
        previous = rev.revision
    assert scripts.get_current_head() == previous


def _schema_differences(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, SQLModel.metadata))


def _indexes_and_constraints(engine: Engine) -> set[tuple[str, str, str]]:
    """What the database holds besides columns: indexes by name, unique and foreign keys by
    their columns (the models leave most constraints for the database to name)."""
    found: set[tuple[str, str, str]] = set()
    inspector = inspect(engine)
    for table in inspector.get_table_names():
        found |= {(table, "index", str(i["name"])) for i in inspector.get_indexes(table)}
        found |= {
            (table, "unique", ",".join(u["column_names"]))
            for u in inspector.get_unique_constraints(table)
        }
        found |= {
            (table, "fk", ",".join(f["constrained_columns"]))
            for f in inspector.get_foreign_keys(table)
        }
    return found


def _models_indexes_and_constraints() -> set[tuple[str, str, str]]:
    found: set[tuple[str, str, str]] = set()
    for table in SQLModel.metadata.tables.values():
        found |= {(table.name, "index", str(i.name)) for i in table.indexes}
        for c in table.constraints:
            if isinstance(c, UniqueConstraint):
                found.add((table.name, "unique", ",".join(c.columns.keys())))
            elif isinstance(c, ForeignKeyConstraint):
                found.add((table.name, "fk", ",".join(c.column_keys)))
    return found


def _head_is_the_models(engine: Engine) -> None:
    assert schema_is_current(engine)
    assert _schema_differences(engine) == []
    tables = set(inspect(engine).get_table_names()) - {"alembic_version"}
    assert tables == set(SQLModel.metadata.tables)
    assert _indexes_and_constraints(engine) >= _models_indexes_and_constraints()


def test_migrations_build_exactly_the_models(engine: Engine) -> None:
    """The ``engine`` fixture is an empty SQLite database upgraded to head."""
    _head_is_the_models(engine)


@pytest.mark.postgres
def test_migrations_build_exactly_the_models_on_postgresql(pg_engine: Engine) -> None:
    """The ``pg_engine`` fixture is an empty PostgreSQL database upgraded to head."""
    _head_is_the_models(pg_engine)
