"""Versioned layer store: layer catalogue rows, layer versions, features partitioned by version.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

import geoalchemy2
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.create_table(
        "layer",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("code", sa.String(40), nullable=False),
        sa.Column("name_zh", sa.String(200), nullable=False),
        sa.Column("layer_group", sa.String(20), nullable=False),
        sa.Column("geometry_type", sa.String(20), nullable=False),
        sa.Column("current_version_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.UniqueConstraint("code", name="uq_layer_code"),
    )
    op.create_table(
        "layer_version",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "layer_id", sa.Integer(), sa.ForeignKey("layer.id", name="fk_layer_version_layer_id_layer"), nullable=False
        ),
        sa.Column("version_no", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("source_name", sa.Text(), nullable=False),
        sa.Column("source_format", sa.String(40), nullable=False),
        sa.Column("source_checksum", sa.String(64), nullable=False),
        sa.Column("source_crs", sa.String(40), nullable=False),
        sa.Column("imported_by", sa.String(200), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("feature_count", sa.Integer(), nullable=False),
        sa.Column("area_total_m2", sa.Double(), nullable=True),
        sa.Column("extent", geoalchemy2.Geometry("POLYGON", srid=4490, spatial_index=False), nullable=True),
        sa.Column("report", postgresql.JSONB(), nullable=False),
        sa.UniqueConstraint("layer_id", "version_no", name="uq_layer_version_layer_id_version_no"),
        sa.CheckConstraint("status IN ('current', 'superseded')", name="ck_layer_version_status"),
    )
    op.create_index("ix_layer_version_layer_id", "layer_version", ["layer_id"])
    op.create_foreign_key("fk_layer_current_version", "layer", "layer_version", ["current_version_id"], ["id"])
    op.execute("CREATE SEQUENCE feature_id_seq")
    # Partitioned by version: an import builds and indexes a plain table, then attaches it.
    op.execute(
        """
        CREATE TABLE feature (
            version_id integer NOT NULL,
            id bigint NOT NULL DEFAULT nextval('feature_id_seq'),
            source_fid integer NOT NULL,
            properties jsonb NOT NULL,
            geom geometry(Geometry, 4490) NOT NULL,
            area_m2 double precision GENERATED ALWAYS AS
                (CASE WHEN ST_Dimension(geom) = 2 THEN ST_Area(geom::geography) END) STORED,
            CONSTRAINT pk_feature PRIMARY KEY (version_id, id)
        ) PARTITION BY LIST (version_id)
        """
    )
    op.execute("CREATE INDEX ix_feature_geom ON feature USING gist (geom)")


def downgrade() -> None:
    op.execute("DROP TABLE feature")
    op.execute("DROP SEQUENCE feature_id_seq")
    op.drop_constraint("fk_layer_current_version", "layer", type_="foreignkey")
    op.drop_table("layer_version")
    op.drop_table("layer")
