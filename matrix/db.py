"""Engines, sessions and schema migrations.

SQLite is the embedded default, PostgreSQL the multi-instance backend; anything else SQLAlchemy
speaks may work. The schema is only ever changed by the versioned migrations in
``matrix/migrations`` (``qunmatrix init`` applies them), never by ``create_all``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import ClauseElement, Connection, Engine, create_engine, event, exc
from sqlalchemy.sql.compiler import SQLCompiler
from sqlmodel import Session

from matrix.errors import MatrixError

DEFAULT_URL = "sqlite:///qunmatrix.db"
MIGRATIONS = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets the bot read while an import writes; NORMAL is safe with WAL and much faster
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def normalize_url(url: str) -> str:
    """Accept the URLs people write and pick our drivers: plain postgres:// means psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str = DEFAULT_URL, **kwargs: Any) -> Engine:
    url = normalize_url(url)
    try:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
            event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        return create_engine(url, pool_pre_ping=True, **kwargs)
    except (exc.ArgumentError, exc.NoSuchModuleError, ImportError) as error:
        raise MatrixError(
            "数据库地址看不懂", fix="请写成 sqlite:///文件名.db 或 postgresql://用户@主机/库名"
        ) from error


@contextmanager
def reach(engine: Engine) -> Iterator[Connection]:
    """A connection, or a MatrixError saying the database cannot be reached (a wrong path, a
    server that is down) instead of the driver's traceback."""
    try:
        conn = engine.connect()
    except exc.OperationalError as error:
        raise MatrixError(
            f"无法连接数据库 {engine.url.render_as_string(hide_password=True)}",
            fix="请检查 --db（或 QUNMATRIX_DB）：文件夹是否存在、有无权限、数据库服务是否已启动",
        ) from error
    with conn:
        yield conn


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` (idempotent)."""
    cfg = _alembic_config()
    with reach(engine) as conn, conn.begin():
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def schema_is_current(engine: Engine) -> bool:
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    with reach(engine) as conn:
        return MigrationContext.configure(conn).get_current_revision() == head


def require_schema(engine: Engine) -> None:
    """Fail with a fix when the database was never initialised or is behind the code."""
    if not schema_is_current(engine):
        raise MatrixError(
            f"数据库 {engine.url.render_as_string(hide_password=True)} 尚未初始化或版本过旧",
            fix="请先运行 `qunmatrix init`",
        )


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: committed on success, rolled back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def raw_rows(conn: Connection, statement: ClauseElement) -> Any:
    """Run a SELECT on the driver's own cursor and return that cursor to iterate over.

    For reads of hundreds of thousands of rows of plain ints and strings: SQLAlchemy's row
    objects cost as much again as the read itself. The statement is still built with Core
    and runs in ``conn``'s transaction; no result processing happens, so select only columns
    the driver returns as they are (no dates, no JSON).
    """
    compiled = cast(
        SQLCompiler,
        statement.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True}),
    )
    params: Any = compiled.params
    if compiled.positional:
        params = tuple(compiled.params[name] for name in compiled.positiontup or ())
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    cursor.execute(compiled.string, params)
    return cursor


def inserted_id(result: Any) -> int:
    """The primary key of the row an ``insert(...)`` just added."""
    return int(result.inserted_primary_key[0])


def ping(conn: Connection) -> None:
    """Ask the database the smallest question (``SELECT 1``); raises when it does not answer."""
    from sqlalchemy import text

    conn.execute(text("SELECT 1"))
