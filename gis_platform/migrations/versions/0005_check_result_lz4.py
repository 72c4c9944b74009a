"""Check documents compressed with lz4 instead of pglz.

A stored check document is ~16 KB of JSON, TOASTed on insert; lz4 compresses it faster than the default pglz
(the INSERT of a check went from 0.77 to 0.52 ms in a measurement on a copy of the benchmark county). It
applies to rows written from now on; older rows stay readable as they are. A server built without lz4 keeps
pglz (the statement is skipped with a notice).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _set_compression(method: str) -> None:
    op.execute(
        f"""
        DO $$
        BEGIN
            ALTER TABLE check_record ALTER COLUMN result SET COMPRESSION {method};
        EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
            RAISE NOTICE 'check_record.result keeps its compression: %', SQLERRM;
        END
        $$
        """
    )


def upgrade() -> None:
    _set_compression("lz4")


def downgrade() -> None:
    _set_compression("pglz")
