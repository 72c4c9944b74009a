"""A revoked credential stops working in every worker as soon as it is committed (LISTEN/NOTIFY, migration 0006).

Each test gives the credential cache a time limit of ten minutes, so only the notification can explain a
credential that stops working within seconds.
"""

from __future__ import annotations

import datetime as dt
import select
import time
from collections.abc import Callable, Iterator

import psycopg2
import psycopg2.extensions
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from gis_platform import accounts
from gis_platform.accounts import AuthenticationError, Authenticator
from gis_platform.audit import cli_actor
from gis_platform.credential_watch import CHANNEL, CredentialWatch
from gis_platform.db import libpq_dsn
from gis_platform.settings import Settings

from .helpers import TEST_PASSWORD, ensure_user

pytestmark = pytest.mark.db

LONG_CACHE = {"auth_cache_ttl_s": 600.0}
HOUR = dt.timedelta(hours=1)


def eventually(condition: Callable[[], bool], within_s: float = 10.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.fixture
def long_cache(settings: Settings) -> Settings:
    return settings.model_copy(update=LONG_CACHE)


@pytest.fixture
def other_worker(engine: Engine, long_cache: Settings) -> Iterator[Authenticator]:
    """The credential cache of another worker process, with its watch listening."""
    authenticator = Authenticator(engine, long_cache)
    watch = CredentialWatch(libpq_dsn(long_cache.database_url), authenticator.clear).start()
    assert watch.wait_listening(10), "the watch did not connect"
    try:
        yield authenticator
    finally:
        watch.stop()


@pytest.fixture
def listener(settings: Settings) -> Iterator[psycopg2.extensions.connection]:
    conn = psycopg2.connect(libpq_dsn(settings.database_url))
    conn.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
    with conn.cursor() as cur:
        cur.execute(f"LISTEN {CHANNEL}")
    try:
        yield conn
    finally:
        conn.close()


def notifications_until(conn: psycopg2.extensions.connection, payload: str, within_s: float = 10.0) -> list[str]:
    """Every notification's payload, in commit order, up to and including the first ``payload``."""
    seen: list[str] = []
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        select.select([conn], [], [], 0.2)
        conn.poll()
        while conn.notifies:
            seen.append(conn.notifies.pop(0).payload)
            if seen[-1] == payload:
                return seen
    raise AssertionError(f"no {payload!r} notification within {within_s} s; saw {seen}")


def test_a_revoked_api_key_is_forgotten_by_the_other_worker_at_once(
    engine: Engine, other_worker: Authenticator
) -> None:
    _record, secret = accounts.create_api_key(engine, name="approval system", actor=cli_actor())
    assert other_worker.principal(secret).name == "key:approval system"
    assert other_worker.cached(secret) is not None  # from now on it would be trusted for ten minutes

    accounts.revoke_api_key(engine, secret, cli_actor())  # by another process: the CLI
    assert eventually(lambda: other_worker.cached(secret) is None)
    with pytest.raises(AuthenticationError):
        other_worker.principal(secret)


def test_a_disabled_users_session_is_forgotten_by_the_other_worker(
    engine: Engine, long_cache: Settings, other_worker: Authenticator
) -> None:
    ensure_user(engine, "planner", "leaving-planner")
    user = accounts.verify_login(engine, "leaving-planner", TEST_PASSWORD)
    token, _expires = accounts.create_session(
        engine, user, kind="bearer", lifetime=dt.timedelta(hours=1), actor=cli_actor()
    )
    assert other_worker.principal(token).role == "planner"

    accounts.update_user(engine, long_cache, "leaving-planner", actor=cli_actor(), is_active=False)
    assert eventually(lambda: other_worker.cached(token) is None)
    with pytest.raises(AuthenticationError):
        other_worker.principal(token)


def test_ordinary_use_does_not_notify(
    engine: Engine, long_cache: Settings, listener: psycopg2.extensions.connection
) -> None:
    """A key's last_used_at and a session's sliding timeout change on every lookup: no notification for those."""
    ensure_user(engine, "viewer", "ordinary-user")
    user = accounts.verify_login(engine, "ordinary-user", TEST_PASSWORD)
    token, _expires = accounts.create_session(
        engine, user, kind="cookie", lifetime=dt.timedelta(hours=1), actor=cli_actor()
    )
    _record, secret = accounts.create_api_key(engine, name="busy system", actor=cli_actor())
    with engine.begin() as conn:  # make the session's next lookup slide its idle timeout
        conn.execute(
            text("UPDATE user_session SET last_seen_at = now() - interval '5 minutes' WHERE token_hash = :h"),
            {"h": accounts.token_hash(token)},
        )
    Authenticator(engine, long_cache).principal(secret)  # UPDATE api_key SET last_used_at
    Authenticator(engine, long_cache).principal(token)  # UPDATE user_session SET last_seen_at, expires_at

    accounts.revoke_api_key(engine, secret, cli_actor())
    # notifications arrive in commit order: the lookups before the revocation sent none
    assert notifications_until(listener, "api_key") == ["api_key"]


def test_the_service_forgets_a_key_revoked_elsewhere(engine: Engine, long_cache: Settings) -> None:
    _record, secret = accounts.create_api_key(engine, name="approval system", actor=cli_actor())
    headers = {"Authorization": f"Bearer {secret}"}
    with TestClient(create_app(long_cache)) as client:
        assert client.get("/api/v1/auth/me", headers=headers).status_code == 200  # cached for ten minutes
        accounts.revoke_api_key(engine, secret, cli_actor())  # the CLI, not this worker
        assert eventually(lambda: client.get("/api/v1/auth/me", headers=headers).status_code == 401)


def test_the_watch_reconnects_after_losing_its_connection(engine: Engine, other_worker: Authenticator) -> None:
    _record, before = accounts.create_api_key(engine, name="cached before", actor=cli_actor())
    other_worker.principal(before)
    app_name = "gis-platform credential watch"
    with engine.begin() as conn:  # the database ends the watch's session (a restart, a network cut)
        killed = (
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :a"),
                {"a": app_name},
            )
            .scalars()
            .all()
        )
    assert killed and all(killed)
    # back, it forgets what it cached: a change made while it was away would not have been heard
    assert eventually(lambda: other_worker.cached(before) is None)

    def listening_again() -> bool:
        with engine.connect() as conn:
            sql = "SELECT count(*) FROM pg_stat_activity WHERE application_name = :a AND query LIKE 'LISTEN%'"
            return conn.execute(text(sql), {"a": app_name}).scalar_one() >= 1

    assert eventually(listening_again)
    _record, after = accounts.create_api_key(engine, name="cached after", actor=cli_actor())
    other_worker.principal(after)
    accounts.revoke_api_key(engine, after, cli_actor())
    assert eventually(lambda: other_worker.cached(after) is None)
