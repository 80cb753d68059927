"""Admin: support staff acknowledge and resolve events with a note; traders may not; sync status is read-only."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import TradingAccountFactory
from reconciliation.models import (
    AccountSync,
    BotTradeStatus,
    EventState,
    NetMatch,
    ReconciliationEvent,
    SymbolOverride,
    SyncCycle,
)
from reconciliation.tests.factories import BotTradeFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:reconciliation_reconciliationevent_changelist"


@pytest.fixture
def events():
    account = TradingAccountFactory()
    now = timezone.now()
    return [
        ReconciliationEvent.objects.create(
            account=account,
            kind=kind,
            fingerprint=f"{account.pk}:{kind}:t{ticket}",
            ticket=ticket,
            symbol=symbol,
            first_seen_at=now,
            last_seen_at=now,
        )
        for kind, ticket, symbol in (("unmatched_position", 1, "EURUSD"), ("unmatched_position", 2, "XAUUSD"))
    ]


def _post_action(client, action, events, **extra):
    data = {"action": action, ACTION_CHECKBOX_NAME: [e.pk for e in events], **extra}
    return client.post(reverse(CHANGELIST), data)


def test_resolve_asks_for_a_note_on_an_intermediate_page(client, support, events):
    client.force_login(support)
    page = _post_action(client, "resolve", events)
    assert page.status_code == 200
    assert b'name="note"' in page.content
    assert b"Resolve events" in page.content
    assert ReconciliationEvent.objects.filter(state=EventState.OPEN).count() == 2


def test_support_resolves_selected_events_with_a_note(client, support, events):
    client.force_login(support)
    response = _post_action(client, "resolve", events, apply="1", note="Manual hedges, agreed with the desk.")
    assert response.status_code == 302
    for event in ReconciliationEvent.objects.all():
        assert event.state == EventState.RESOLVED
        assert event.resolved_by == support
        assert "Manual hedges" in event.note


def test_resolve_without_a_note_is_refused(client, support, events):
    client.force_login(support)
    response = _post_action(client, "resolve", events, apply="1", note="")
    assert response.status_code == 200  # the form again, with its error
    assert b"This field is required" in response.content
    assert not ReconciliationEvent.objects.filter(state=EventState.RESOLVED).exists()


def test_support_acknowledges_with_an_optional_note(client, support, events):
    client.force_login(support)
    _post_action(client, "acknowledge", events[:1], apply="1", note="")
    first, second = ReconciliationEvent.objects.order_by("pk")
    assert first.state == EventState.ACKNOWLEDGED
    assert first.acknowledged_by == support
    assert second.state == EventState.OPEN


def test_changelist_filters(client, support, events):
    client.force_login(support)
    account_id = events[0].account_id
    for query in (
        {"kind": "unmatched_position"},
        {"state__exact": "open"},
        {"symbol": "XAUUSD"},
        {"account__id__exact": account_id},
        {"present": "yes"},
        {"first_seen_at__gte": timezone.now().replace(hour=0, minute=0, second=0, microsecond=0).isoformat()},
    ):
        response = client.get(reverse(CHANGELIST), query)
        assert response.status_code == 200, query
    response = client.get(reverse(CHANGELIST), {"symbol": "XAUUSD"})
    assert response.context["cl"].result_count == 1


def test_traders_cannot_use_the_admin(client, trader, events):
    client.force_login(trader)
    response = _post_action(client, "resolve", events, apply="1", note="x")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
    assert not ReconciliationEvent.objects.filter(state=EventState.RESOLVED).exists()


def test_view_only_staff_get_no_actions(client, support, events):
    from django.contrib.auth.models import Permission

    support.groups.clear()
    support.user_permissions.add(Permission.objects.get(codename="view_reconciliationevent"))
    client.force_login(support)
    response = client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    assert b"Resolve selected events" not in response.content


def test_event_page_is_read_only(client, support, events):
    client.force_login(support)
    response = client.get(reverse("admin:reconciliation_reconciliationevent_change", args=[events[0].pk]))
    assert response.status_code == 200
    assert b'name="_save"' not in response.content


def test_sync_runs_and_cycles_are_visible_read_only_to_owner_and_support(client, owner, support):
    account = TradingAccountFactory()
    now = timezone.now()
    AccountSync.objects.create(
        account=account, started_at=now, finished_at=now, ok=False, error_class="GatewayTimeout"
    )
    SyncCycle.objects.create(started_at=now, interval_seconds=10, accounts=3, synced=2, failed=1)
    for user in (owner, support):
        client.force_login(user)
        runs = client.get(reverse("admin:reconciliation_accountsync_changelist"))
        cycles = client.get(reverse("admin:reconciliation_synccycle_changelist"))
        assert runs.status_code == cycles.status_code == 200
        assert b"GatewayTimeout" in runs.content
        assert b"Add sync cycle" not in cycles.content
        assert client.get(reverse("admin:reconciliation_synccycle_add")).status_code == 403


def test_owner_edits_symbol_overrides_support_only_reads_them(client, owner, support):
    data = {"name": "XAUUSD.m", "canonical": "xauusd", "pip": "0.1", "server": "Broker-Live", "account": ""}
    client.force_login(support)
    assert client.post(reverse("admin:reconciliation_symboloverride_add"), data).status_code == 403
    client.force_login(owner)
    assert client.post(reverse("admin:reconciliation_symboloverride_add"), data).status_code == 302
    assert SymbolOverride.objects.get(name="XAUUSD.m").canonical == "XAUUSD"


def test_owner_marks_bot_trades_closed(client, owner):
    trade = BotTradeFactory()
    client.force_login(owner)
    client.post(
        reverse("admin:reconciliation_bottrade_changelist"),
        {"action": "mark_closed", ACTION_CHECKBOX_NAME: [trade.pk]},
    )
    trade.refresh_from_db()
    assert trade.status == BotTradeStatus.CLOSED


def test_support_sees_a_net_match_with_its_bot_trades_and_events(client, support):
    account = TradingAccountFactory()
    now = timezone.now()
    net = NetMatch.objects.create(
        account=account,
        canonical_symbol="GBPUSD",
        ticket=990001,
        side="sell",
        net_volume="0.6",
        position_volume="0.5",
        divergences=[{"kind": "volume_mismatch", "expected": "0.6", "actual": "0.5"}],
        first_seen_at=now,
        last_seen_at=now,
    )
    for leg in (1, 2):
        BotTradeFactory(account=account, signal_id="sig-7", leg=leg, symbol="GBPUSD", net_match=net)
    ReconciliationEvent.objects.create(
        account=account,
        kind="volume_mismatch",
        fingerprint=f"{account.pk}:volume_mismatch:net990001",
        ticket=990001,
        symbol="GBPUSD",
        first_seen_at=now,
        last_seen_at=now,
    )
    client.force_login(support)

    listing = client.get(reverse("admin:reconciliation_netmatch_changelist"))
    page = client.get(reverse("admin:reconciliation_netmatch_change", args=[net.pk]))

    assert listing.status_code == 200
    assert b"volume_mismatch" in listing.content
    assert page.status_code == 200
    assert page.content.count(b"sig-7") >= 2
    assert b"Volume mismatch on ticket 990001" in page.content


def test_trading_accounts_show_their_margin_mode(client, support):
    TradingAccountFactory(margin_mode="netting")
    client.force_login(support)
    listing = client.get(reverse("admin:accounts_tradingaccount_changelist"))
    assert b"Netting (one position per symbol)" in listing.content
