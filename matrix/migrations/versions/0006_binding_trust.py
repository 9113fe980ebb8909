"""binding trust: revoked bindings, office-decided claims, #绑定 attempts

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

A binding an office or the operator ended keeps its row (``revoked_at``) as history; a claim to
be a roster person with office authority is a held ``join_request`` (reason ``claim``) in the
deciding office's group, remembering where it was made (``from_group_id``); ``bind_attempt``
counts #绑定 attempts per contact and per target person (no phone numbers are stored).
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('bind_attempt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('contact_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=True),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('bind_attempt', schema=None) as batch_op:
        batch_op.create_index('ix_bind_attempt_contact_at', ['contact_id', 'at'], unique=False)
        batch_op.create_index('ix_bind_attempt_person_at', ['person_id', 'at'], unique=False)

    with op.batch_alter_table('contact_binding', schema=None) as batch_op:
        batch_op.add_column(sa.Column('revoked_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('revoked_by', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True))

    with op.batch_alter_table('join_request', schema=None) as batch_op:
        batch_op.add_column(sa.Column('from_group_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_join_request_from_group_id', 'wgroup', ['from_group_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('join_request', schema=None) as batch_op:
        batch_op.drop_constraint('fk_join_request_from_group_id', type_='foreignkey')
        batch_op.drop_column('from_group_id')

    with op.batch_alter_table('contact_binding', schema=None) as batch_op:
        batch_op.drop_column('revoked_by')
        batch_op.drop_column('revoked_at')

    with op.batch_alter_table('bind_attempt', schema=None) as batch_op:
        batch_op.drop_index('ix_bind_attempt_person_at')
        batch_op.drop_index('ix_bind_attempt_contact_at')

    op.drop_table('bind_attempt')
