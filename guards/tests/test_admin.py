"""The guards in the admin, per role: owner edits settings (history kept) and resets; support reads everything and
resets with a reason; traders get nothing."""

import uuid
from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from core.exceptions import ApplicationError, PermissionDeniedError
from guards.models import AlertKind, GuardAlert, GuardSettings, GuardSettingsChange, GuardState, GuardStatus
from guards.services import guard_reset
from guards.services.settings import guard_settings_update

pytestmark = pytest.mark.django_db


@pytest.fixture
def halted(account):
    return GuardState.objects.create(
        account=account,
        status=GuardStatus.HALTED,
        trip_id=uuid.uuid4(),
        trip_guard="drawdown",
        peak_equity=Decimal("10000"),
        drawdown_level="critical",
    )


def _settings_post(client, **changes):
    row = GuardSettings.objects.get(pk=1)
    data = {}
    for name in (f.name for f in GuardSettings._meta.local_fields if f.name not in ("id", "updated_at")):
        value = getattr(row, name)
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        elif name == "market_spread_cap_points":
            data[name] = "{}"
        else:
            data[name] = "" if value is None else str(value)
    data.update(changes)
    return client.post(reverse("admin:guards_guardsettings_change", args=[1]), data)


@pytest.mark.parametrize("role", ["owner", "support"])
def test_owner_and_support_have_the_reset_permission(request, role):
    user = request.getfixturevalue(role)
    assert user.has_perm("guards.reset_guard")
    assert user.has_perm("guards.view_guardalert")
    assert user.has_perm("guards.view_closeintent")


def test_traders_have_no_guard_permission(trader, client):
    assert not any(p.startswith("guards.") for p in trader.get_all_permissions())
    client.force_login(trader)
    assert (
        client.get(reverse("admin:guards_guardstate_changelist")).status_code == 302
    )  # not staff: login page


def test_owner_edits_global_settings_and_the_history_keeps_who_old_and_new(owner, client):
    client.force_login(owner)
    response = _settings_post(client, drawdown_critical_percent="25", change_reason="wider for the test")
    assert response.status_code == 302, response.content[:500]
    assert GuardSettings.objects.get(pk=1).drawdown_critical_percent == Decimal("25")
    change = GuardSettingsChange.objects.get()
    assert (change.field, change.old_value, change.new_value) == ("drawdown_critical_percent", "20", "25")
    assert change.changed_by == owner
    assert change.reason == "wider for the test"
    page = client.get(reverse("admin:guards_guardsettings_change", args=[1]))
    assert b"wider for the test" in page.content


def test_the_admin_refuses_an_inconsistent_pair_of_levels(owner, client):
    client.force_login(owner)
    response = _settings_post(client, drawdown_warning_percent="30")
    assert response.status_code == 200
    assert b"The warning level must be below the critical level." in response.content
    assert not GuardSettingsChange.objects.exists()


def test_support_reads_settings_but_cannot_change_them(support, client):
    client.force_login(support)
    assert client.get(reverse("admin:guards_guardsettings_change", args=[1])).status_code == 200
    assert _settings_post(client, drawdown_critical_percent="25").status_code == 403
    assert GuardSettings.objects.get(pk=1).drawdown_critical_percent == Decimal("20")
    with pytest.raises(PermissionDeniedError):
        guard_settings_update(actor=support, values={"drawdown_critical_percent": 25})


def test_owner_sets_a_per_account_override_through_the_service(owner, account):
    guard_settings_update(
        actor=owner, account=account, values={"drawdown_critical_percent": "15"}, reason="small"
    )
    change = GuardSettingsChange.objects.get(account=account)
    assert (change.old_value, change.new_value, change.changed_by) == (None, "15", owner)


