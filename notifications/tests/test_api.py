"""The notifications API: my preferences and time zone, a Telegram link code, the deliveries I may see."""

import pytest
from django.utils import timezone

from notifications.events import Audience, Event
from notifications.models import EventKind, Severity
from notifications.services import notification_events_record

pytestmark = pytest.mark.django_db

URL = "/api/v1/notifications/"


def test_preferences_default_then_change(api_client, trader):
    api_client.force_authenticate(trader)
    body = api_client.get(f"{URL}preferences/").json()
    assert body == {
        "time_zone": "UTC",
        "channels": [
            {"channel": "telegram", "enabled": True, "min_severity": "warning", "ready": False},
            {"channel": "email", "enabled": True, "min_severity": "warning", "ready": False},
        ],
    }
    response = api_client.put(
        f"{URL}preferences/",
        {
            "time_zone": "Europe/Paris",
            "channels": [{"channel": "email", "enabled": False, "min_severity": "critical"}],
        },
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["time_zone"] == "Europe/Paris"
    assert response.json()["channels"][1] == {
        "channel": "email", "enabled": False, "min_severity": "critical", "ready": False,
    }  # fmt: skip


def test_bad_preferences_are_a_400_naming_the_field(api_client, trader):
    api_client.force_authenticate(trader)
    response = api_client.patch(f"{URL}preferences/", {"time_zone": "Mars/Olympus"}, format="json")
    assert response.status_code == 400
    assert "time_zone" in response.json()["extra"]["fields"]
    response = api_client.patch(
        f"{URL}preferences/",
        {"channels": [{"channel": "sms", "enabled": True, "min_severity": "x"}]},
        format="json",
    )
    assert response.status_code == 400
    trader.refresh_from_db()
    assert trader.time_zone == "UTC"


def test_a_link_code(api_client, trader):
    api_client.force_authenticate(trader)
    response = api_client.post(f"{URL}telegram/link-code/")
    assert response.status_code == 201
    assert len(response.json()["code"]) == 8


def test_anonymous_is_refused(api_client):
    assert api_client.get(f"{URL}preferences/").status_code == 401


def test_deliveries_are_scoped_to_the_user(api_client, people):
    notification_events_record(
        events=[
            Event(key="risk:9", kind=EventKind.RISK_CONFIG_CHANGED, severity=Severity.WARNING,
                  occurred_at=timezone.now(), audience=Audience.OPERATORS, payload={})
        ]
    )  # fmt: skip
    api_client.force_authenticate(people["trader"])
    assert api_client.get(URL).json()["count"] == 0
    api_client.force_authenticate(people["support"])
    body = api_client.get(URL).json()
    assert body["count"] == 4  # owner and support, e-mail and telegram
    assert {row["state"] for row in body["results"]} == {"pending"}
