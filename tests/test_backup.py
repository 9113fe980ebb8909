"""``qunmatrix backup`` / ``restore``: every row back where it was, the audit log in order, on
SQLite and PostgreSQL and across them; a database holding data is never overwritten unasked."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, select
from typer.testing import CliRunner

from bot.cli import app
from matrix import audit_chain, audit_log
from matrix.backup import backup, restore, row_count
from matrix.db import make_engine, migrate
from matrix.errors import MatrixError
from matrix.models import Person, Unit
from matrix.roster import import_roster, read_roster
from matrix.tables import AUDIT_ENTRY, table_of
from tests import worlds


def filled(engine: Engine, bp, tmp_path: Path) -> Engine:
    units, persons = worlds.write_roster(tmp_path, *worlds.province())
    import_roster(engine, read_roster(units, persons, bp), bp)
    with engine.begin() as conn:
        for n in range(5):
            audit_log.record(conn, f"wxid_{n}", "media.register", "K1", value=f"号{n}")
    return engine


def snapshot(engine: Engine) -> dict[str, list[tuple]]:
    """What must survive: the audit log's rows in order with its hash chain intact and the same
    head, units and persons with their ids."""
    with engine.connect() as conn:
        assert audit_chain.verify(conn).intact
        return {
            "anchor": [str(audit_chain.anchor(conn))],
            "audit": [
                tuple(r) for r in conn.execute(select(AUDIT_ENTRY).order_by(AUDIT_ENTRY.c.id))
            ],
            "units": [tuple(r) for r in conn.execute(select(table_of(Unit)).order_by("code"))],
            "persons": [tuple(r) for r in conn.execute(select(table_of(Person)).order_by("id"))],
        }


def test_sqlite_round_trip_keeps_every_row_and_the_audit_order(engine, bp, tmp_path):
    before = snapshot(filled(engine, bp, tmp_path))
    report = backup(engine, tmp_path / "b.db")
    assert report.tables["audit_log"] == len(before["audit"]) == 5
    fresh = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    restore(fresh, tmp_path / "b.db")
    assert snapshot(fresh) == before


def test_postgresql_round_trip_and_on_to_sqlite(pg_engine, other_pg_engine, bp, tmp_path):
    before = snapshot(filled(pg_engine, bp, tmp_path))
    backup(pg_engine, tmp_path / "pg.db")
    restore(other_pg_engine, tmp_path / "pg.db")
    assert snapshot(other_pg_engine) == before
    with other_pg_engine.begin() as conn:  # ids continue after the restored ones
        audit_log.record(conn, "cli:test", "after.restore", None)
        last = (
            conn.execute(select(AUDIT_ENTRY.c.id).order_by(AUDIT_ENTRY.c.id.desc()))
            .scalars()
            .first()
        )
    assert last == before["audit"][-1][0] + 1
    on_sqlite = make_engine(f"sqlite:///{tmp_path / 'moved.db'}")
    restore(on_sqlite, tmp_path / "pg.db")
    assert snapshot(on_sqlite) == before


def test_sqlite_backup_restores_into_postgresql(engine, pg_engine, bp, tmp_path):
    before = snapshot(filled(engine, bp, tmp_path))
    backup(engine, tmp_path / "b.db")
    restore(pg_engine, tmp_path / "b.db")
    assert snapshot(pg_engine) == before


def test_restore_never_overwrites_an_audit_log_and_other_data_only_when_forced(
    engine, bp, tmp_path
):
    filled(engine, bp, tmp_path)
    backup(engine, tmp_path / "b.db")
    runner = CliRunner()
    db = f"sqlite:///{tmp_path / 'test.db'}"
    result = runner.invoke(app, ["--db", db, "restore", "--force", str(tmp_path / "b.db")])
    assert result.exit_code == 2 and "审计日志只能追加" in result.output
    assert "新的空数据库" in result.output
    other = f"sqlite:///{tmp_path / 'other.db'}"
    target = make_engine(other)
    migrate(target)
    with target.begin() as conn:  # data, but no history yet
        conn.execute(
            insert(table_of(Unit)).values(
                code="X", name="旧", level="province", path="/X/", depth=0
            )
        )
    result = runner.invoke(app, ["--db", other, "restore", str(tmp_path / "b.db")])
    assert result.exit_code == 2 and "目标数据库已有 1 行数据" in result.output
    result = runner.invoke(app, ["--db", other, "restore", "--force", str(tmp_path / "b.db")])
    assert result.exit_code == 0, result.output
    with target.connect() as conn:
        codes = set(conn.execute(select(table_of(Unit).c.code)).scalars())
        actions = [e.action for e in audit_log.entries(conn)]
    assert "X" not in codes and "P" in codes and actions[0] == "db.restore"  # newest first


def test_backup_does_not_overwrite_a_file_and_restore_checks_the_file(engine, bp, tmp_path):
    filled(engine, bp, tmp_path)
    (tmp_path / "b.db").write_text("old")
    with pytest.raises(MatrixError, match="已存在"):
        backup(engine, tmp_path / "b.db")
    assert (tmp_path / "b.db").read_text() == "old"
    fresh = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    with pytest.raises(MatrixError, match="不是 qunmatrix 备份文件"):
        restore(fresh, tmp_path / "b.db")
    migrate(fresh)
    with fresh.connect() as conn:
        assert row_count(conn) == 0
