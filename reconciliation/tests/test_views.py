"""The divergence inspector's views: filters, the row that opens, acknowledge / resolve, bulk acknowledge, 403s."""

from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from accounts.tests.factories import TradingAccountFactory
from reconciliation.models import BotTrade, EventState, LivePosition, ReconciliationEvent

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _volume_event(owner) -> ReconciliationEvent:
    now = timezone.now()
    account = TradingAccountFactory(owner=owner)
    trade = BotTrade.objects.create(
        account=account,
        signal_id="s1",
        symbol="EURUSD",
        side="buy",
        volume=Decimal("1.00"),
        entry_price=Decimal("1.085"),
    )
    LivePosition.objects.create(
        account=account,
        ticket=77,
        symbol="EURUSD",
        canonical_symbol="EURUSD",
        side="buy",
        volume=Decimal("0.50"),
        price_open=Decimal("1.085"),
        price_current=Decimal("1.086"),
        profit=Decimal("5"),
        opened_at=now,
        opened_at_server_epoch=int(now.timestamp()),
        first_seen_at=now,
        last_seen_at=now,
        bot_trade=trade,
    )
    return ReconciliationEvent.objects.create(
        account=account,
        kind="volume_mismatch",
        fingerprint=f"vol-{account.pk}",
        bot_trade=trade,
        ticket=77,
        symbol="EURUSD",
        first_seen_at=now,
        last_seen_at=now,
    )


def test_the_inspector_lists_only_the_traders_own_events(trader, other_trader):
    mine, theirs = _volume_event(trader), _volume_event(other_trader)
    html = _client(trader).get("/divergences/").content.decode()
    assert f'id="event-{mine.pk}"' in html
    assert f'id="event-{theirs.pk}"' not in html


def test_filters_by_kind(support, trader):
    event = _volume_event(trader)
    client = _client(support)
    assert (
        f'id="event-{event.pk}"'
        in client.get("/divergences/?kind=volume_mismatch&state=active").content.decode()
    )
    assert f'id="event-{event.pk}"' not in client.get("/divergences/?kind=sl_mismatch").content.decode()


def test_an_opened_row_shows_the_bot_trade_beside_the_position_with_the_difference(support, trader):
    event = _volume_event(trader)
    html = (
        _client(support)
        .get(f"/divergences/{event.pk}/?open=1", headers={"HX-Request": "true"})
        .content.decode()
    )
    assert 'class="diff"' in html
    assert "-50.0 %" in html
    assert "still present" in html


def test_resolving_needs_a_note_then_resolves(support, trader):
    event = _volume_event(trader)
    client = _client(support)
    response = client.post(f"/divergences/{event.pk}/resolve/", {"note": " "}, headers={"HX-Request": "true"})
    assert "Say how the divergence was resolved" in response.content.decode()
    assert ReconciliationEvent.objects.get(pk=event.pk).state == EventState.OPEN
    client.post(f"/divergences/{event.pk}/resolve/", {"note": "partial fill"}, headers={"HX-Request": "true"})
    assert ReconciliationEvent.objects.get(pk=event.pk).state == EventState.RESOLVED


def test_a_trader_may_not_acknowledge_and_is_told_why(trader):
    event = _volume_event(trader)
    response = _client(trader).post(f"/divergences/{event.pk}/acknowledge/")
    assert response.status_code == 403
    assert "Only owners and support staff" in response.content.decode()


def test_bulk_acknowledge(support, trader):
    first, second = _volume_event(trader), _volume_event(trader)
    response = _client(support).post("/divergences/acknowledge/", {"events": [first.pk, second.pk]})
    assert response.status_code == 302
    assert set(ReconciliationEvent.objects.values_list("state", flat=True)) == {EventState.ACKNOWLEDGED}


def test_the_tables_re_read_brings_back_the_rows_whose_detail_was_open(support, trader, other_trader):
    """After a socket reconnect the page re-reads its table, naming the open rows (open_detail): they come back
    open, the others closed, and the table's own re-read address does not keep the open rows."""
    opened, closed = _volume_event(trader), _volume_event(other_trader)
    html = (
        _client(support)
        .get(
            f"/divergences/?state=active&open_detail={opened.pk}&open_detail=nonsense", HTTP_HX_REQUEST="true"
        )
        .content.decode()
    )
    assert f'id="event-{opened.pk}-detail"' in html
    assert f'id="note-{opened.pk}"' in html  # the resolution form, where a note was being written
    assert f'id="event-{closed.pk}"' in html
    assert f'id="event-{closed.pk}-detail"' not in html
    assert 'hx-get="/divergences/?state=active"' in html


def test_a_trader_cannot_open_another_traders_row_by_naming_it(trader, other_trader):
    theirs = _volume_event(other_trader)
    html = (
        _client(trader).get(f"/divergences/?open_detail={theirs.pk}", HTTP_HX_REQUEST="true").content.decode()
    )
    assert f"event-{theirs.pk}" not in html
