"""notice life cycle: held for #确认, scheduled and recurring, withdrawn and corrected

Revision ID: 0012
Revises: 0009
Create Date: 2026-12-02

A notice row now says where it is in its life (``state``), when a scheduled one goes out
(``send_at``) and how a recurring one repeats (``repeat``); an occurrence names its series, a
correction the notice it corrects; a withdrawal keeps who, when and why. Existing notices are
``live``. A withdrawn copy is a delivery row in state ``withdrawn`` (no column needed).
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('relay_notice', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                'state',
                sqlmodel.sql.sqltypes.AutoString(length=16),
                server_default='live',
                nullable=False,
            )
        )
        batch_op.add_column(sa.Column('send_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(
            sa.Column('repeat', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True)
        )
        batch_op.add_column(sa.Column('series_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('corrects_id', sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column('closed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
        batch_op.add_column(
            sa.Column('closed_by', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True)
        )
        batch_op.add_column(
            sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True)
        )
        batch_op.add_column(
            sa.Column('carries_acks', sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.create_foreign_key(
            'fk_relay_notice_series_id', 'relay_notice', ['series_id'], ['id']
        )
        batch_op.create_foreign_key(
            'fk_relay_notice_corrects_id', 'relay_notice', ['corrects_id'], ['id']
        )


def downgrade() -> None:
    with op.batch_alter_table('relay_notice', schema=None) as batch_op:
        batch_op.drop_constraint('fk_relay_notice_corrects_id', type_='foreignkey')
        batch_op.drop_constraint('fk_relay_notice_series_id', type_='foreignkey')
        for name in (
            'carries_acks', 'reason', 'closed_by', 'closed_at', 'corrects_id', 'series_id', 'repeat', 'send_at',
            'state',
        ):
            batch_op.drop_column(name)
