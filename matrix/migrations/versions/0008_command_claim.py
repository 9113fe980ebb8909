"""command claims: one reply per command when several bot accounts hear it

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

One row per message fingerprint, taken with INSERT … ON CONFLICT DO UPDATE … WHERE: the
account that gets the row back answers, the others stay silent.
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('command_claim',
    sa.Column('fingerprint', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('account', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('fingerprint')
    )
    op.create_index('ix_command_claim_at', 'command_claim', ['at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_command_claim_at', table_name='command_claim')
    op.drop_table('command_claim')
