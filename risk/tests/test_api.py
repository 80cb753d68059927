import uuid
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from accounts.services import user_create
from guards.models import GuardState
from integrations.mt5.errors import GatewayUnavailable
from risk.models import RiskConfigVersion, TradeSetupRiskLog
from risk.services import risk_config_update
from risk.tests.conftest import account_with_snapshot

pytestmark = pytest.mark.django_db
D = Decimal

CONFIG_URL = reverse("risk-api:config")
HISTORY_URL = reverse("risk-api:config-history")
NEW_CONFIG = {
    "risk_percent": "2.5",
    "entry_splits": [60, 40],
    "margin_buffer_percent": 10,
    "max_snapshot_age_seconds": 120,
    "reason": "Quieter week",
}
SPEC_SETUP = {"symbol": "EURUSD", "side": "buy", "entries": [1.0850, "1.0840", 1.0830], "sl": "1.0800"}


def size_url(account_id: int) -> str:
    return reverse("risk-api:trade-setup-size", kwargs={"account_id": account_id})


@pytest.fixture
def use_stub_terminal(monkeypatch, stub_terminal):
    """The account's terminal is the stub (the view asks accounts.selectors.trading_account_gateway)."""
    monkeypatch.setattr("accounts.selectors.trading_account_gateway", lambda *, account: stub_terminal)
    return stub_terminal


# Configuration: read ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("user_fixture", ["owner", "support", "trader"])
def test_any_signed_in_user_reads_the_configuration(api_client, request, user_fixture):
    api_client.force_authenticate(request.getfixturevalue(user_fixture))
    response = api_client.get(CONFIG_URL)
    assert response.status_code == 200
    assert response.json() == {
        "version": 1,
        "risk_percent": "3.00",
        "entry_splits": ["50", "35", "15"],
        "margin_buffer_percent": "20.00",
        "max_snapshot_age_seconds": 300,
        "changed_by": None,
        "changed_at": response.json()["changed_at"],
        "reason": "Defaults from shared/spec/sizing.md.",
    }


def test_anonymous_gets_401_everywhere(api_client, trader_account):
    assert api_client.get(CONFIG_URL).status_code == 401
    assert api_client.put(CONFIG_URL, NEW_CONFIG, format="json").status_code == 401
    assert api_client.get(HISTORY_URL).status_code == 401
    response = api_client.post(size_url(trader_account.pk), SPEC_SETUP, format="json")
    assert response.status_code == 401
    assert set(response.json()) == {"message", "extra"}


# Configuration: update -------------------------------------------------------------------------------------------


