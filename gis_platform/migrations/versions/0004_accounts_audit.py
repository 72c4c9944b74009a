"""Accounts, sessions, API keys and the append-only audit trail.

- ``app_user``: people who log in (admin, planner, viewer); the password is an Argon2id hash.
- ``user_session``: a login (web cookie or short-lived bearer token); only the SHA-256 of the token is stored.
- ``api_key``: keys of approval systems; only the SHA-256 of the secret is stored, with its public prefix,
  scopes, expiry, revocation and an optional per-key rate limit.
- ``audit_event``: 全过程留痕 — who did what, when, from where. A trigger refuses UPDATE, DELETE and
  TRUNCATE for every role, so the trail can only grow (GB/T 39972).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ROLES = "('admin', 'planner', 'approval', 'viewer')"


def upgrade() -> None:
    op.create_table(
        "app_user",
        sa.Column("id", sa.Integer(), sa.Identity(), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=True),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(f"role IN {ROLES} AND role <> 'approval'", name="ck_app_user_role"),
        sa.CheckConstraint("username ~ '^[A-Za-z0-9_.@-]{2,64}$'", name="ck_app_user_username"),
    )
    op.execute("CREATE UNIQUE INDEX uq_app_user_username ON app_user (lower(username))")

    op.create_table(
        "user_session",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey("app_user.id", name="fk_user_session_user_id_app_user", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("ip", sa.String(64), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('cookie', 'bearer')", name="ck_user_session_kind"),
    )
    op.create_index("ix_user_session_user_id", "user_session", ["user_id"])

    op.create_table(
        "api_key",
        sa.Column("id", sa.Integer(), sa.Identity(), primary_key=True),
        sa.Column("prefix", sa.String(16), nullable=False, unique=True),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.String(40)), nullable=False),
        sa.Column("rate_limit_per_minute", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("rate_limit_per_minute IS NULL OR rate_limit_per_minute >= 0", name="ck_api_key_rate"),
    )

    op.create_table(
        "audit_event",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("clock_timestamp()"), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("actor_kind", sa.String(20), nullable=False),
        sa.Column("role", sa.String(20), nullable=True),
        sa.Column("action", sa.String(60), nullable=False),
        sa.Column("target", sa.Text(), nullable=True),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("ip", sa.String(64), nullable=True),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column("details", postgresql.JSONB(), nullable=True),
        sa.CheckConstraint("outcome IN ('ok', 'denied', 'failed')", name="ck_audit_event_outcome"),
        sa.CheckConstraint("actor_kind IN ('user', 'api_key', 'anonymous', 'cli', 'system')", name="ck_audit_kind"),
    )
    op.create_index("ix_audit_event_at", "audit_event", ["at"])
    op.create_index("ix_audit_event_actor_at", "audit_event", ["actor", "at"])
    op.create_index("ix_audit_event_action_at", "audit_event", ["action", "at"])
    op.execute(
        """
        CREATE FUNCTION audit_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit_event is append-only: % refused', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER audit_event_no_change BEFORE UPDATE OR DELETE ON audit_event"
        " FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()"
    )
    op.execute(
        "CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event"
        " FOR EACH STATEMENT EXECUTE FUNCTION audit_event_append_only()"
    )
    # ENABLE ALWAYS: the triggers fire even under session_replication_role = replica
    op.execute("ALTER TABLE audit_event ENABLE ALWAYS TRIGGER audit_event_no_change")
    op.execute("ALTER TABLE audit_event ENABLE ALWAYS TRIGGER audit_event_no_truncate")
    op.execute("REVOKE UPDATE, DELETE, TRUNCATE ON audit_event FROM PUBLIC")


def downgrade() -> None:
    op.drop_table("audit_event")
    op.execute("DROP FUNCTION audit_event_append_only()")
    op.drop_table("api_key")
    op.drop_table("user_session")
    op.drop_table("app_user")
