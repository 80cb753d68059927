"""The risk admin: the owner puts a new configuration in force through a form that needs a reason; everyone else
reads; versions and risk logs never change."""

from decimal import Decimal

import pytest
from django.urls import reverse

from risk.models import RiskConfigVersion
from risk.selectors import risk_config_current
from risk.services import risk_config_update
from risk.tests.factories import TradeSetupRiskLogFactory

pytestmark = pytest.mark.django_db

ADD_URL = reverse("admin:risk_riskconfigversion_add")
LIST_URL = reverse("admin:risk_riskconfigversion_changelist")
LOG_LIST_URL = reverse("admin:risk_tradesetuprisklog_changelist")
FORM = {
    "risk_percent": "2.5",
    "entry_splits": "60, 40",
    "margin_buffer_percent": "10",
    "max_snapshot_age_seconds": "120",
    "reason": "Quieter week",
}


def _client(client, user):
    client.force_login(user)
    return client


def test_add_form_is_prefilled_with_the_values_in_force(client, owner):
    body = _client(client, owner).get(ADD_URL).content.decode()
    assert 'value="3.00"' in body
    assert 'value="50, 35, 15"' in body
    assert 'name="reason"' in body


def test_owner_puts_a_new_version_in_force_through_the_service(
    client, owner, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = _client(client, owner).post(ADD_URL, FORM)
    assert response.status_code == 302, response.content.decode()
    current = risk_config_current()
    assert current.version == 2
    assert current.previous.version == 1
    assert current.changed_by == owner
    assert current.values == {
        "risk_percent": "2.50",
        "entry_splits": ["60", "40"],
        "margin_buffer_percent": "10.00",
        "max_snapshot_age_seconds": 120,
    }
    assert current.reason == "Quieter week"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"reason": ""}, "This field is required."),
        ({"risk_percent": "60"}, "Risk percent must be a number from 0.1 to 50."),
        ({"entry_splits": "50/40"}, "Entry splits parts must sum to exactly 100."),
        ({"entry_splits": "25, 25, 25, 25"}, "Entry splits must be 1 to 3 parts."),
        ({"entry_splits": "half, half"}, "Give numbers separated by commas, e.g. 50, 35, 15."),
        ({"margin_buffer_percent": "-1"}, "Margin buffer percent must be a number from 0 to 100."),
    ],
)
def test_invalid_form_shows_the_field_message_and_stores_nothing(client, owner, change, message):
    response = _client(client, owner).post(ADD_URL, FORM | change)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert RiskConfigVersion.objects.count() == 1


def test_versions_are_read_only_even_for_the_owner(client, owner):
    risk_config_update(actor=owner, reason="smaller", risk_percent=Decimal(2))
    version = risk_config_current()
    url = reverse("admin:risk_riskconfigversion_change", args=[version.pk])
    body = _client(client, owner).get(url).content.decode()
    assert 'name="risk_percent"' not in body
    assert "risk 3.00% · splits 50 / 35 / 15" in body  # the old values
    assert "risk 2.00% · splits 50 / 35 / 15" in body  # the new values
    response = client.post(url, FORM)
    assert response.status_code == 403
    delete = client.post(reverse("admin:risk_riskconfigversion_delete", args=[version.pk]), {"post": "yes"})
    assert delete.status_code == 403
    assert RiskConfigVersion.objects.count() == 2


def test_support_reads_the_history_but_cannot_add(client, owner, support):
    risk_config_update(actor=owner, reason="smaller", risk_percent=Decimal(2))
    client = _client(client, support)
    body = client.get(LIST_URL).content.decode()
    assert "smaller" in body
    assert ADD_URL not in body
    assert client.get(ADD_URL).status_code == 403
    assert client.post(ADD_URL, FORM).status_code == 403
    assert RiskConfigVersion.objects.count() == 2


def test_traders_have_no_admin(client, trader):
    response = _client(client, trader).get(LIST_URL)
    assert response.status_code == 302  # to the login page: traders are not staff


@pytest.mark.parametrize("user_fixture", ["owner", "support"])
def test_risk_log_is_read_only_for_owner_and_support(client, request, trader, user_fixture):
    log = TradeSetupRiskLogFactory(requested_by=trader, config=risk_config_current())
    client = _client(client, request.getfixturevalue(user_fixture))
    assert str(log.account.login) in client.get(LOG_LIST_URL).content.decode()
    detail = client.get(reverse("admin:risk_tradesetuprisklog_change", args=[log.pk]))
    assert detail.status_code == 200
    assert "stale_account" in detail.content.decode()
    assert 'name="reason"' not in detail.content.decode()
    assert client.get(reverse("admin:risk_tradesetuprisklog_add")).status_code == 403
    assert (
        client.post(
            reverse("admin:risk_tradesetuprisklog_delete", args=[log.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
