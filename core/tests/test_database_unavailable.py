"""A database that refuses connections is a 503 with Retry-After everywhere, never a 500; the web process holds a
bounded number of connections whatever the number of concurrent requests (config/database.py, core/errors.py)."""

import pytest
from django.db import OperationalError
from django.test import Client, override_settings

from config import database
from core.errors import DATABASE_RETRY_AFTER_SECONDS

pytestmark = pytest.mark.django_db


def _refuse(*args, **kwargs):
    raise OperationalError("connection failed: FATAL:  sorry, too many clients already")


class RefusingMiddleware:
    """Meets the database before any view runs (as a session or user lookup in a middleware would)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        _refuse()


def _assert_json_503(response) -> None:
    assert response.status_code == 503
    assert response["Retry-After"] == str(DATABASE_RETRY_AFTER_SECONDS)
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "message": "The database is unavailable; retry shortly.",
        "extra": {"retry_after": DATABASE_RETRY_AFTER_SECONDS},
    }


def test_a_page_whose_view_meets_a_refused_connection_is_a_503_page(client, owner, monkeypatch):
    client.force_login(owner)
    monkeypatch.setattr("dashboard.views.overview_accounts", _refuse)

    response = client.get("/")

    assert response.status_code == 503
    assert response["Retry-After"] == str(DATABASE_RETRY_AFTER_SECONDS)
    assert b"Temporarily unavailable" in response.content
    assert b"Nothing was changed" in response.content


def test_the_ea_endpoints_answer_the_json_503(client, monkeypatch):
    monkeypatch.setattr("ea.services.ea_request_authenticate", _refuse)

    _assert_json_503(client.get("/api/v1/ea/commands/"))


@override_settings(MIDDLEWARE=["core.tests.test_database_unavailable.RefusingMiddleware"])
def test_a_refusal_before_any_view_is_a_json_503_under_the_api():
    _assert_json_503(Client(raise_request_exception=False).get("/api/v1/me/"))


@override_settings(MIDDLEWARE=["core.tests.test_database_unavailable.RefusingMiddleware"])
def test_a_refusal_before_any_view_is_a_503_page_elsewhere():
    response = Client(raise_request_exception=False).get("/login/")

    assert response.status_code == 503
    assert response["Retry-After"] == str(DATABASE_RETRY_AFTER_SECONDS)
    assert b"Temporarily unavailable" in response.content


class BrokenMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        raise RuntimeError("a bug")


@override_settings(MIDDLEWARE=["core.tests.test_database_unavailable.BrokenMiddleware"])
def test_any_other_uncaught_error_under_the_api_is_a_500_in_the_json_error_shape():
    response = Client(raise_request_exception=False).get("/api/v1/me/")

    assert response.status_code == 500
    assert response.json() == {"message": "Internal server error.", "extra": {}}


# --- the settings of the pool ------------------------------------------------------------------------------------


POSTGRES = {"ENGINE": "django.db.backends.postgresql", "NAME": "x", "OPTIONS": {"sslmode": "prefer"}}


def test_without_the_pool_connections_persist_per_thread(monkeypatch):
    monkeypatch.delenv("DJANGO_DB_POOL", raising=False)

    configured = database.configure_connections(dict(POSTGRES), conn_max_age=60)

    assert configured["CONN_MAX_AGE"] == 60
    assert "pool" not in configured["OPTIONS"]


def test_the_pool_is_bounded_and_replaces_persistent_connections(monkeypatch):
    monkeypatch.setenv("DJANGO_DB_POOL", "true")
    monkeypatch.setenv("DJANGO_DB_POOL_MAX_SIZE", "7")
    monkeypatch.setenv("DJANGO_DB_POOL_TIMEOUT", "2.5")

    configured = database.configure_connections(dict(POSTGRES), conn_max_age=60)

    assert configured["CONN_MAX_AGE"] == 0  # Django refuses a pool with persistent connections
    assert configured["OPTIONS"]["sslmode"] == "prefer"
    pool = configured["OPTIONS"]["pool"]
    assert (pool["min_size"], pool["max_size"], pool["timeout"]) == (2, 7, 2.5)


def test_sqlite_is_never_pooled(monkeypatch):
    monkeypatch.setenv("DJANGO_DB_POOL", "true")

    configured = database.configure_connections({"ENGINE": "django.db.backends.sqlite3"}, conn_max_age=60)

    assert "pool" not in configured.get("OPTIONS", {})


@pytest.mark.parametrize(("low", "high"), [("3", "2"), ("0", "0"), ("-1", "4")])
def test_an_impossible_pool_size_stops_the_process(monkeypatch, low, high):
    monkeypatch.setenv("DJANGO_DB_POOL", "true")
    monkeypatch.setenv("DJANGO_DB_POOL_MIN_SIZE", low)
    monkeypatch.setenv("DJANGO_DB_POOL_MAX_SIZE", high)

    with pytest.raises(ValueError, match="DJANGO_DB_POOL"):
        database.configure_connections(dict(POSTGRES), conn_max_age=60)


def test_the_asgi_module_pools_only_its_own_settings(monkeypatch):
    """The web process pools; a process it (or a test that imported it) starts keeps the default (no pool)."""
    import importlib
    import os

    import config.asgi

    monkeypatch.delenv("DJANGO_DB_POOL", raising=False)
    importlib.reload(config.asgi)

    assert "DJANGO_DB_POOL" not in os.environ
