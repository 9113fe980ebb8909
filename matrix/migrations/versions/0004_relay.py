"""relay: notices, their deliveries, acknowledgements, scheduled jobs, reports, watch flags

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24

Delivery rows are the relay's crash-safe queue: claimed with FOR UPDATE SKIP LOCKED on
PostgreSQL, ordered by (account_id, state, rank, id); ``key`` is unique so that a message is
queued once even if the job that queues it runs twice.
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('relay_account',
    sa.Column('account_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('rate', sa.Float(), nullable=False),
    sa.Column('seen_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('account_id')
    )
    op.create_table('relay_notice',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('unit_code', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=True),
    sa.Column('issuer_contact', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('issuer_person_id', sa.Integer(), nullable=True),
    sa.Column('issuer_name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('deadline', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('require_ack', sa.Boolean(), nullable=False),
    sa.Column('target_groups', sa.Integer(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['wgroup.id'], ),
    sa.ForeignKeyConstraint(['issuer_person_id'], ['person.id'], ),
    sa.ForeignKeyConstraint(['unit_code'], ['unit.code'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('relay_notice', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_relay_notice_unit_code'), ['unit_code'], unique=False)

    op.create_table('relay_watch_flag',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('word', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('excerpt', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('notified', sa.Boolean(), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['wgroup.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('relay_watch_flag', schema=None) as batch_op:
        batch_op.create_index('ix_relay_watch_flag_group_at', ['group_id', 'at'], unique=False)

    op.create_table('relay_ack',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('notice_id', sa.Integer(), nullable=False),
    sa.Column('unit_code', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=True),
    sa.Column('contact_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['wgroup.id'], ),
    sa.ForeignKeyConstraint(['notice_id'], ['relay_notice.id'], ),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
    sa.ForeignKeyConstraint(['unit_code'], ['unit.code'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('notice_id', 'unit_code')
    )
    op.create_table('relay_delivery',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=96), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('notice_id', sa.Integer(), nullable=True),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('rank', sa.Integer(), nullable=False),
    sa.Column('account_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('resend', sa.Boolean(), nullable=False),
    sa.Column('next_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('planned_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('claimed_by', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('claimed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('message_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('sent_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('confirmed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('tried', sqlmodel.sql.sqltypes.AutoString(length=512), nullable=False),
    sa.Column('error', sqlmodel.sql.sqltypes.AutoString(length=512), nullable=True),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['wgroup.id'], ),
    sa.ForeignKeyConstraint(['notice_id'], ['relay_notice.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    with op.batch_alter_table('relay_delivery', schema=None) as batch_op:
        batch_op.create_index('ix_relay_delivery_due', ['state', 'next_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_relay_delivery_group_id'), ['group_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_relay_delivery_notice_id'), ['notice_id'], unique=False)
        batch_op.create_index('ix_relay_delivery_queue', ['account_id', 'state', 'rank', 'id'], unique=False)

    op.create_table('relay_job',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('notice_id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('due_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('done_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['notice_id'], ['relay_notice.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('notice_id', 'kind', 'due_at')
    )
    with op.batch_alter_table('relay_job', schema=None) as batch_op:
        batch_op.create_index('ix_relay_job_due', ['state', 'due_at'], unique=False)

    op.create_table('relay_report',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('unit_code', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=True),
    sa.Column('contact_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('sender_name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('notice_id', sa.Integer(), nullable=True),
    sa.Column('holder_unit', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('hops', sa.Integer(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['wgroup.id'], ),
    sa.ForeignKeyConstraint(['holder_unit'], ['unit.code'], ),
    sa.ForeignKeyConstraint(['notice_id'], ['relay_notice.id'], ),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
    sa.ForeignKeyConstraint(['unit_code'], ['unit.code'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('relay_report', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_relay_report_holder_unit'), ['holder_unit'], unique=False)
        batch_op.create_index(batch_op.f('ix_relay_report_notice_id'), ['notice_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('relay_report', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_relay_report_notice_id'))
        batch_op.drop_index(batch_op.f('ix_relay_report_holder_unit'))

    op.drop_table('relay_report')
    with op.batch_alter_table('relay_job', schema=None) as batch_op:
        batch_op.drop_index('ix_relay_job_due')

    op.drop_table('relay_job')
    with op.batch_alter_table('relay_delivery', schema=None) as batch_op:
        batch_op.drop_index('ix_relay_delivery_queue')
        batch_op.drop_index(batch_op.f('ix_relay_delivery_notice_id'))
        batch_op.drop_index(batch_op.f('ix_relay_delivery_group_id'))
        batch_op.drop_index('ix_relay_delivery_due')

    op.drop_table('relay_delivery')
    op.drop_table('relay_ack')
    with op.batch_alter_table('relay_watch_flag', schema=None) as batch_op:
        batch_op.drop_index('ix_relay_watch_flag_group_at')

    op.drop_table('relay_watch_flag')
    with op.batch_alter_table('relay_notice', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_relay_notice_unit_code'))

    op.drop_table('relay_notice')
    op.drop_table('relay_account')