def test_owner_puts_a_new_configuration(api_client, owner, django_capture_on_commit_callbacks):
    api_client.force_authenticate(owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.put(CONFIG_URL, NEW_CONFIG, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["version"] == 2
    assert body["risk_percent"] == "2.50"
    assert body["entry_splits"] == ["60", "40"]
    assert body["changed_by"] == "owner"
    assert body["reason"] == "Quieter week"
    assert api_client.get(CONFIG_URL).json()["version"] == 2


def test_owner_patches_one_setting(api_client, owner, django_capture_on_commit_callbacks):
    api_client.force_authenticate(owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.patch(CONFIG_URL, {"risk_percent": 1, "reason": "drawdown"}, format="json")
    assert response.status_code == 200
    assert response.json()["risk_percent"] == "1.00"
    assert response.json()["entry_splits"] == ["50", "35", "15"]


def test_put_needs_every_setting(api_client, owner):
    api_client.force_authenticate(owner)
    response = api_client.put(CONFIG_URL, {"risk_percent": 1, "reason": "r"}, format="json")
    assert response.status_code == 400
    assert set(response.json()["extra"]["fields"]) == {
        "entry_splits",
        "margin_buffer_percent",
        "max_snapshot_age_seconds",
    }


@pytest.mark.parametrize("user_fixture", ["support", "trader"])
def test_only_owners_update(api_client, request, user_fixture):
    api_client.force_authenticate(request.getfixturevalue(user_fixture))
    for method in (api_client.put, api_client.patch):
        response = method(CONFIG_URL, NEW_CONFIG, format="json")
        assert response.status_code == 403
        assert response.json() == {"message": "Only an owner may change the risk configuration.", "extra": {}}
    assert RiskConfigVersion.objects.count() == 1


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"risk_percent": "0.05"}, "risk_percent", "Risk percent must be a number from 0.1 to 50."),
        ({"risk_percent": 51}, "risk_percent", "Risk percent must be a number from 0.1 to 50."),
        ({"entry_splits": [50, 40]}, "entry_splits", "Entry splits parts must sum to exactly 100."),
        ({"entry_splits": [40, 30, 20, 10]}, "entry_splits", "Entry splits must be 1 to 3 parts."),
        (
            {"margin_buffer_percent": -5},
            "margin_buffer_percent",
            "Margin buffer percent must be a number from 0 to 100.",
        ),
        (
            {"max_snapshot_age_seconds": 4000},
            "max_snapshot_age_seconds",
            "Max snapshot age seconds must be a whole number of seconds from 10 to 3600.",
        ),
        ({"reason": ""}, "reason", "This field may not be blank."),
        ({"risk_percent": "three"}, "risk_percent", "A valid number is required."),
        ({"entry_splits": ["half", 50]}, "entry_splits", "A valid number is required."),
        ({"max_snapshot_age_seconds": "soon"}, "max_snapshot_age_seconds", "A valid integer is required."),
    ],
)
def test_invalid_configuration_is_a_400_with_field_errors_and_nothing_changes(
    api_client, owner, change, field, message
):
    api_client.force_authenticate(owner)
    response = api_client.put(CONFIG_URL, NEW_CONFIG | change, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["message"] == "Validation error"
    assert list(body["extra"]["fields"]) == [field]
    assert message in str(body["extra"]["fields"][field])
    assert RiskConfigVersion.objects.count() == 1
    assert api_client.get(CONFIG_URL).json()["version"] == 1


# Configuration: history ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("user_fixture", ["owner", "support"])
def test_history_shows_who_when_why_and_old_and_new_values(api_client, request, owner, user_fixture):
    risk_config_update(actor=owner, reason="smaller", risk_percent=D(2))
    risk_config_update(actor=owner, reason="two entries", entry_splits=[D(70), D(30)])
    api_client.force_authenticate(request.getfixturevalue(user_fixture))
    response = api_client.get(HISTORY_URL)
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    newest, middle, first = body["results"]
    assert newest["version"] == 3
    assert newest["changed_by"] == "owner"
    assert newest["reason"] == "two entries"
    assert newest["changed"] == ["entry_splits"]
    assert newest["old"]["entry_splits"] == ["50", "35", "15"]
    assert newest["new"]["entry_splits"] == ["70", "30"]
    assert newest["new"]["risk_percent"] == "2.00"
    assert middle["old"]["risk_percent"] == "3.00"
    assert middle["new"]["risk_percent"] == "2.00"
    assert middle["changed"] == ["risk_percent"]
    assert first["version"] == 1
    assert first["old"] is None
    assert first["changed_by"] is None


def test_history_is_paginated(api_client, owner):
    for percent in range(1, 5):
        risk_config_update(actor=owner, reason=f"step {percent}", risk_percent=D(percent))
    api_client.force_authenticate(owner)
    body = api_client.get(HISTORY_URL, {"limit": 2}).json()
    assert body["count"] == 5
    assert [row["version"] for row in body["results"]] == [5, 4]
    assert body["next"] is not None
    body = api_client.get(HISTORY_URL, {"limit": 2, "offset": 4}).json()
    assert [row["version"] for row in body["results"]] == [1]


def test_traders_do_not_read_the_history(api_client, trader):
    api_client.force_authenticate(trader)
    response = api_client.get(HISTORY_URL)
    assert response.status_code == 403
    assert response.json()["message"] == "Only owners and support staff may read the configuration history."


def test_history_needs_a_fixed_number_of_queries(api_client, owner, django_assert_max_num_queries):
    for percent in range(1, 6):
        risk_config_update(actor=owner, reason=f"step {percent}", risk_percent=D(percent))
    api_client.force_authenticate(owner)
    # count + page (with previous and changed_by joined) + the user's groups for the permission check.
    with django_assert_max_num_queries(4):
        assert api_client.get(HISTORY_URL).status_code == 200


# Sizing ----------------------------------------------------------------------------------------------------------


def test_trader_sizes_a_setup_on_their_account(api_client, trader, trader_account, use_stub_terminal):
    api_client.force_authenticate(trader)
    response = api_client.post(size_url(trader_account.pk), SPEC_SETUP, format="json")
    assert response.status_code == 200
    body = response.json()
    log = TradeSetupRiskLog.objects.get()
    assert body["log_id"] == log.pk
    assert body["account"] == trader_account.pk
    assert body["config_version"] == 1
    assert body["approved"] is True
    assert body["reason"] is None
    assert body["result"]["risk_amount"] == "300.00"
    assert [entry["volume"] for entry in body["result"]["entries"]] == ["0.30", "0.26", "0.15"]
    assert body["result"]["total_margin"] == "770.35"


def test_trader_cannot_size_another_traders_account(api_client, trader, other_trader, use_stub_terminal):
    account = account_with_snapshot(owner=other_trader)
    api_client.force_authenticate(trader)
    response = api_client.post(size_url(account.pk), SPEC_SETUP, format="json")
    assert response.status_code == 404
    assert response.json() == {"message": f"Trading account {account.pk} not found.", "extra": {}}
    assert not TradeSetupRiskLog.objects.exists()


@pytest.mark.parametrize("user_fixture", ["owner", "support"])
def test_operators_size_any_account(api_client, request, trader_account, use_stub_terminal, user_fixture):
    user = request.getfixturevalue(user_fixture)
    api_client.force_authenticate(user)
    response = api_client.post(size_url(trader_account.pk), SPEC_SETUP, format="json")
    assert response.status_code == 200
    assert TradeSetupRiskLog.objects.get().requested_by == user


def test_the_bot_is_an_api_user_with_the_size_any_account_permission(
    api_client, owner, trader_account, use_stub_terminal
):
    bot = user_create(username="bot", password="bot-pass-123456", role="trader")
    api_client.force_authenticate(bot)
    assert api_client.post(size_url(trader_account.pk), SPEC_SETUP, format="json").status_code == 404
    bot.user_permissions.add(Permission.objects.get(codename="size_any_account"))
    bot = type(bot).objects.get(pk=bot.pk)  # fresh permission cache
    api_client.force_authenticate(bot)
    response = api_client.post(size_url(trader_account.pk), SPEC_SETUP, format="json")
    assert response.status_code == 200
    assert response.json()["approved"] is True


def test_the_bot_signs_in_with_a_jwt(api_client, trader_account, use_stub_terminal):
    bot = user_create(username="bot", password="bot-pass-123456", role="trader")
    bot.user_permissions.add(Permission.objects.get(codename="size_any_account"))
    token = api_client.post(
        reverse("token_obtain_pair"), {"username": "bot", "password": "bot-pass-123456"}, format="json"
    ).json()["access"]
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api_client.post(size_url(trader_account.pk), SPEC_SETUP, format="json").status_code == 200


def test_unknown_account_is_a_404(api_client, owner):
    api_client.force_authenticate(owner)
    response = api_client.post(size_url(999_999), SPEC_SETUP, format="json")
    assert response.status_code == 404
    assert response.json()["message"] == "Trading account 999999 not found."


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"entries": ["1.0850", "abc", "1.0830"]}, "entries", "A valid number is required."),
        ({"sl": "low"}, "sl", "A valid number is required."),
        ({"sl": None}, "sl", "This field may not be null."),
        ({"entries": "1.0850"}, "entries", 'Expected a list of items but got type "str".'),
        ({"entries": []}, "entries", "Ensure this field has at least 1 elements."),
        ({"entries": [1.1, 1.2, 1.3, 1.4]}, "entries", "Ensure this field has no more than 3 elements."),
        ({"entries": [1.085, 0, 1.083]}, "entries", "Must be a positive price."),
        ({"sl": -1}, "sl", "Must be a positive price."),
        ({"side": "long"}, "side", '"long" is not a valid choice.'),
        ({"symbol": ""}, "symbol", "This field may not be blank."),
    ],
)
def test_malformed_setup_is_a_400_with_field_errors_and_not_logged(
    api_client, trader, trader_account, use_stub_terminal, change, field, message
):
    api_client.force_authenticate(trader)
    response = api_client.post(size_url(trader_account.pk), SPEC_SETUP | change, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["message"] == "Validation error"
    assert field in body["extra"]["fields"]
    assert message in str(body["extra"]["fields"][field])
    assert not TradeSetupRiskLog.objects.exists()


def test_missing_body_names_every_field(api_client, trader, trader_account):
    api_client.force_authenticate(trader)
    response = api_client.post(size_url(trader_account.pk), {}, format="json")
    assert response.status_code == 400
    assert set(response.json()["extra"]["fields"]) == {"symbol", "side", "entries", "sl"}


@pytest.mark.parametrize(
    ("change", "field", "message", "reason"),
    [
        ({"sl": "1.0900"}, "sl", "For a buy the stop loss must be below every entry.", "invalid_stop"),
        (
            {"side": "sell"},
            "sl",
            "For a sell the stop loss must be above every entry.",
            "invalid_stop",
        ),
        ({"entries": [1.085, 1.084]}, "entries", "exactly 3 entries", "invalid_setup"),
    ],
)
def test_wrong_setup_is_a_400_and_logged(
    api_client, trader, trader_account, use_stub_terminal, change, field, message, reason
):
    api_client.force_authenticate(trader)
    response = api_client.post(size_url(trader_account.pk), SPEC_SETUP | change, format="json")
    assert response.status_code == 400
    body = response.json()
    assert message in body["message"]
    assert message in body["extra"]["fields"][field][0]
    assert body["extra"]["reason"] == reason
    log = TradeSetupRiskLog.objects.get()
    assert (body["extra"]["log_id"], log.approved, log.reason) == (log.pk, False, reason)


def test_unknown_symbol_is_a_400_with_a_clear_message(api_client, trader, trader_account, use_stub_terminal):
    api_client.force_authenticate(trader)
    response = api_client.post(size_url(trader_account.pk), SPEC_SETUP | {"symbol": "FOOBAR"}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["message"] == f"The terminal of account {trader_account} does not know the symbol 'FOOBAR'."
    assert body["extra"]["fields"] == {"symbol": ["Unknown symbol 'FOOBAR' on this account's terminal."]}
    assert TradeSetupRiskLog.objects.get().reason == "unknown_symbol"


def test_stale_account_is_a_200_rejection_and_logged(api_client, trader, use_stub_terminal):
    account = account_with_snapshot(owner=trader, age_seconds=3600)
    api_client.force_authenticate(trader)
    response = api_client.post(size_url(account.pk), SPEC_SETUP, format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["approved"], body["reason"]) == (False, "stale_account")
    assert body["result"]["entries"] == []
    assert use_stub_terminal.calls == []
    assert TradeSetupRiskLog.objects.get().reason == "stale_account"


@pytest.mark.parametrize("status", ["tripped", "halted"])
def test_halted_account_is_a_200_rejection_and_logged(
    api_client, trader, trader_account, use_stub_terminal, status
):
    GuardState.objects.create(account=trader_account, status=status, trip_id=uuid.uuid4())
    api_client.force_authenticate(trader)
    response = api_client.post(size_url(trader_account.pk), SPEC_SETUP, format="json")
    assert response.status_code == 200
    assert (response.json()["approved"], response.json()["reason"]) == (False, "account_halted")
    assert use_stub_terminal.calls == []
    assert TradeSetupRiskLog.objects.get().reason == "account_halted"


def test_unreachable_terminal_is_a_503(api_client, trader, trader_account, use_stub_terminal, monkeypatch):
    def down(name):
        raise GatewayUnavailable("no link", call="symbol_info")

    monkeypatch.setattr(use_stub_terminal, "symbol", down)
    api_client.force_authenticate(trader)
    response = api_client.post(size_url(trader_account.pk), SPEC_SETUP, format="json")
    assert response.status_code == 503
    assert response.json()["extra"]["reason"] == "terminal_unavailable"


def test_a_sizing_request_needs_a_fixed_number_of_queries(
    api_client, trader, trader_account, use_stub_terminal, django_assert_max_num_queries
):
    api_client.force_authenticate(trader)
    api_client.get(CONFIG_URL)  # the configuration is in the shared cache from now on
    # permissions (2), the trader's role, the account with its snapshot, the guard state, the log insert.
    with django_assert_max_num_queries(6):
        assert api_client.post(size_url(trader_account.pk), SPEC_SETUP, format="json").status_code == 200


def test_patch_with_an_unknown_key_is_a_400_and_stores_nothing(api_client, owner):
    api_client.force_authenticate(owner)
    before = RiskConfigVersion.objects.count()
    response = api_client.patch(CONFIG_URL, {"risk_pct": "2", "reason": "typo"}, format="json")
    assert response.status_code == 400
    assert "risk_pct" in response.json()["extra"]["fields"]
    assert RiskConfigVersion.objects.count() == before


def test_patch_with_the_values_in_force_is_a_400(api_client, owner):
    api_client.force_authenticate(owner)
    current = api_client.get(CONFIG_URL).json()
    before = RiskConfigVersion.objects.count()
    response = api_client.patch(
        CONFIG_URL, {"risk_percent": current["risk_percent"], "reason": "same again"}, format="json"
    )
    assert response.status_code == 400
    assert "Nothing changed" in response.json()["message"]
    assert api_client.patch(CONFIG_URL, {"reason": "nothing at all"}, format="json").status_code == 400
    assert RiskConfigVersion.objects.count() == before
