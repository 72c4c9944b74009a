"""Which features of a layer version may overlap another: ``layer_version.overlap_fids``.

Filled at import by GEOS coverage validation (``gis_platform.ingest.coverage``): the source numbers of the
features whose edges do not match their neighbours' (every feature that overlaps another is among them), an
empty array when there are none, NULL when not known (versions imported before this revision). An overlay sums
the pieces of a layer instead of measuring their union unless one of them comes from a named feature.

Revision ID: 0014
Revises: 0010
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0014"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("layer_version", sa.Column("overlap_fids", postgresql.ARRAY(sa.Integer()), nullable=True))


def downgrade() -> None:
    op.drop_column("layer_version", "overlap_fids")
