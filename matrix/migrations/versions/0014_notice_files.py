"""notice files and 群公告: what a notice carries and whether it sets the announcement

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02

A notice row lists the files it carries (``files``, JSON of the bot's copies) and whether it is
also set as the 群公告 (``announce``). A file copy and an announcement are delivery rows of kinds
``file`` and ``announce`` (no column needed). Existing notices carry nothing.
"""

from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('relay_notice', schema=None) as batch_op:
        batch_op.add_column(sa.Column('files', sa.Text(), server_default='[]', nullable=False))
        batch_op.add_column(
            sa.Column('announce', sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table('relay_notice', schema=None) as batch_op:
        batch_op.drop_column('announce')
        batch_op.drop_column('files')
