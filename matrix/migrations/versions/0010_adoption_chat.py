"""adoption in chat: the rooms where the bot introduced itself, the requests to owners

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02

``room_greeting`` remembers each room outside the matrix where the bot introduced itself, so a
restart does not repeat it; ``owner_request`` holds what the bots asked the owner and admins of
an adopted room to do (they lack the rights), until a read of the room shows it done.
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('room_greeting',
    sa.Column('room_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('account_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('greeted_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('room_id')
    )
    op.create_table('owner_request',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=True),
    sa.Column('contact_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('asked_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['wgroup.id'], ),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('owner_request', schema=None) as batch_op:
        batch_op.create_index('ix_owner_request_group', ['group_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('owner_request', schema=None) as batch_op:
        batch_op.drop_index('ix_owner_request_group')
    op.drop_table('owner_request')
    op.drop_table('room_greeting')
