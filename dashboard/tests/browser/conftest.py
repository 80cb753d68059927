"""Browser tests: Playwright drives Debian's Chromium against a live ASGI server (daphne in a forked process on a
free port) with the Redis channel layer, on the test database.

The server is forked once per session after the test database exists; tests commit their rows (transactional
database access) so the server process sees them, and broadcasts from this process reach its sockets through Redis.
"""

import os
import shutil
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from django.conf import settings

# Playwright's sync API keeps an event loop in this thread; the ORM calls the tests make are still synchronous.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("PLAYWRIGHT_CHROMIUM_EXECUTABLE") or shutil.which("chromium") or ""
SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(
        reason="Chromium is not installed (scripts/test.sh installs Debian's `chromium` as root)"
    )
    for item in items:
        if "browser" in item.nodeid.split("/") and not CHROMIUM:
            item.add_marker(skip)


_migrated_rows: dict[str, str | None] = {}


@pytest.fixture(autouse=True)
def _migrated_rows_restored():
    """Rows the data migrations create (role groups, default settings) come back after each browser test.

    pytest-django's serialized rollback keeps that snapshot on the connection object that took it, but Playwright's
    event loop gives this thread a new context, hence new connection objects without it; hand it to them."""
    from django.db import connections

    def attach() -> None:
        saved = _migrated_rows.get("default")
        if saved is not None:
            connections["default"]._test_serialized_contents = saved

    attach()
    yield
    attach()  # before the flush that ends the test, so the next test starts from the snapshot


def _server_setup(set_database_connection, django_db_blocker) -> None:
    """In the forked server: the test database, and pytest-django's guard against database access lifted (the
    child inherits it; the server's requests are not tests)."""
    set_database_connection()
    django_db_blocker.unblock()


@pytest.fixture(scope="session")
def live_asgi(django_db_setup, django_db_blocker) -> Iterator[str]:
    """The base URL of a daphne server running this project's ASGI application."""
    from channels.testing.live import make_application, set_database_connection
    from daphne.testing import DaphneProcess
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
    from django.db import connections
    from django.test.utils import modify_settings

    with django_db_blocker.unblock():
        _migrated_rows["default"] = getattr(connections["default"], "_test_serialized_contents", None)
        connections.close_all()  # the child must open its own connections
    hosts = modify_settings(ALLOWED_HOSTS={"append": "127.0.0.1"})
    hosts.enable()
    process = DaphneProcess(
        "127.0.0.1",
        partial(make_application, static_wrapper=ASGIStaticFilesHandler),
        setup=partial(_server_setup, set_database_connection, django_db_blocker),
    )
    process.daemon = True
    process.start()
    if not process.ready.wait(timeout=30):
        process.terminate()
        raise RuntimeError("the ASGI test server did not start")
    try:
        yield f"http://127.0.0.1:{process.port.value}"
    finally:
        process.terminate()
        process.join(timeout=10)
        hosts.disable()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": ["--no-sandbox", "--disable-gpu"],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict) -> dict:
    return {**browser_context_args, "viewport": DESKTOP, "timezone_id": "Europe/Berlin", "locale": "en-GB"}


@pytest.fixture
def log_in(live_asgi, browser, browser_context_args):
    """log_in(username, password) -> a page of a fresh browser context, logged in through /login/."""
    contexts = []

    def make(username: str, password: str, *, viewport: dict | None = None):
        context = browser.new_context(**{**browser_context_args, "viewport": viewport or DESKTOP})
        contexts.append(context)
        page = context.new_page()
        page.goto(f"{live_asgi}/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_asgi}/")
        return page

    yield make
    for context in contexts:
        context.close()


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
