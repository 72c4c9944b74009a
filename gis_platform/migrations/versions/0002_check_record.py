"""Check records: every compliance check with its input, result and the layer versions it used.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

import geoalchemy2
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "check_record",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("source", sa.String(40), nullable=False),
        sa.Column("project_name", sa.Text(), nullable=True),
        sa.Column("project_number", sa.String(200), nullable=True),
        sa.Column("parcel_label", sa.Text(), nullable=True),
        sa.Column("land_use_code", sa.String(20), nullable=True),
        sa.Column("verdict", sa.String(10), nullable=False),
        sa.Column("area_model", sa.String(20), nullable=False),
        sa.Column("parcel_area_m2", sa.Double(), nullable=False),
        sa.Column("geom", geoalchemy2.Geometry("GEOMETRY", srid=4490, spatial_index=False), nullable=False),
        sa.Column("data_versions", postgresql.JSONB(), nullable=False),
        sa.Column("result", postgresql.JSONB(), nullable=False),
        sa.Column("job_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.CheckConstraint("verdict IN ('禁止', '有条件', '通过')", name="ck_check_record_verdict"),
    )
    op.create_index("ix_check_record_created_at", "check_record", ["created_at"])
    op.create_index("ix_check_record_verdict", "check_record", ["verdict"])
    op.create_index("ix_check_record_project_number", "check_record", ["project_number"])
    op.create_index("ix_check_record_job_id", "check_record", ["job_id"])
    op.execute("CREATE INDEX ix_check_record_geom ON check_record USING gist (geom)")


def downgrade() -> None:
    op.drop_table("check_record")
