"""Backup and restore: one portable file format, a SQLite database file.

A backup of either backend is a SQLite file holding the same schema (at the migration head) and
every row: from SQLite it is taken with SQLite's online backup API (a consistent copy while the
bot runs), from PostgreSQL by a logical copy through SQLAlchemy inside one REPEATABLE READ
transaction (a consistent snapshot). ``pg_dump`` is not used: its custom format needs a client
no older than the server, restores only into PostgreSQL, and would be a second format to test;
one file that restores into either backend (and that ``sqlite3`` can open to look inside) is
what an operator moving from a county's SQLite to a province's PostgreSQL needs.

Restore migrates a copy of the file to the head first (a backup from an older version), then
copies every row into the target in one transaction, ids included, so the audit log keeps its
entries and their order. The audit log is append-only (triggers refuse UPDATE and DELETE), so a
target whose log has entries is always refused: restore into a new database. A target holding
other rows is refused unless ``force`` is given; then they are deleted first, in the same
transaction.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection, Engine, Table, delete, func, inspect, select, text
from sqlmodel import SQLModel

from matrix import audit_chain, models  # noqa: F401  (models registers every table)
from matrix.db import make_engine, migrate, require_schema
from matrix.errors import MatrixError

CHUNK = 5_000
SQLITE_MAGIC = b"SQLite format 3\x00"
SKIPPED = {"alembic_version"}  # written by the migrations, not copied
# the audit log and its chain head are not copied row by row: the head is the target's own (its
# guards let it move only by an append), and the entries are appended to it as they are
CHAIN = {"audit_log", "audit_head"}


@dataclass
class CopyReport:
    """Rows copied per table, in dependency order."""

    tables: dict[str, int] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(self.tables.values())


def _tables() -> list[Table]:
    return list(SQLModel.metadata.sorted_tables)


def _plain_tables() -> list[Table]:
    """The tables copied row by row: all but the audit chain's."""
    return [t for t in _tables() if t.name not in CHAIN]


def _check_complete(conn: Connection) -> None:
    """Refuse to copy a database holding tables the code does not know: they would be lost."""
    known = {t.name for t in _tables()} | SKIPPED
    extra = sorted(set(inspect(conn).get_table_names()) - known)
    if extra:
        raise MatrixError(
            f"数据库中有程序不认识的表：{'、'.join(extra)}，备份会遗漏它们",
            fix="请用与该数据库同一版本的 qunmatrix 备份",
        )


def _audit_table() -> Table:
    return SQLModel.metadata.tables["audit_log"]


def row_count(conn: Connection) -> int:
    """How many rows the database holds, over every table of the schema (audit entries
    included; the chain's one head row, which every database has, not)."""
    tables = [*_plain_tables(), _audit_table()]
    return sum(int(conn.execute(select(func.count()).select_from(t)).scalar_one()) for t in tables)


def _copy_rows(src: Connection, dst: Connection) -> CopyReport:
    report = CopyReport()
    for table in _plain_tables():
        n = 0
        # parents before children where a table refers to itself (unit.parent_code)
        first = [table.c.depth] if "depth" in table.c else []
        query = select(table).order_by(*first, *table.primary_key.columns)
        for chunk in src.execution_options(yield_per=CHUNK).execute(query).mappings().partitions():
            dst.execute(table.insert(), [dict(r) for r in chunk])
            n += len(chunk)
        report.tables[table.name] = n
    log = _audit_table()
    entries = src.execution_options(yield_per=CHUNK).execute(select(log).order_by(log.c.id))
    report.tables[log.name] = audit_chain.replay(dst, (dict(r) for r in entries.mappings()))
    if dst.dialect.name == "postgresql":
        _reset_sequences(dst)
    return report


def _reset_sequences(conn: Connection) -> None:
    """Rows came with their ids: the next insert must not reuse one."""
    for table in _tables():
        pk = list(table.primary_key.columns)
        if len(pk) != 1 or not pk[0].autoincrement or pk[0].type.python_type is not int:
            continue
        name, col = table.name, pk[0].name
        conn.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{name}', '{col}'), "
                f'COALESCE(MAX("{col}"), 1), MAX("{col}") IS NOT NULL) FROM "{name}"'
            )
        )


def backup(engine: Engine, path: str | Path, *, force: bool = False) -> CopyReport:
    """Write the whole database to the SQLite file ``path``."""
    path = Path(path)
    require_schema(engine)
    if path.exists() and not force:
        raise MatrixError(f"备份文件 {path} 已存在", fix="请换一个文件名，或加 --force 覆盖")
    tmp = path.with_name(path.name + ".part")
    tmp.unlink(missing_ok=True)
    # one snapshot for every table: the bot may be writing meanwhile
    level = "SERIALIZABLE" if engine.dialect.name == "sqlite" else "REPEATABLE READ"
    with engine.connect().execution_options(isolation_level=level) as src:
        _check_complete(src)
        if engine.dialect.name == "sqlite":
            target = sqlite3.connect(tmp)
            try:
                src.connection.driver_connection.backup(target)  # type: ignore[union-attr]
            finally:
                target.close()
            report = CopyReport({t.name: 0 for t in _tables()})
            report.tables = _counts(tmp)
        else:
            out = make_engine(f"sqlite:///{tmp}")
            try:
                migrate(out)
                with out.begin() as dst:
                    report = _copy_rows(src, dst)
            finally:
                out.dispose()
    tmp.replace(path)
    return report


def _counts(path: Path) -> dict[str, int]:
    eng = make_engine(f"sqlite:///{path}")
    try:
        with eng.connect() as conn:
            return {
                t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
                for t in _tables()
            }
    finally:
        eng.dispose()


def restore(engine: Engine, path: str | Path, *, force: bool = False) -> CopyReport:
    """Fill the database of ``engine`` from the backup file ``path``."""
    path = Path(path)
    if not path.is_file():
        raise MatrixError(f"找不到备份文件 {path}", fix="请检查路径")
    with path.open("rb") as fh:
        if fh.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
            raise MatrixError(
                f"{path} 不是 qunmatrix 备份文件", fix="请用 qunmatrix backup 生成的文件"
            )
    migrate(engine)
    with tempfile.TemporaryDirectory(prefix="qunmatrix-restore-") as tmp:
        copy = Path(tmp) / "backup.db"
        shutil.copyfile(path, copy)
        source = make_engine(f"sqlite:///{copy}")
        try:
            migrate(source)  # a backup from an older version is brought up to date first
            with source.connect() as src, engine.begin() as dst:
                _check_complete(src)
                history = int(
                    dst.execute(select(func.count()).select_from(_audit_table())).scalar_one()
                )
                if history:
                    raise MatrixError(
                        f"目标数据库的审计日志已有 {history:,} 条记录；审计日志只能追加，"
                        "恢复不能覆盖它",
                        fix="请恢复到一个新的空数据库（SQLite 用新的文件名，PostgreSQL 先 "
                        "createdb 一个新库），再把配置中的 db 指向它",
                    )
                held = row_count(dst)
                if held and not force:
                    raise MatrixError(
                        f"目标数据库已有 {held:,} 行数据，恢复会覆盖它们",
                        fix="请恢复到一个新的空数据库，或确认无误后加 --force",
                    )
                for table in reversed(_plain_tables()):
                    dst.execute(delete(table))
                return _copy_rows(src, dst)
        finally:
            source.dispose()
