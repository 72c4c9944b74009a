"""What changed between two versions of a layer (变更比对), computed once and kept.

Versions never change once written, so neither does the comparison of two of them: the first request computes
it (``gis_platform.analysis.changes``) and later ones read these rows. ``version_comparison`` holds the summary;
``version_change`` one row per added, removed or changed feature (unchanged features are only counted).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "version_comparison",
        sa.Column("id", sa.Integer(), sa.Identity(), primary_key=True),
        sa.Column(
            "base_version_id", sa.Integer(), sa.ForeignKey("layer_version.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "target_version_id", sa.Integer(), sa.ForeignKey("layer_version.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("key_field", sa.String(40), nullable=False),
        sa.Column("summary", postgresql.JSONB(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.UniqueConstraint("base_version_id", "target_version_id", name="uq_version_comparison_pair"),
    )
    op.create_table(
        "version_change",
        sa.Column(
            "comparison_id",
            sa.Integer(),
            sa.ForeignKey("version_comparison.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("feature_key", sa.Text(), nullable=False),
        sa.Column("base_feature_id", sa.BigInteger(), nullable=True),
        sa.Column("target_feature_id", sa.BigInteger(), nullable=True),
        sa.Column("base_area_m2", sa.Double(), nullable=True),
        sa.Column("target_area_m2", sa.Double(), nullable=True),
        sa.Column("changed_fields", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("geometry_changed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("comparison_id", "seq", name="pk_version_change"),
        sa.CheckConstraint("kind IN ('added', 'removed', 'changed')", name="ck_version_change_kind"),
    )


def downgrade() -> None:
    op.drop_table("version_change")
    op.drop_table("version_comparison")
