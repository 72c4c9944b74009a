"""Replayable checks: what a replay needs, kept with each check, and the catalogue and rule texts by fingerprint.

``check_record`` gets ``method`` (the overlay method, e.g. ``survey-plane/1``), ``request`` (the parcel exactly as
sent and the request options) and ``rechecked_from`` (the check a recheck re-ran). Rows stored before this
revision keep them NULL and are never updated: a replay answers that they were computed with an earlier method.
``config_snapshot`` keeps the files of each catalogue and rule set by fingerprint (an UPDATE is refused: the
text behind a fingerprint never changes); this revision stores the files of the settings' ``layers_dir`` as they
are today, and the service stores the ones it runs with before its first check.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

import logging
from pathlib import Path

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")


def _layers_dir() -> Path:
    configured = context.config.attributes.get("layers_dir")
    if configured:
        return Path(configured)
    from gis_platform.settings import load_settings

    return load_settings().layers_dir


def upgrade() -> None:
    op.add_column("check_record", sa.Column("method", sa.Text(), nullable=True))
    op.add_column("check_record", sa.Column("request", postgresql.JSONB(), nullable=True))
    op.add_column(
        "check_record",
        sa.Column("rechecked_from", postgresql.UUID(as_uuid=True), sa.ForeignKey("check_record.id"), nullable=True),
    )
    op.create_index("ix_check_record_rechecked_from", "check_record", ["rechecked_from"])
    # the parcel as sent is WKB in hex, compressed like the result document (0005); pglz where lz4 is missing
    op.execute(
        """
        DO $$
        BEGIN
            ALTER TABLE check_record ALTER COLUMN request SET COMPRESSION lz4;
        EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
            RAISE NOTICE 'check_record.request keeps its compression: %', SQLERRM;
        END
        $$
        """
    )
    op.create_table(
        "config_snapshot",
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("files", postgresql.JSONB(), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "fingerprint"),
        sa.CheckConstraint("kind IN ('catalog', 'rules')", name="ck_config_snapshot_kind"),
        sa.CheckConstraint("fingerprint ~ '^[0-9a-f]{64}$'", name="ck_config_snapshot_fingerprint"),
    )
    op.execute(
        """
        CREATE FUNCTION config_snapshot_unchanged() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'config_snapshot rows never change: % refused', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER config_snapshot_no_update BEFORE UPDATE ON config_snapshot"
        " FOR EACH ROW EXECUTE FUNCTION config_snapshot_unchanged()"
    )
    _snapshot_today()


def _snapshot_today() -> None:
    from gis_platform.config_snapshots import read_snapshots, store_snapshots

    folder = _layers_dir()
    try:
        snapshots = read_snapshots(folder)
    except (OSError, UnicodeDecodeError) as exc:  # the service stores its own files before its first check
        log.warning("no catalogue and rules snapshot taken from %s: %s", folder, exc)
        return
    store_snapshots(op.get_bind(), snapshots)


def downgrade() -> None:
    op.drop_table("config_snapshot")
    op.execute("DROP FUNCTION config_snapshot_unchanged()")
    op.drop_index("ix_check_record_rechecked_from", table_name="check_record")
    op.drop_column("check_record", "rechecked_from")
    op.drop_column("check_record", "request")
    op.drop_column("check_record", "method")
