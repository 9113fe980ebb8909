"""returns: forms (填报) and one answer per unit

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02

A form goes down the tree as a notice (``notice_id``); each unit's latest answer is one
``return_answer`` row, its corrections counted in ``revision`` (each one is in the audit log).
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('return_form',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('notice_id', sa.Integer(), nullable=False),
    sa.Column('unit_code', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('fields', sa.Text(), nullable=False),
    sa.Column('deadline', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('issuer_contact', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['notice_id'], ['relay_notice.id'], ),
    sa.ForeignKeyConstraint(['unit_code'], ['unit.code'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('notice_id')
    )
    with op.batch_alter_table('return_form', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_return_form_unit_code'), ['unit_code'], unique=False)

    op.create_table('return_answer',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('form_id', sa.Integer(), nullable=False),
    sa.Column('unit_code', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('answers', sa.Text(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=True),
    sa.Column('contact_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('answered_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['form_id'], ['return_form.id'], ),
    sa.ForeignKeyConstraint(['group_id'], ['wgroup.id'], ),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
    sa.ForeignKeyConstraint(['unit_code'], ['unit.code'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('form_id', 'unit_code')
    )


def downgrade() -> None:
    op.drop_table('return_answer')
    with op.batch_alter_table('return_form', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_return_form_unit_code'))

    op.drop_table('return_form')
