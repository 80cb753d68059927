"""The owner issues a key once and can rotate it; support sees the link's state, never a secret."""

import pytest
from django.test import Client

from core.crypto import decrypt_secret
from ea.models import EaLink

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_owner_adds_a_key_and_sees_its_secret_once(owner, ea_account):
    response = _client(owner).post(
        "/admin/ea/ealink/add/", {"account": ea_account.pk, "fresh_for_seconds": 120}
    )
    assert response.status_code == 200
    link = EaLink.objects.get(account=ea_account)
    page = response.content.decode()
    secret = decrypt_secret(link.secret_encrypted)
    assert link.key_id in page
    assert secret in page
    assert link.fresh_for_seconds == 120
    change_page = _client(owner).get(f"/admin/ea/ealink/{link.pk}/change/").content.decode()
    assert link.key_id in change_page
    assert secret not in change_page
    assert link.secret_encrypted not in change_page


def test_a_freshness_limit_out_of_range_is_refused_with_a_field_message(owner, ea_account):
    response = _client(owner).post(
        "/admin/ea/ealink/add/", {"account": ea_account.pk, "fresh_for_seconds": 5}
    )
    assert response.status_code == 200
    assert "Between 15 and 3600 seconds." in response.content.decode()
    assert not EaLink.objects.exists()


def test_rotating_shows_a_new_secret_and_retires_the_old(owner, ea_key):
    link, old = ea_key
    response = _client(owner).post(
        "/admin/ea/ealink/", {"action": "rotate_key", "_selected_action": [link.pk]}
    )
    link.refresh_from_db()
    new_secret = decrypt_secret(link.secret_encrypted)
    assert new_secret != old.secret
    assert new_secret in response.content.decode()
    assert link.key_id != old.key_id


def test_support_reads_the_state_but_cannot_issue_or_rotate(support, ea_key, ea_account):
    link, key = ea_key
    client = _client(support)
    page = client.get(f"/admin/ea/ealink/{link.pk}/change/")
    assert page.status_code == 200
    assert key.secret not in page.content.decode()
    assert client.get("/admin/ea/ealink/add/").status_code == 403
    client.post("/admin/ea/ealink/", {"action": "rotate_key", "_selected_action": [link.pk]})
    link.refresh_from_db()
    assert link.key_id == key.key_id
