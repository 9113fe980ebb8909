"""relay accounts that are lost: logged out, offline too long or restricted

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

An account that is lost hands its pending copies to the other accounts in those groups and is
left out of new plans until it serves again (``lost_at`` back to NULL).
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('relay_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lost_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(
            sa.Column('lost_reason', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table('relay_account', schema=None) as batch_op:
        batch_op.drop_column('lost_reason')
        batch_op.drop_column('lost_at')
