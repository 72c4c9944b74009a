"""Every feature also in the county's survey plane: ``feature.geom_plane`` and ``layer_version.plane_srid``.

Overlays run in the CGCS2000 Gauss-Krüger zone the catalogue names (``survey_plane``), not in lon/lat. New
imports write both geometries from the file's own coordinates. Versions stored before this revision get their
plane geometry from ``geom`` right after the migration, by :func:`gis_platform.plane_store.ensure_survey_plane`
(``gis-platform db upgrade`` runs it), which also builds the plane's GiST index. ``conflict_feature`` keeps its
pieces in the plane too, so a conflict summary unions them there.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE feature ADD COLUMN geom_plane geometry")
    op.add_column("layer_version", sa.Column("plane_srid", sa.Integer(), nullable=True))
    op.execute("ALTER TABLE conflict_feature ADD COLUMN geom_plane geometry")


def downgrade() -> None:
    op.execute("ALTER TABLE conflict_feature DROP COLUMN geom_plane")
    op.drop_column("layer_version", "plane_srid")
    op.execute("DROP INDEX IF EXISTS ix_feature_geom_plane")
    op.execute("ALTER TABLE feature DROP COLUMN geom_plane")
