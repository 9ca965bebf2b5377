"""devices and accounts: the device registry (revoke), one-time passwords

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("doctor_id", sa.String(length=64), nullable=True),
        sa.Column("township_code", sa.String(length=32), nullable=True),
        sa.Column("county_code", sa.String(length=32), nullable=True),
        sa.Column("client_version", sa.String(length=100), nullable=True),
        sa.Column("first_push_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_push_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_pull_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_pull_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rejected", sa.JSON(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(length=64), nullable=True),
        sa.Column("revoke_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.create_index("ix_devices_username", ["username"], unique=False)
        batch_op.create_index("ix_devices_doctor_id", ["doctor_id"], unique=False)
        batch_op.create_index("ix_devices_township_code", ["township_code"], unique=False)
        batch_op.create_index("ix_devices_county_code", ["county_code"], unique=False)
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "must_change_password", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
        batch_op.add_column(
            sa.Column("password_changed_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("password_changed_at")
        batch_op.drop_column("must_change_password")
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_index("ix_devices_county_code")
        batch_op.drop_index("ix_devices_township_code")
        batch_op.drop_index("ix_devices_doctor_id")
        batch_op.drop_index("ix_devices_username")
    op.drop_table("devices")
