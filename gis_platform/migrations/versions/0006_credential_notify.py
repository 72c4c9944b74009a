"""Tell every API worker at once when a credential stops being valid: NOTIFY on channel ``gis_credentials``.

Each worker remembers the principal of a credential for a few seconds (``Authenticator``). These triggers send a
notification when a session is revoked, an API key is revoked or its scopes, expiry or rate limit change, or a
user's role, status or password changes, or a valid one is deleted — whoever changed it: a worker, the CLI or plain
SQL. Only those columns: the sliding session timeout and a key's ``last_used_at`` change on ordinary use and must
not empty every worker's cache. The notification is delivered when the transaction commits, and PostgreSQL sends one
per transaction and table however many rows changed.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

CHANNEL = "gis_credentials"

# table → (the columns a trigger watches, the update that can end or narrow a credential, the deleted row that was
# still a credential). A session's expiry only matters when it moves earlier: the sliding idle timeout moves it later
# on ordinary use. A login deletes its user's sessions that ended long ago: no notification for those.
_WATCHED = {
    "user_session": (
        ("revoked_at", "expires_at"),
        "OLD.revoked_at IS DISTINCT FROM NEW.revoked_at OR NEW.expires_at < OLD.expires_at",
        "OLD.revoked_at IS NULL AND OLD.expires_at > now()",
    ),
    "api_key": (
        ("revoked_at", "expires_at", "scopes", "rate_limit_per_minute", "secret_hash"),
        "OLD.revoked_at IS DISTINCT FROM NEW.revoked_at OR OLD.expires_at IS DISTINCT FROM NEW.expires_at"
        " OR OLD.scopes IS DISTINCT FROM NEW.scopes OR OLD.secret_hash IS DISTINCT FROM NEW.secret_hash"
        " OR OLD.rate_limit_per_minute IS DISTINCT FROM NEW.rate_limit_per_minute",
        "OLD.revoked_at IS NULL",
    ),
    "app_user": (
        ("role", "is_active", "password_hash"),
        "OLD.role IS DISTINCT FROM NEW.role OR OLD.is_active IS DISTINCT FROM NEW.is_active"
        " OR OLD.password_hash IS DISTINCT FROM NEW.password_hash",
        "true",
    ),
}


def upgrade() -> None:
    op.execute(
        f"""
        CREATE FUNCTION notify_credentials_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME);
            RETURN NULL;
        END
        $$
        """
    )
    for table, (columns, changed, deleted) in _WATCHED.items():
        op.execute(
            f"CREATE TRIGGER {table}_credentials_changed AFTER UPDATE OF {', '.join(columns)} ON {table}"
            f" FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION notify_credentials_changed()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_credentials_deleted AFTER DELETE ON {table}"
            f" FOR EACH ROW WHEN ({deleted}) EXECUTE FUNCTION notify_credentials_changed()"
        )


def downgrade() -> None:
    for table in _WATCHED:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_credentials_changed ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_credentials_deleted ON {table}")
    op.execute("DROP FUNCTION IF EXISTS notify_credentials_changed()")
