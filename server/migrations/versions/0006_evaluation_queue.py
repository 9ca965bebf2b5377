"""evaluation queue: the doctor-weeks a write left to re-evaluate; visits by doctor and day

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evaluation_queue",
        sa.Column("doctor_id", sa.String(length=64), nullable=False),
        sa.Column("week", sa.Date(), nullable=False),
        sa.Column("county_code", sa.String(length=32), nullable=True),
        sa.Column("township_code", sa.String(length=32), nullable=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("cause", sa.String(length=32), nullable=False),
        sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("doctor_id", "week"),
    )
    with op.batch_alter_table("evaluation_queue", schema=None) as batch_op:
        batch_op.create_index("ix_evaluation_queue_due", ["leased_until"], unique=False)
        batch_op.create_index("ix_evaluation_queue_county", ["county_code"], unique=False)
        batch_op.create_index("ix_evaluation_queue_township", ["township_code"], unique=False)
    # Rules on a window read a doctor's visits by date (server/rules_window.py).
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.create_index("ix_visits_doctor_day", ["doctor_id", "local_date"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.drop_index("ix_visits_doctor_day")
    with op.batch_alter_table("evaluation_queue", schema=None) as batch_op:
        batch_op.drop_index("ix_evaluation_queue_township")
        batch_op.drop_index("ix_evaluation_queue_county")
        batch_op.drop_index("ix_evaluation_queue_due")
    op.drop_table("evaluation_queue")
