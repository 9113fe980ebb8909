"""bot: joiners held for review

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-24

held_joiner holds contacts not on the roster who joined a group until an admin approves or
rejects them (#同意 / #拒绝). Interim: to be folded into issue 3's join review at merge.
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0004'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('held_joiner',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('inviter_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('held_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('decided_by', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('decided_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('person_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['group_id'], ['wgroup.id'], ),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('held_joiner', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_held_joiner_contact_id'), ['contact_id'], unique=False)
        batch_op.create_index('ix_held_joiner_group_state', ['group_id', 'state'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('held_joiner', schema=None) as batch_op:
        batch_op.drop_index('ix_held_joiner_group_state')
        batch_op.drop_index(batch_op.f('ix_held_joiner_contact_id'))

    op.drop_table('held_joiner')
