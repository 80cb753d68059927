"""Login lockout (django-axes) on the JWT token endpoint and the admin login: counted, audited, 429 + Retry-After."""

import pytest
from axes.models import AccessAttempt, AccessFailureLog
from django.conf import settings
from django.urls import reverse

pytestmark = pytest.mark.django_db

TOKEN_URL = reverse("token_obtain_pair")
LIMIT = settings.AXES_FAILURE_LIMIT
COOLOFF = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))


def _token(client, password: str, username: str = "trader"):
    return client.post(TOKEN_URL, {"username": username, "password": password}, format="json")


def test_token_endpoint_locks_out_after_repeated_failures(api_client, trader):
    for _ in range(LIMIT - 1):
        assert _token(api_client, "wrong").status_code == 401
    response = _token(api_client, "wrong")
    assert response.status_code == 429
    assert response["Retry-After"] == COOLOFF
    assert response.json()["message"].startswith("Too many failed login attempts.")
    assert response.json()["extra"] == {"retry_after": int(COOLOFF)}
    # Even the right password is refused while locked out.
    locked = _token(api_client, "trader-pass-123")
    assert locked.status_code == 429
    assert locked["Retry-After"] == COOLOFF
    assert set(locked.json()) == {"message", "extra"}


def test_failed_logins_are_audited(api_client, trader):
    for _ in range(2):
        _token(api_client, "wrong")
    attempt = AccessAttempt.objects.get(username="trader")
    assert attempt.failures_since_start == 2
    assert AccessFailureLog.objects.filter(username="trader").count() == 2
    # The audit never stores the password.
    assert "wrong" not in attempt.post_data


def test_success_resets_the_failure_count(api_client, trader):
    for _ in range(LIMIT - 1):
        _token(api_client, "wrong")
    assert _token(api_client, "trader-pass-123").status_code == 200
    for _ in range(LIMIT - 1):
        assert _token(api_client, "wrong").status_code == 401


def test_lockout_is_per_username_and_ip(api_client, trader, other_trader):
    for _ in range(LIMIT):
        _token(api_client, "wrong")
    assert _token(api_client, "trader2-pass-123", username="trader2").status_code == 200
    response = api_client.post(
        TOKEN_URL,
        {"username": "trader", "password": "trader-pass-123"},
        format="json",
        REMOTE_ADDR="10.1.2.3",
    )
    assert response.status_code == 200


def test_admin_login_locks_out_with_a_page(client, owner):
    url = reverse("admin:login")
    for _ in range(LIMIT - 1):
        response = client.post(url, {"username": "owner", "password": "wrong"})
        assert response.status_code == 200  # the form again, with its error
    response = client.post(url, {"username": "owner", "password": "wrong"})
    assert response.status_code == 429
    assert response["Retry-After"] == COOLOFF
    assert b"Too many failed login attempts" in response.content
    assert client.post(url, {"username": "owner", "password": "owner-pass-123"}).status_code == 429


def test_owner_sees_the_login_audit_read_only(client, owner, trader, api_client):
    _token(api_client, "wrong")
    client.force_login(owner)
    attempt = AccessAttempt.objects.get(username="trader")
    assert client.get(reverse("admin:axes_accessattempt_changelist")).status_code == 200
    assert client.get(reverse("admin:axes_accessfailurelog_changelist")).status_code == 200
    assert client.get(reverse("admin:axes_accessattempt_add")).status_code == 403
    change = client.post(
        reverse("admin:axes_accessattempt_change", args=[attempt.pk]), {"username": "someone-else"}
    )
    assert change.status_code == 403
    attempt.refresh_from_db()
    assert attempt.username == "trader"


def test_the_login_page_locks_out_with_the_same_count(client, api_client, trader):
    for _ in range(LIMIT - 1):
        _token(api_client, "wrong")  # failures on the API count for the page too (same username and IP)
    response = client.post("/login/", {"username": "trader", "password": "wrong"})
    assert response.status_code == 429
    assert response["Retry-After"] == COOLOFF
    assert b"Too many failed login attempts" in response.content
    assert client.post("/login/", {"username": "trader", "password": "trader-pass-123"}).status_code == 429
