"""trials.parent_id: decay branches are child trials of the run they were cut from

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 17:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("trials") as batch_op:
        batch_op.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_trials_parent_id", "trials", ["parent_id"], ["id"], ondelete="CASCADE"
        )
        batch_op.create_index("ix_trials_parent_id", ["parent_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("trials") as batch_op:
        batch_op.drop_index("ix_trials_parent_id")
        batch_op.drop_constraint("fk_trials_parent_id", type_="foreignkey")
        batch_op.drop_column("parent_id")
