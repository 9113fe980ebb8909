"""adopted groups: rooms built by hand, brought under the bot (认领), and the rooms bots sit in

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02

A group row whose room a person built carries when and by whom it was adopted; ``seen_room``
holds every room a bot account listed, matrix group or not, for ``qunmatrix adopt --match``.
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('wgroup', schema=None) as batch_op:
        batch_op.add_column(sa.Column('adopted_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(
            sa.Column('adopted_by', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True)
        )
    op.create_table('seen_room',
    sa.Column('account_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('room_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('topic', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('member_count', sa.Integer(), nullable=False),
    sa.Column('seen_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('account_id', 'room_id')
    )


def downgrade() -> None:
    op.drop_table('seen_room')
    with op.batch_alter_table('wgroup', schema=None) as batch_op:
        batch_op.drop_column('adopted_by')
        batch_op.drop_column('adopted_at')
