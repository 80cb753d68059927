"""The bot-trade and event API: status codes, JSON shapes (errors included), idempotency, scoping."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from accounts.models import Role
from accounts.services import trading_account_create, user_create
from reconciliation.models import BotTrade, EventState, ReconciliationEvent
from reconciliation.tests.factories import BotTradeFactory

pytestmark = pytest.mark.django_db

PAYLOAD = {
    "signal_id": "sig-41",
    "approval_id": "apr-9",
    "leg": 1,
    "account": None,
    "symbol": "eurusd",
    "side": "buy",
    "volume": "0.50",
    "entry_price": "1.08500",
    "sl": "1.08000",
    "tp": "1.09500",
    "magic": 7001,
    "tag": "sig-41",
}


@pytest.fixture
def trader_account(trader):
    return trading_account_create(owner=trader, login=7001, server="Sim-Demo")


@pytest.fixture
def other_account(other_trader):
    return trading_account_create(owner=other_trader, login=7002, server="Sim-Demo")


def _url(account, name="bot-trades"):
    return reverse(f"reconciliation-api:{name}", kwargs={"account_id": account.pk})


def _payload(**changes):
    data = {key: value for key, value in PAYLOAD.items() if key != "account"}
    data.update(changes)
    return data


def test_trader_registers_a_bot_trade_on_their_account(api_client, trader, trader_account):
    api_client.force_authenticate(trader)
    response = api_client.post(_url(trader_account), _payload(), format="json")

    assert response.status_code == 201, response.data
    body = response.json()
    assert body["symbol"] == "EURUSD"
    assert body["volume"] == "0.5000"
    assert body["sl"] == "1.08000000"
    assert body["status"] == "open"
    assert body["account"] == trader_account.pk
    assert BotTrade.objects.get().signal_id == "sig-41"


def test_registering_again_is_idempotent_and_updates_what_the_bot_learned(api_client, trader, trader_account):
    api_client.force_authenticate(trader)
    first = api_client.post(_url(trader_account), _payload(), format="json")
    same = api_client.post(_url(trader_account), _payload(), format="json")
    with_ticket = api_client.post(_url(trader_account), _payload(ticket=50012), format="json")

    assert (first.status_code, same.status_code, with_ticket.status_code) == (201, 200, 200)
    assert first.json()["id"] == same.json()["id"] == with_ticket.json()["id"]
    assert with_ticket.json()["ticket"] == 50012
    assert BotTrade.objects.count() == 1


def test_another_leg_is_another_bot_trade(api_client, trader, trader_account):
    api_client.force_authenticate(trader)
    api_client.post(_url(trader_account), _payload(), format="json")
    response = api_client.post(_url(trader_account), _payload(leg=2), format="json")
    assert response.status_code == 201
    assert BotTrade.objects.count() == 2


def test_re_registering_with_another_side_is_a_conflict(api_client, trader, trader_account):
    api_client.force_authenticate(trader)
    api_client.post(_url(trader_account), _payload(), format="json")
    response = api_client.post(_url(trader_account), _payload(side="sell"), format="json")
    assert response.status_code == 409
    assert response.json()["message"].startswith("Bot trade sig-41#1 is registered with side 'buy'")
    assert response.json()["extra"]["field"] == "side"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"side": "long"}, "side"),
        ({"volume": "0"}, "volume"),
        ({"volume": "-1"}, "volume"),
        ({"volume": "0.123456"}, "volume"),
        ({"entry_price": "abc"}, "entry_price"),
        ({"symbol": ""}, "symbol"),
        ({"symbol": "EUR USD"}, "symbol"),
        ({"signal_id": ""}, "signal_id"),
        ({"leg": 0}, "leg"),
        ({"tag": "x" * 32}, "tag"),
        ({"ticket": -5}, "ticket"),
        ({"stop_loss": "1.08"}, "stop_loss"),
    ],
)
def test_malformed_bot_trade_is_a_clear_error_and_nothing_is_stored(
    api_client, trader, trader_account, changes, field
):
    api_client.force_authenticate(trader)
    response = api_client.post(_url(trader_account), _payload(**changes), format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["message"] == "Validation error"
    assert field in body["extra"]["fields"]
    assert not BotTrade.objects.exists()


def test_missing_required_fields_are_listed(api_client, trader, trader_account):
    api_client.force_authenticate(trader)
    response = api_client.post(_url(trader_account), {}, format="json")
    assert response.status_code == 400
    assert set(response.json()["extra"]["fields"]) >= {"signal_id", "symbol", "side", "volume", "entry_price"}


def test_trader_cannot_write_to_another_traders_account(api_client, trader, other_account):
    api_client.force_authenticate(trader)
    response = api_client.post(_url(other_account), _payload(), format="json")
    assert response.status_code == 404
    assert response.json() == {"message": f"Trading account {other_account.pk} not found.", "extra": {}}
    assert not BotTrade.objects.exists()


def test_support_may_read_but_not_write_bot_trades(api_client, support, trader_account):
    BotTradeFactory(account=trader_account)
    api_client.force_authenticate(support)
    assert api_client.post(_url(trader_account), _payload(), format="json").status_code == 403
    assert api_client.get(_url(trader_account)).status_code == 200  # reads and writes are checked apart


def test_owner_and_the_bot_user_write_to_any_account(api_client, owner, trader_account):
    bot = user_create(username="signal-bot", password="bot-pass-123456", role=Role.TRADER)
    bot.user_permissions.add(Permission.objects.get(codename="write_any_account"))
    for user, signal in ((owner, "a"), (bot, "b")):
        api_client.force_authenticate(user)
        assert (
            api_client.post(_url(trader_account), _payload(signal_id=signal), format="json").status_code
            == 201
        )


def test_unauthenticated_is_refused(api_client, trader_account):
    response = api_client.post(_url(trader_account), _payload(), format="json")
    assert response.status_code == 401


def test_bot_marks_a_trade_closed_idempotently(api_client, trader, trader_account):
    trade = BotTradeFactory(account=trader_account, signal_id="sig-41", leg=2)
    api_client.force_authenticate(trader)
    url = _url(trader_account, "bot-trade-close")
    first = api_client.post(
        url, {"signal_id": "sig-41", "leg": 2, "closed_at": "2026-03-02T10:00:00Z"}, format="json"
    )
    again = api_client.post(url, {"signal_id": "sig-41", "leg": 2}, format="json")

    assert first.status_code == again.status_code == 200
    assert first.json()["status"] == "closed"
    assert again.json()["closed_at"] == "2026-03-02T10:00:00Z"
    trade.refresh_from_db()
    assert trade.status == "closed"


def test_closing_an_unknown_trade_is_404(api_client, trader, trader_account):
    api_client.force_authenticate(trader)
    response = api_client.post(_url(trader_account, "bot-trade-close"), {"signal_id": "nope"}, format="json")
    assert response.status_code == 404


def test_list_of_bot_trades_is_paginated_and_filtered(api_client, trader, trader_account):
    BotTradeFactory(account=trader_account, signal_id="a")
    BotTradeFactory(account=trader_account, signal_id="b", status="closed", closed_at="2026-03-02T10:00:00Z")
    api_client.force_authenticate(trader)
    body = api_client.get(_url(trader_account), {"status": "open", "limit": 10}).json()
    assert body["count"] == 1
    assert [row["signal_id"] for row in body["results"]] == ["a"]


def _event(account, **fields):
    defaults = {
        "kind": "unmatched_position",
        "fingerprint": f"{account.pk}:unmatched_position:t{fields.get('ticket', 1)}",
        "ticket": 1,
        "symbol": "EURUSD",
        "first_seen_at": "2026-03-02T10:00:00Z",
        "last_seen_at": "2026-03-02T10:00:00Z",
    }
    defaults.update(fields)
    return ReconciliationEvent.objects.create(account=account, **defaults)


def test_events_are_scoped_to_what_the_user_may_see(
    api_client, trader, support, trader_account, other_account
):
    mine, theirs = _event(trader_account), _event(other_account)
    api_client.force_authenticate(trader)
    assert [e["id"] for e in api_client.get(reverse("reconciliation-api:events")).json()["results"]] == [
        mine.pk
    ]
    api_client.force_authenticate(support)
    ids = {e["id"] for e in api_client.get(reverse("reconciliation-api:events")).json()["results"]}
    assert ids == {mine.pk, theirs.pk}


def test_support_acknowledges_and_resolves_an_event(api_client, support, trader_account):
    event = _event(trader_account)
    api_client.force_authenticate(support)
    ack = api_client.post(
        reverse("reconciliation-api:event-acknowledge", kwargs={"event_id": event.pk}), {"note": "looking"}
    )
    done = api_client.post(
        reverse("reconciliation-api:event-resolve", kwargs={"event_id": event.pk}), {"note": "manual hedge"}
    )
    assert ack.status_code == 200
    assert ack.json()["state"] == "acknowledged"
    assert done.json()["state"] == "resolved"
    assert done.json()["resolved_by"] == "support"
    assert "manual hedge" in done.json()["note"]


def test_resolving_needs_a_note_and_traders_may_not(api_client, support, trader, trader_account):
    event = _event(trader_account)
    url = reverse("reconciliation-api:event-resolve", kwargs={"event_id": event.pk})
    api_client.force_authenticate(trader)
    assert api_client.post(url, {"note": "x"}).status_code == 403
    api_client.force_authenticate(support)
    response = api_client.post(url, {"note": " "})
    assert response.status_code == 400
    assert response.json()["message"].startswith("Say how the event was resolved")
    event.refresh_from_db()
    assert event.state == EventState.OPEN


def test_volume_precision_is_kept_exactly(api_client, trader, trader_account):
    api_client.force_authenticate(trader)
    api_client.post(_url(trader_account), _payload(volume="0.07", entry_price="2034.55"), format="json")
    trade = BotTrade.objects.get()
    assert trade.volume == Decimal("0.07")
    assert trade.entry_price == Decimal("2034.55")


# ---------------------------------------------------------------- fixes of issue 12


def test_support_reads_bot_trades_but_may_not_write_them(api_client, support, trader_account):
    BotTradeFactory(account=trader_account, signal_id="a")
    api_client.force_authenticate(support)
    response = api_client.get(_url(trader_account))
    assert response.status_code == 200
    assert [row["signal_id"] for row in response.json()["results"]] == ["a"]
    assert api_client.post(_url(trader_account), _payload(), format="json").status_code == 403


def test_reposting_a_bot_trade_with_another_volume_is_a_conflict(api_client, trader, trader_account):
    api_client.force_authenticate(trader)
    assert api_client.post(_url(trader_account), _payload(), format="json").status_code == 201
    assert api_client.post(_url(trader_account), _payload(volume="0.500"), format="json").status_code == 200
    response = api_client.post(_url(trader_account), _payload(volume="0.70"), format="json")
    assert response.status_code == 409
    assert BotTrade.objects.get().volume == Decimal("0.50")
    assert (
        api_client.post(_url(trader_account), _payload(entry_price="1.09"), format="json").status_code == 409
    )


@pytest.mark.parametrize(("side", "sl"), [("buy", "1.09000"), ("buy", "1.08500"), ("sell", "1.08000")])
def test_a_stop_on_the_wrong_side_of_the_entry_is_refused(api_client, trader, trader_account, side, sl):
    api_client.force_authenticate(trader)
    response = api_client.post(_url(trader_account), _payload(side=side, sl=sl, tp=None), format="json")
    assert response.status_code == 400
    assert "sl" in response.json()["extra"]["fields"]
    assert not BotTrade.objects.exists()


def test_resolving_a_resolved_event_is_a_conflict(api_client, support, trader_account):
    event = _event(trader_account)
    url = reverse("reconciliation-api:event-resolve", kwargs={"event_id": event.pk})
    api_client.force_authenticate(support)
    assert api_client.post(url, {"note": "done"}).status_code == 200
    again = api_client.post(url, {"note": "done again"})
    assert again.status_code == 409
    assert set(again.json()) == {"message", "extra"}


def test_events_filters_and_detail(api_client, trader, trader_account, other_account):
    unmatched = _event(trader_account)
    divergence = _event(
        trader_account, kind="volume_mismatch", fingerprint="x:volume", last_seen_at="2026-03-03T10:00:00Z"
    )
    theirs = _event(other_account)
    api_client.force_authenticate(trader)
    events = reverse("reconciliation-api:events")
    assert [e["id"] for e in api_client.get(events, {"kind": "volume_mismatch"}).json()["results"]] == [
        divergence.pk
    ]
    since = api_client.get(events, {"since": "2026-03-03T00:00:00Z"}).json()["results"]
    assert [e["id"] for e in since] == [divergence.pk]
    assert api_client.get(events, {"account": other_account.pk}).status_code == 404
    assert api_client.get(events, {"account": 999_999}).status_code == 404
    assert api_client.get(events, {"limit": -5}).status_code == 400
    assert api_client.get(events, {"offset": "abc"}).status_code == 400
    assert api_client.get(events, {"kind": "nonsense"}).status_code == 400
    detail = reverse("reconciliation-api:event", kwargs={"event_id": unmatched.pk})
    assert api_client.get(detail).json()["id"] == unmatched.pk
    assert (
        api_client.get(reverse("reconciliation-api:event", kwargs={"event_id": theirs.pk})).status_code == 404
    )


def test_positions_show_the_match_divergences_and_totals(api_client, trader, trader_account):
    from accounts.tests.factories import AccountSnapshotFactory
    from reconciliation.tests.factories import LivePositionFactory

    snapshot = AccountSnapshotFactory(account=trader_account, balance=Decimal("10000.00"))
    trader_account.latest_snapshot = snapshot
    trader_account.save(update_fields=["latest_snapshot"])
    trade = BotTradeFactory(account=trader_account, signal_id="s1")
    LivePositionFactory(
        account=trader_account, ticket=11, bot_trade=trade, match_method="ticket", profit=Decimal("150")
    )
    LivePositionFactory(account=trader_account, ticket=12, profit=Decimal("-50"))
    _event(trader_account, kind="volume_mismatch", ticket=11, fingerprint="v11")
    api_client.force_authenticate(trader)
    body = api_client.get(_url(trader_account, "positions")).json()
    assert body["totals"]["count"] == 2
    assert body["totals"]["floating_profit"] == "100.00"
    assert body["totals"]["floating_profit_percent_of_balance"] == "1.0000"
    first, second = body["positions"]
    assert (first["ticket"], first["match_method"], first["bot_trade"]["signal_id"]) == (11, "ticket", "s1")
    assert [d["kind"] for d in first["divergences"]] == ["volume_mismatch"]
    assert second["bot_trade"] is None
    assert second["divergences"] == []


def test_reconciliation_status_shows_the_last_sync_and_counts(api_client, trader, trader_account):
    from django.utils import timezone

    from reconciliation.models import AccountSync

    now = timezone.now()
    AccountSync.objects.create(
        account=trader_account, started_at=now, finished_at=now, duration_ms=120, ok=True, matched=3, unmatched=1,
        missing=2,
    )  # fmt: skip
    _event(trader_account, kind="sl_mismatch", fingerprint="sl1")
    api_client.force_authenticate(trader)
    body = api_client.get(_url(trader_account, "reconciliation")).json()
    assert body["last_sync"]["ok"] is True
    assert body["last_sync"]["duration_ms"] == 120
    assert body["counts"] == {"matched": 3, "unmatched": 1, "missing": 2, "open_divergences": 1}
    assert [e["kind"] for e in body["recent_events"]] == ["sl_mismatch"]
