"""media accounts and summary indexes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24

media_account holds the seed-000 附表 registrations (one row per unit and kind).
The two indexes serve the build-status summary: ix_unit_level_path finds the units of one level
under a path prefix, and ix_membership_group_state lets member counts per group and state (and
the "expected but not joined" check) be answered from the index alone at national scale.
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('media_account',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('unit_code', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('value', sqlmodel.sql.sqltypes.AutoString(length=512), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['unit_code'], ['unit.code'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('unit_code', 'kind')
    )
    with op.batch_alter_table('membership', schema=None) as batch_op:
        batch_op.create_index('ix_membership_group_state', ['group_id', 'state', 'person_id'], unique=False)

    with op.batch_alter_table('unit', schema=None) as batch_op:
        batch_op.create_index('ix_unit_level_path', ['level', 'path'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('unit', schema=None) as batch_op:
        batch_op.drop_index('ix_unit_level_path')

    with op.batch_alter_table('membership', schema=None) as batch_op:
        batch_op.drop_index('ix_membership_group_state')

    op.drop_table('media_account')
