"""schemathesis against the schema the project serves, as each role, with a bounded number of examples per
operation: no 5xx, and every response (status, content type, body) as the schema says.

Bounded: SCHEMATHESIS_EXAMPLES examples per operation and role (env, default 2), no deadline (the machine is
shared); the long poll answers at once (API_ALERTS_MAX_WAIT_SECONDS = 0) and orders are never sent (the manual
close task is not queued inside the test's transaction).
"""

import os

import pytest
import schemathesis
from django.contrib.auth.models import Permission
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, settings
from rest_framework_simplejwt.tokens import RefreshToken
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.models import User
from accounts.services import trading_account_create, user_create

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "2"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
ROLES = ("anonymous", "trader", "support", "owner", "bot")

schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", get_wsgi_application())


def _user(role: str) -> User | None:
    if role == "anonymous":
        return None
    if role == "bot":
        bot = User.objects.create_user(username="st-bot", password="st-bot-pass-123")
        bot.user_permissions.add(
            *Permission.objects.filter(codename__in=["write_any_account", "size_any_account"])
        )
        return bot
    return user_create(username=f"st-{role}", password=f"st-{role}-pass-123", role=role)


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """As Django's test client does: the WSGI handler must not close the connection that holds the test's
    transaction at the end of each request."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def auth_headers(request, db, settings):
    settings.API_ALERTS_MAX_WAIT_SECONDS = 0
    role = request.param
    user = _user(role)
    owner = (
        user
        if role == "trader"
        else user_create(username="st-account-owner", password="st-o-pass-123", role="trader")
    )
    trading_account_create(owner=owner, login=1, server="Schemathesis")
    if user is None:
        return {}
    return {"Authorization": f"Bearer {RefreshToken.for_user(user).access_token}"}


@pytest.mark.django_db
@pytest.mark.parametrize("auth_headers", ROLES, indirect=True)
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema(case, auth_headers, monkeypatch):
    monkeypatch.setattr("guards.services.manual_close._queue", lambda request_id: None)
    case.call_and_validate(headers=auth_headers, checks=CHECKS)
