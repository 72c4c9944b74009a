"""需补充用途: the verdict of a check that was given no land use.

A check without a proposed land use can no longer be 通过 or 有条件 (the reasoning is in ``layers/rules.yaml``):
its verdict is 需补充用途 ("use required"), or 禁止. ``check_record.verdict`` accepts the new value; the
constraint keeps the table to the levels of ``gis_platform.rules.LEVELS``.

``conflict_feature.level`` keeps its three levels on purpose: a conflict analysis compares plan polygons whose
use is the plan's own 用地用海 code, and only rules that need a use apply to them (``conflicts._fires_for`` skips
``land_use_given: false``, the only rules that may carry 需补充用途), so the narrower constraint is the guard.

Downgrading refuses while any stored check has the new verdict: the old constraint cannot hold them, and
rewriting a stored check would break the promise that a check reads back exactly as it was computed.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

NEW_VERDICTS = "('禁止', '需补充用途', '有条件', '通过')"
OLD_VERDICTS = "('禁止', '有条件', '通过')"


def upgrade() -> None:
    op.drop_constraint("ck_check_record_verdict", "check_record", type_="check")
    op.create_check_constraint("ck_check_record_verdict", "check_record", f"verdict IN {NEW_VERDICTS}")


def downgrade() -> None:
    op.execute(
        """
        DO $$
        DECLARE n bigint;
        BEGIN
            SELECT count(*) INTO n FROM check_record WHERE verdict = '需补充用途';
            IF n > 0 THEN
                RAISE EXCEPTION 'cannot downgrade below 0009: % stored checks have the verdict 需补充用途', n;
            END IF;
        END
        $$
        """
    )
    op.drop_constraint("ck_check_record_verdict", "check_record", type_="check")
    op.create_check_constraint("ck_check_record_verdict", "check_record", f"verdict IN {OLD_VERDICTS}")
