"""flags by doctor and scope: a judgement reads back only the flags of its weeks (issue 14)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("flags", schema=None) as batch_op:
        batch_op.create_index("ix_flags_doctor_scope", ["doctor_id", "scope_end"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("flags", schema=None) as batch_op:
        batch_op.drop_index("ix_flags_doctor_scope")
