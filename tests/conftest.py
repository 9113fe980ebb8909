"""Fixtures: each test gets its own database; worlds are built by ``tests.worlds``."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from matrix.blueprint import Blueprint, load_blueprint
from matrix.db import make_engine, migrate
from matrix.roster import import_roster, read_roster
from tests import worlds

PG_URL = os.environ.get("QUNMATRIX_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture
def bp() -> Blueprint:
    return load_blueprint("young_pioneers")


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = make_engine(f"sqlite:///{tmp_path / 'test.db'}")
    migrate(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def province_db(engine: Engine, bp: Blueprint, tmp_path: Path) -> Engine:
    """A database holding ``worlds.province()``."""
    units, persons = worlds.write_roster(tmp_path, *worlds.province())
    import_roster(engine, read_roster(units, persons, bp), bp)
    return engine


@contextmanager
def _fresh_pg() -> Iterator[Engine]:
    """A fresh, migrated PostgreSQL database, dropped afterwards."""
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        admin.dispose()
        message = (
            f"PostgreSQL is not reachable at {PG_URL} ({type(exc).__name__}). "
            "Start it (bash .ci/run does) or set QUNMATRIX_TEST_PG."
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    name = f"qm_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    eng = make_engine(PG_URL.rsplit("/", 1)[0] + f"/{name}")
    try:
        migrate(eng)
        yield eng
    finally:
        eng.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def pg_engine() -> Iterator[Engine]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    with _fresh_pg() as eng:
        yield eng


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_engine(request: pytest.FixtureRequest) -> Engine:
    """The test once on SQLite and once on PostgreSQL."""
    return request.getfixturevalue("engine" if request.param == "sqlite" else "pg_engine")


@pytest.fixture
def other_pg_engine() -> Iterator[Engine]:
    """A second fresh PostgreSQL database (a restore target, a second server)."""
    with _fresh_pg() as eng:
        yield eng


@pytest.fixture
def errors() -> Iterator[list[BaseException]]:
    """Collects exceptions that would otherwise be swallowed (inside Wechaty's listeners, in bot
    callbacks); the test fails if any is left at the end."""
    caught: list[BaseException] = []
    yield caught
    assert caught == [], f"swallowed errors: {caught!r}"
