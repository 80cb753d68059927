"""The notifications page: full page, HTMX fragments, saving preferences, a link code."""

import pytest

from notifications.models import NotificationPreference

pytestmark = pytest.mark.django_db


def test_the_page_and_its_fragments(client, trader):
    client.force_login(trader)
    page = client.get("/notifications/")
    assert page.status_code == 200
    assert b'id="notifications-preferences"' in page.content
    assert b'id="notifications-deliveries"' in page.content
    fragment = client.get("/notifications/deliveries/", headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert b"<html" not in fragment.content
    assert b'id="notifications-deliveries"' in fragment.content


def test_saving_preferences_with_htmx(client, trader):
    client.force_login(trader)
    response = client.post(
        "/notifications/preferences/",
        {"time_zone": "Asia/Tokyo", "email_enabled": "on", "email_min_severity": "critical",
         "telegram_min_severity": "info"},
        headers={"HX-Request": "true"},
    )  # fmt: skip
    assert response.status_code == 200
    assert b"Saved." in response.content
    trader.refresh_from_db()
    assert trader.time_zone == "Asia/Tokyo"
    prefs = {
        p.channel: (p.enabled, p.min_severity) for p in NotificationPreference.objects.filter(user=trader)
    }
    assert prefs == {"email": (True, "critical"), "telegram": (False, "info")}


def test_a_bad_time_zone_is_shown_not_saved(client, trader):
    client.force_login(trader)
    response = client.post(
        "/notifications/preferences/",
        {"time_zone": "Nowhere/Land", "email_min_severity": "warning", "telegram_min_severity": "warning"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert b"Unknown time zone" in response.content
    assert not NotificationPreference.objects.exists()


def test_a_link_code_fragment(client, trader):
    client.force_login(trader)
    response = client.post("/notifications/telegram/code/", headers={"HX-Request": "true"})
    assert b'id="telegram-code"' in response.content


def test_login_required(client):
    assert client.get("/notifications/").status_code == 302
