"""Credential changes heard at once in every worker process, through PostgreSQL LISTEN/NOTIFY.

Each API worker remembers the principal of a credential for ``auth_cache_ttl_s`` seconds
(:class:`~gis_platform.accounts.Authenticator`), so that a check does not pay a database round trip for its
credentials. Triggers (migration 0006) notify channel :data:`CHANNEL` when a session or API key stops being valid
or a user's role, status or password changes — made by any worker, the CLI or SQL. :class:`CredentialWatch`
listens on a connection of its own and empties the worker's cache when a notification arrives, so a revocation
holds in every worker as soon as it is committed. While the database cannot be reached the watch retries, and it
empties the cache again when it is back (a notification may have been missed); until then the cache's time limit
is the bound, as without the watch.
"""

from __future__ import annotations

import logging
import select
import socket
import threading
from collections.abc import Callable

import psycopg2
import psycopg2.extensions

CHANNEL = "gis_credentials"
RETRY_MAX_S = 30.0
# TCP keepalives: a connection to a database host that vanished (no reset) is noticed within about a minute
_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}

log = logging.getLogger(__name__)


class CredentialWatch:
    """A daemon thread that calls ``on_change`` for every notification on :data:`CHANNEL` (and after a reconnect)."""

    def __init__(self, dsn: str, on_change: Callable[[], None], *, connect_timeout_s: float | None = None) -> None:
        self._dsn = dsn
        self._on_change = on_change
        self._connect_timeout = connect_timeout_s
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()  # stop() wakes the thread out of select at once
        self._thread = threading.Thread(target=self._run, name="credential-watch", daemon=True)

    def start(self) -> CredentialWatch:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._wake_w.send(b"x")
        self._thread.join(timeout_s)
        self._wake_r.close()
        self._wake_w.close()

    def wait_listening(self, timeout_s: float) -> bool:
        """Whether the watch is listening (it connects in the background); False if not within ``timeout_s``."""
        return self._listening.wait(timeout_s)

    def _run(self) -> None:
        delay = 1.0
        first = True
        while not self._stop.is_set():
            try:
                conn = self._connect()
            except psycopg2.Error as exc:
                log.warning("credential watch: cannot connect (%s); retrying in %.0f s", str(exc).strip(), delay)
                self._stop.wait(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            delay = 1.0
            try:
                if not first:
                    self._on_change()  # changes made while away were not heard
                first = False
                self._listening.set()
                self._listen(conn)
            except (psycopg2.Error, OSError) as exc:
                log.warning("credential watch: connection lost (%s); reconnecting", str(exc).strip())
            finally:
                self._listening.clear()
                conn.close()

    def _connect(self) -> psycopg2.extensions.connection:
        kwargs = {"connect_timeout": int(self._connect_timeout)} if self._connect_timeout else {}
        conn = psycopg2.connect(self._dsn, application_name="gis-platform credential watch", **_KEEPALIVES, **kwargs)
        conn.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
        with conn.cursor() as cur:
            cur.execute(f"LISTEN {CHANNEL}")
        return conn

    def _listen(self, conn: psycopg2.extensions.connection) -> None:
        while not self._stop.is_set():
            readable, _, _ = select.select([conn, self._wake_r], [], [])
            if conn not in readable:
                continue
            conn.poll()
            if conn.notifies:
                conn.notifies.clear()
                self._on_change()
