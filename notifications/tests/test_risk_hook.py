"""A risk configuration change notifies owners and support (old → new, who, why) and never a trader."""

from decimal import Decimal

import pytest
from django.core import mail
from django.core.exceptions import ValidationError

from notifications.models import EventKind, Notification
from notifications.services import notification_deliver
from risk.models import RiskConfigVersion
from risk.services import risk_config_update

pytestmark = pytest.mark.django_db


def test_owners_and_support_hear_of_a_risk_change(people):
    owner, support, trader = people["owner"], people["support"], people["trader"]
    config = risk_config_update(actor=owner, reason="calmer market", risk_percent=Decimal("0.75"))
    rows = Notification.objects.filter(kind=EventKind.RISK_CONFIG_CHANGED, event_key=f"risk:{config.version}")
    assert {r.recipient for r in rows} == {owner, support}
    assert not Notification.objects.filter(recipient__in=[trader, people["other_trader"]]).exists()
    email = rows.get(destination=f"email:{support.email}")
    previous = RiskConfigVersion.objects.get(version=config.version - 1)
    assert email.payload["changes"] == {"risk_percent": {"old": str(previous.risk_percent), "new": "0.75"}}
    assert notification_deliver(notification_id=email.pk).outcome == "sent"
    [message] = mail.outbox
    assert message.to == [support.email]
    assert "risk percent: " in message.body
    assert "calmer market" in message.body


def test_a_refused_change_notifies_nobody(people):
    with pytest.raises(ValidationError):
        risk_config_update(actor=people["owner"], reason="", risk_percent=Decimal("0.75"))
    assert not Notification.objects.exists()
