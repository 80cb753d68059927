"""The web process under concurrent load, on a real daphne (forked, the project's ASGI application) with the
pool the web process uses: the number of PostgreSQL connections it holds stays at the pool's bound however many
requests are in flight, and a database that refuses connections is answered 503 + Retry-After, never 500."""

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import httpx
import pytest
from django.db import connections

pytestmark = pytest.mark.django_db(transaction=True)

APPLICATION_NAME = f"mt5guard-pool-test-{os.getpid()}"  # its own: other runs on the same server count apart
POOL_MAX = 2


def _server_setup(set_database_connection, django_db_blocker, *, pool: dict, port: int | None) -> None:
    """In the forked server: the test database, pooled as config/database.py pools the web process."""
    from django.conf import settings

    set_database_connection()
    django_db_blocker.unblock()
    database = settings.DATABASES["default"]
    database["CONN_MAX_AGE"] = 0
    database["OPTIONS"] = {**database.get("OPTIONS", {}), "application_name": APPLICATION_NAME, "pool": pool}
    if port is not None:
        database["PORT"] = str(port)  # nothing listens there: every connection is refused


def _serve(django_db_blocker, *, pool: dict, port: int | None = None):
    from channels.testing.live import make_application, set_database_connection
    from daphne.testing import DaphneProcess

    with django_db_blocker.unblock():
        connections.close_all()  # the child opens its own
    process = DaphneProcess(
        "127.0.0.1",
        partial(make_application, static_wrapper=None),
        setup=partial(_server_setup, set_database_connection, django_db_blocker, pool=pool, port=port),
    )
    process.daemon = True
    process.start()
    if not process.ready.wait(timeout=30):
        process.terminate()
        raise RuntimeError("the ASGI test server did not start")
    return process


@pytest.fixture
def served(django_db_blocker, settings):
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "127.0.0.1"]
    processes = []

    def start(**kwargs) -> str:
        process = _serve(django_db_blocker, **kwargs)
        processes.append(process)
        return f"http://127.0.0.1:{process.port.value}"

    yield start
    for process in processes:
        process.terminate()
        process.join(timeout=10)


def _server_connections() -> int:
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [APPLICATION_NAME]
        )
        return int(cursor.fetchone()[0])


def test_concurrent_requests_share_the_bounded_pool(served, owner):
    from rest_framework_simplejwt.tokens import RefreshToken

    base = served(pool={"min_size": 1, "max_size": POOL_MAX, "timeout": 20})
    headers = {"Authorization": f"Bearer {RefreshToken.for_user(owner).access_token}"}
    seen: list[int] = []
    done = threading.Event()

    def sample() -> None:
        try:
            while not done.is_set():
                seen.append(_server_connections())
                time.sleep(0.01)
        finally:
            connections["default"].close()

    def client(_: int) -> list[int]:
        with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
            return [http.get("/api/v1/me/").status_code for _ in range(5)]

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with ThreadPoolExecutor(max_workers=30) as executor:
            statuses = [status for batch in executor.map(client, range(30)) for status in batch]
    finally:
        done.set()
        sampler.join()

    assert statuses == [200] * 150
    assert seen
    assert max(seen) <= POOL_MAX


def test_a_database_that_refuses_connections_is_a_503_not_a_500(served, owner):
    import socket

    from rest_framework_simplejwt.tokens import RefreshToken

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    token = RefreshToken.for_user(owner).access_token
    base = served(pool={"min_size": 0, "max_size": POOL_MAX, "timeout": 0.5}, port=dead_port)

    with httpx.Client(base_url=base, timeout=30) as http:
        api = http.get("/api/v1/me/", headers={"Authorization": f"Bearer {token}"})
        http.cookies.set("sessionid", "a-session-the-database-would-know")
        page = http.get("/")

    assert api.status_code == 503
    assert api.headers["Retry-After"] == "5"
    assert api.json() == {
        "message": "The database is unavailable; retry shortly.",
        "extra": {"retry_after": 5},
    }
    assert page.status_code == 503
    assert page.headers["Retry-After"] == "5"
    assert "Temporarily unavailable" in page.text
