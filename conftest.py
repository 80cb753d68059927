"""Shared fixtures: users per role, API clients."""

import pytest
from rest_framework.test import APIClient

from accounts.models import Role, User
from accounts.services import user_create


@pytest.fixture
def owner(db) -> User:
    return user_create(username="owner", password="owner-pass-123", role=Role.OWNER)


@pytest.fixture
def support(db) -> User:
    return user_create(username="support", password="support-pass-123", role=Role.SUPPORT)


@pytest.fixture
def trader(db) -> User:
    return user_create(username="trader", password="trader-pass-123", role=Role.TRADER)


@pytest.fixture
def other_trader(db) -> User:
    return user_create(username="trader2", password="trader2-pass-123", role=Role.TRADER)


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Transactional tests flush the database afterwards, which would also wipe rows that data migrations create
    (role groups, default risk and guard settings, symbol overrides) for every later test. Restore them: every
    transactional test gets a serialized rollback."""
    for item in items:
        marker = item.get_closest_marker("django_db")
        if marker and marker.kwargs.get("transaction") and not marker.kwargs.get("serialized_rollback"):
            item.add_marker(
                pytest.mark.django_db(**{**marker.kwargs, "serialized_rollback": True}), append=False
            )
