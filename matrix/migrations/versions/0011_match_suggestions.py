"""match suggestions: the numbered roster matches #匹配 showed for a group's unbound members

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-02

``#确认匹配 1,3,5-9`` names rows of ``match_suggestion`` by (group, number); a new #匹配 in the
group replaces them and they lapse at ``expires_at``.
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "match_suggestion",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=True),
        sa.Column("contact_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("nickname", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("confidence", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("office", sa.Boolean(), nullable=False),
        sa.Column("made_by", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("confirmed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("confirmed_by", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["wgroup.id"],
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("match_suggestion", schema=None) as batch_op:
        batch_op.create_index(
            "ix_match_suggestion_group_number", ["group_id", "number"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("match_suggestion", schema=None) as batch_op:
        batch_op.drop_index("ix_match_suggestion_group_number")

    op.drop_table("match_suggestion")