@pytest.mark.parametrize("role", ["owner", "support"])
def test_reset_action_needs_a_reason_then_resets_and_audits(request, client, halted, role):
    user = request.getfixturevalue(role)
    client.force_login(user)
    url = reverse("admin:guards_guardstate_changelist")
    assert client.get(url).status_code == 200
    base = {"action": "reset_guards", ACTION_CHECKBOX_NAME: [halted.pk]}
    form_page = client.post(url, base)
    assert form_page.status_code == 200
    assert b"Reason" in form_page.content
    assert client.post(url, {**base, "apply": "1", "reason": ""}).status_code == 200  # re-asks
    assert GuardState.objects.get(pk=halted.pk).status == GuardStatus.HALTED
    response = client.post(url, {**base, "apply": "1", "reason": "Reviewed with the trader."})
    assert response.status_code == 302
    state = GuardState.objects.get(pk=halted.pk)
    assert state.status == GuardStatus.NORMAL
    assert state.reset_by == user
    assert state.reset_reason == "Reviewed with the trader."
    alert = GuardAlert.objects.get(kind=AlertKind.RESET)
    assert alert.actor == user
    assert alert.detail["before"]["status"] == "halted"


def test_support_sees_alerts_and_intents_read_only(support, client, halted):
    client.force_login(support)
    for name in ("guardalert", "closeintent", "guardsettingschange", "guardstate", "accountguardsettings"):
        assert client.get(reverse(f"admin:guards_{name}_changelist")).status_code == 200, name
    assert client.get(reverse("admin:guards_guardalert_add")).status_code == 403
    page = client.get(reverse("admin:guards_guardstate_change", args=[halted.pk]))
    assert page.status_code == 200
    assert b"Halted" in page.content


def test_guard_reset_service_rules(trader, support, account, halted):
    with pytest.raises(PermissionDeniedError):
        guard_reset(account=account, actor=trader, reason="please")
    with pytest.raises(ApplicationError, match="reason"):
        guard_reset(account=account, actor=support, reason="   ")


def test_reset_is_refused_while_liquidation_closes_are_in_flight(support, account, halted):
    from guards.models import CloseIntent

    CloseIntent.objects.create(
        idempotency_key=f"halt:{halted.trip_id}:1",
        account=account,
        ticket=1,
        trigger="drawdown",
        trigger_key=f"halt:{halted.trip_id}",
        state="unresolved",
    )
    with pytest.raises(ApplicationError, match="in flight"):
        guard_reset(account=account, actor=support, reason="now")
    assert GuardState.objects.get(pk=halted.pk).status == GuardStatus.HALTED


def test_owner_adds_an_account_override_in_the_admin(owner, client, account):
    client.force_login(owner)
    data = dict.fromkeys(("daily_loss_enabled",), "")
    data.update(account=account.pk, drawdown_critical_percent="15", daily_loss_enabled="false",
                market_spread_cap_points="null", change_reason="new trader")  # fmt: skip
    response = client.post(reverse("admin:guards_accountguardsettings_add"), data)
    assert response.status_code == 302, response.content[:800]
    from guards.selectors import guard_settings_for_account

    effective = guard_settings_for_account(account=account)
    assert effective.drawdown_critical_percent == Decimal("15")
    assert effective.daily_loss_critical_percent is None
    fields = set(GuardSettingsChange.objects.filter(account=account).values_list("field", flat=True))
    assert fields == {"drawdown_critical_percent", "daily_loss_enabled"}


def test_reset_action_lists_positions_left_open_and_needs_the_confirmation(support, client, account, halted):
    from guards.models import CloseIntent

    CloseIntent.objects.create(
        idempotency_key=f"halt:{halted.trip_id}:777",
        account=account,
        ticket=777,
        trigger="drawdown",
        trigger_key=f"halt:{halted.trip_id}",
        state="failed",
        last_retcode=10018,
    )
    client.force_login(support)
    url = reverse("admin:guards_guardstate_changelist")
    base = {"action": "reset_guards", ACTION_CHECKBOX_NAME: [halted.pk]}
    form_page = client.post(url, base)
    assert b"#777" in form_page.content
    assert b"confirm_open_positions" in form_page.content
    client.post(url, {**base, "apply": "1", "reason": "Market closed for the weekend."})
    assert GuardState.objects.get(pk=halted.pk).status == GuardStatus.HALTED  # refused: not confirmed
    assert not GuardAlert.objects.filter(kind=AlertKind.RESET).exists()
    response = client.post(
        url,
        {**base, "apply": "1", "reason": "Market closed for the weekend.", "confirm_open_positions": "on"},
    )
    assert response.status_code == 302
    assert GuardState.objects.get(pk=halted.pk).status == GuardStatus.NORMAL
    assert GuardAlert.objects.get(kind=AlertKind.RESET).detail["left_open"] == [777]
