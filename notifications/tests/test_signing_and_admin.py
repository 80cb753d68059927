"""The documented webhook signature (and what it refuses), and the admin pages of the outbox and endpoints."""

import time

import pytest
from django.utils import timezone

from core.crypto import decrypt_secret
from notifications.events import Audience, Event
from notifications.models import EventKind, Notification, Severity, WebhookEndpoint
from notifications.services import notification_deliver, notification_events_record
from notifications.signing import signature_compute, signature_verify

pytestmark = pytest.mark.django_db


def test_the_signature_refuses_tampering_wrong_secrets_and_replays():
    now = int(time.time())
    body = b'{"event":"close_failed"}'
    sig = signature_compute(secret="s3cret", timestamp=str(now), body=body)
    assert signature_verify(secret="s3cret", timestamp=str(now), body=body, signature=sig)
    assert not signature_verify(secret="s3cret", timestamp=str(now), body=body + b" ", signature=sig)
    assert not signature_verify(secret="other", timestamp=str(now), body=body, signature=sig)
    old = str(now - 301)
    assert not signature_verify(
        secret="s3cret",
        timestamp=old,
        body=body,
        signature=signature_compute(secret="s3cret", timestamp=old, body=body),
    )
    assert not signature_verify(secret="s3cret", timestamp="soon", body=body, signature=sig)


def test_a_receiver_with_another_secret_refuses_and_we_retry(people, receiver):
    receiver.secret = "not-the-endpoint-secret"
    notification_events_record(
        events=[Event(key="alert:77", kind=EventKind.CLOSE_FAILED, severity=Severity.CRITICAL,
                      occurred_at=timezone.now(), audience=Audience.OPERATORS, payload={})]
    )  # fmt: skip
    hook = Notification.objects.get(channel="webhook")
    assert notification_deliver(notification_id=hook.pk).outcome == "retry"
    assert receiver.rejected == 1
    hook.refresh_from_db()
    assert hook.last_error == "webhook: HTTP 401"


def test_the_webhook_body_and_headers(people, receiver):
    notification_events_record(
        events=[Event(key="alert:78", kind=EventKind.CLOSE_FAILED, severity=Severity.CRITICAL,
                      occurred_at=timezone.now(), audience=Audience.OPERATORS, payload={"detail": {"retcode": 10018}})]
    )  # fmt: skip
    hook = Notification.objects.get(channel="webhook")
    assert notification_deliver(notification_id=hook.pk).outcome == "sent"
    [request] = receiver.received
    assert request["headers"]["X-MT5Guard-Event"] == "close_failed"
    assert request["headers"]["X-MT5Guard-Delivery"] == str(hook.pk)
    assert request["body"]["severity"] == "critical"
    assert "10018 (TRADE_RETCODE_MARKET_CLOSED)" in request["body"]["text"]


def test_the_admin_shows_deliveries_and_attempts(client, owner, people, receiver):
    notification_events_record(
        events=[Event(key="risk:5", kind=EventKind.RISK_CONFIG_CHANGED, severity=Severity.CRITICAL,
                      occurred_at=timezone.now(), audience=Audience.OPERATORS, payload={})]
    )  # fmt: skip
    hook = Notification.objects.get(channel="webhook")
    notification_deliver(notification_id=hook.pk)
    client.force_login(owner)
    assert client.get("/admin/notifications/notification/").status_code == 200
    page = client.get(f"/admin/notifications/notification/{hook.pk}/change/")
    assert page.status_code == 200
    assert b"Delivery attempts" in page.content


def test_an_owner_adds_a_webhook_and_sees_its_secret_once(client, owner):
    client.force_login(owner)
    response = client.post(
        "/admin/notifications/webhookendpoint/add/",
        {"name": "pager", "url": "https://hooks.example.test/x", "min_severity": "critical", "enabled": "on"},
        follow=True,
    )
    assert response.status_code == 200
    endpoint = WebhookEndpoint.objects.get(name="pager")
    secret = decrypt_secret(endpoint.secret_encrypted)
    assert secret.encode() in response.content
    assert secret not in endpoint.secret_encrypted
    assert (
        client.get(f"/admin/notifications/webhookendpoint/{endpoint.pk}/change/").content.count(
            secret.encode()
        )
        == 0
    )


def test_support_cannot_add_webhooks(client, support):
    client.force_login(support)
    assert client.get("/admin/notifications/webhookendpoint/add/").status_code == 403
