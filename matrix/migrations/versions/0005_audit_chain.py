"""audit chain: each entry hashed with the one before it, one chain head, guards in the database

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

Entries already in the log are hashed here, in id order, as they are (their ids may have gaps
from rolled-back transactions, their times need not rise): the chain covers the whole history,
and ``audit_head.migrated_id`` says where the entries appended through the head begin, which
count on without gaps and never go back in time.

The guards, on both SQLite and PostgreSQL: no UPDATE or DELETE of an entry (as before), no
INSERT except the next entry at the head (so INSERT OR REPLACE and ON CONFLICT cannot rewrite
one, and nothing is dated before its predecessor), and the head moves only by an append; on
PostgreSQL TRUNCATE is refused too. The owner of the database can drop these; ``qunmatrix log
verify`` with an anchor kept elsewhere still finds what was done.
"""

from datetime import UTC, datetime

from alembic import op
import sqlalchemy as sa
import sqlmodel

from matrix.audit_chain import GENESIS, hash_existing


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

_REFUSE = "audit_log is append-only"
_HEAD_REFUSE = "audit_head moves only by an append"
_log = sa.table(
    'audit_log',
    sa.column('id', sa.Integer()),
    sa.column('at', sqlmodel.sql.sqltypes.UTCDateTime()),
    sa.column('actor', sa.String()),
    sa.column('action', sa.String()),
    sa.column('unit_code', sa.String()),
    sa.column('detail', sa.Text()),
    sa.column('prev_hash', sa.String()),
    sa.column('hash', sa.String()),
)


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    _drop_old_guards(postgres)
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('prev_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column('hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
    last = _hash_history()
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.alter_column('prev_hash', existing_type=sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False)
        batch_op.alter_column('hash', existing_type=sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False)
    head = op.create_table('audit_head',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('last_id', sa.Integer(), nullable=False),
    sa.Column('last_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('last_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('migrated_id', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    last_id, last_hash, last_at = last
    op.bulk_insert(head, [
        {"id": 1, "last_id": last_id, "last_hash": last_hash, "last_at": last_at, "migrated_id": last_id}
    ])
    if postgres:
        _postgres_guards()
    else:
        _sqlite_guards()


def _hash_history() -> tuple[int, str, datetime]:
    """Hash the entries already there; the newest one's id, hash and time."""
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(_log.c.id, _log.c.at, _log.c.actor, _log.c.action, _log.c.unit_code, _log.c.detail)
        .order_by(_log.c.id)
    ).all()
    hashed = list(hash_existing(tuple(r) for r in rows))
    update = (
        sa.update(_log)
        .where(_log.c.id == sa.bindparam('entry_id'))
        .values(prev_hash=sa.bindparam('p'), hash=sa.bindparam('h'))
    )
    for start in range(0, len(hashed), 5000):
        conn.execute(update, [{"entry_id": i, "p": p, "h": h} for i, p, h in hashed[start:start + 5000]])
    if not hashed:
        return 0, GENESIS, datetime(1970, 1, 1, tzinfo=UTC)
    newest = max(r[1] for r in rows)  # appends must not go back before any entry there is
    return hashed[-1][0], hashed[-1][2], newest


def _drop_old_guards(postgres: bool) -> None:
    if postgres:
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")


# an entry may be inserted only as the next one at the head: the head has just been moved to its
# id, it links to the head's hash, it is not older than the head, and no entry has its id yet
_INSERT_ALLOWED = (
    "NEW.id = (SELECT last_id FROM audit_head WHERE id = 1)"
    " AND NEW.prev_hash = (SELECT last_hash FROM audit_head WHERE id = 1)"
    " AND NEW.at >= (SELECT last_at FROM audit_head WHERE id = 1)"
    " AND NOT EXISTS (SELECT 1 FROM audit_log WHERE id = NEW.id)"
)
# the head moves one step forward (an append begins), or settles on the entry just inserted
_HEAD_MOVE_ALLOWED = (
    "NEW.id = OLD.id AND ("
    "(NEW.last_id = OLD.last_id + 1 AND NEW.last_hash = OLD.last_hash"
    " AND NEW.last_at = OLD.last_at AND NEW.migrated_id = OLD.migrated_id)"
    " OR (NEW.last_id = OLD.last_id AND NEW.migrated_id = OLD.migrated_id AND EXISTS ("
    "SELECT 1 FROM audit_log WHERE id = NEW.last_id AND hash = NEW.last_hash AND at = NEW.last_at)))"
)


def _sqlite_guards() -> None:
    refuse = f"BEGIN SELECT RAISE(ABORT, '{_REFUSE}'); END"
    head_refuse = f"BEGIN SELECT RAISE(ABORT, '{_HEAD_REFUSE}'); END"
    op.execute(f"CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log {refuse}")
    op.execute(f"CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log {refuse}")
    # REPLACE deletes the old row without firing the delete trigger: refuse it before it starts
    op.execute(
        "CREATE TRIGGER audit_log_only_at_head BEFORE INSERT ON audit_log "
        f"WHEN NOT ({_INSERT_ALLOWED}) {refuse}"
    )
    op.execute(
        "CREATE TRIGGER audit_head_moves_by_append BEFORE UPDATE ON audit_head "
        f"WHEN NOT ({_HEAD_MOVE_ALLOWED}) {head_refuse}"
    )
    op.execute(f"CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head {head_refuse}")
    op.execute(f"CREATE TRIGGER audit_head_no_insert BEFORE INSERT ON audit_head {head_refuse}")


def _postgres_guards() -> None:
    op.execute(
        "CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF TG_OP = 'INSERT' THEN "
        f"IF {_INSERT_ALLOWED} THEN RETURN NEW; END IF; END IF; "
        f"RAISE EXCEPTION '{_REFUSE}'; END $$"
    )
    op.execute(
        "CREATE TRIGGER audit_log_append_only BEFORE INSERT OR UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
    )
    op.execute(
        "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"
    )
    op.execute(
        "CREATE FUNCTION audit_head_moves_by_append() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF TG_OP = 'UPDATE' THEN "
        f"IF {_HEAD_MOVE_ALLOWED} THEN RETURN NEW; END IF; END IF; "
        f"RAISE EXCEPTION '{_HEAD_REFUSE}'; END $$"
    )
    op.execute(
        "CREATE TRIGGER audit_head_moves_by_append BEFORE INSERT OR UPDATE OR DELETE ON audit_head "
        "FOR EACH ROW EXECUTE FUNCTION audit_head_moves_by_append()"
    )
    op.execute(
        "CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_head_moves_by_append()"
    )


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        for trigger, table in (
            ("audit_log_append_only", "audit_log"),
            ("audit_log_no_truncate", "audit_log"),
            ("audit_head_moves_by_append", "audit_head"),
            ("audit_head_no_truncate", "audit_head"),
        ):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
        op.execute("DROP FUNCTION IF EXISTS audit_head_moves_by_append()")
    else:
        for trigger in ("audit_log_no_update", "audit_log_no_delete", "audit_log_only_at_head"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    op.drop_table('audit_head')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_column('hash')
        batch_op.drop_column('prev_hash')
    _restore_0001_guards(postgres)


def _restore_0001_guards(postgres: bool) -> None:
    """The triggers of migration 0001, as they were."""
    if postgres:
        op.execute(
            "CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{_REFUSE}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
        )
        return
    for verb in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
            f"BEGIN SELECT RAISE(ABORT, '{_REFUSE}'); END"
        )
