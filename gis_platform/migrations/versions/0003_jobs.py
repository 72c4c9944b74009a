"""Background jobs: the job queue, batch-check items and conflict-analysis features.

- ``job``: one row per background job (batch check, conflict analysis). Workers claim queued jobs with
  ``SELECT … FOR UPDATE SKIP LOCKED``; ``claim_id`` fences every later update to the worker holding the
  claim, ``heartbeat_at`` tells a live worker from a dead one (see ``gis_platform.jobs``).
- ``batch_item``: the parcels of a batch check in input order, each with the check record it produced or
  the error that stopped it. A re-queued job resumes at the first item without an outcome.
- ``conflict_feature``: the conflict polygons of a conflict analysis, one per plan feature × rule ×
  township, with the ellipsoidal area (``ST_Area(geom::geography)``) in m².

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

import geoalchemy2
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="queued"),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("params", postgresql.JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("progress_done", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("progress_total", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("summary", postgresql.JSONB(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("worker", sa.String(200), nullable=True),
        sa.Column("claim_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.CheckConstraint("kind IN ('batch_check', 'conflicts')", name="ck_job_kind"),
        sa.CheckConstraint("status IN ('queued', 'running', 'succeeded', 'failed')", name="ck_job_status"),
    )
    op.create_index("ix_job_created_at", "job", ["created_at"])
    op.execute("CREATE INDEX ix_job_queued ON job (created_at, id) WHERE status = 'queued'")
    op.execute("CREATE INDEX ix_job_running ON job (heartbeat_at) WHERE status = 'running'")

    op.create_table(
        "batch_item",
        sa.Column(
            "job_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("job.id", name="fk_batch_item_job_id_job", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("label", sa.Text(), nullable=True),
        sa.Column("input", postgresql.JSONB(), nullable=False),
        sa.Column("land_use_code", sa.String(20), nullable=True),
        sa.Column(
            "check_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("check_record.id", name="fk_batch_item_check_id_check_record"),
            nullable=True,
        ),
        sa.Column("verdict", sa.String(10), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("job_id", "seq", name="pk_batch_item"),
    )

    op.create_table(
        "conflict_feature",
        sa.Column(
            "job_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("job.id", name="fk_conflict_feature_job_id_job", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("township_code", sa.String(40), nullable=True),
        sa.Column("township_name", sa.Text(), nullable=True),
        sa.Column("plan_layer_code", sa.String(40), nullable=False),
        sa.Column("plan_feature_id", sa.BigInteger(), nullable=False),
        sa.Column("plan_feature_key", sa.Text(), nullable=True),
        sa.Column("plan_use_code", sa.String(20), nullable=False),
        sa.Column("plan_use_name", sa.Text(), nullable=True),
        sa.Column("redline_layer_code", sa.String(40), nullable=False),
        sa.Column("redline_feature_ids", postgresql.ARRAY(sa.Text()), nullable=True),
        sa.Column("rule_id", sa.String(100), nullable=False),
        sa.Column("level", sa.String(10), nullable=False),
        sa.Column("area_m2", sa.Double(), nullable=False),
        sa.Column("minor", sa.Boolean(), nullable=False),
        sa.Column("geom", geoalchemy2.Geometry("MULTIPOLYGON", srid=4490, spatial_index=False), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "id", name="pk_conflict_feature"),
        sa.CheckConstraint("level IN ('禁止', '有条件', '通过')", name="ck_conflict_feature_level"),
    )
    op.execute("CREATE INDEX ix_conflict_feature_geom ON conflict_feature USING gist (geom)")


def downgrade() -> None:
    op.drop_table("conflict_feature")
    op.drop_table("batch_item")
    op.drop_table("job")
