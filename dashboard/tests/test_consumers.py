"""The pages' live socket: who may connect, what each user hears, and access lost while connected."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from accounts.services import trading_account_create
from core.realtime import STAFF_GROUP, account_group
from dashboard.consumers import user_group
from dashboard.routing import websocket_urlpatterns

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

app = URLRouter(websocket_urlpatterns)


@pytest.fixture(autouse=True)
def fresh_channel_layer():
    """Each test runs its own event loop; the channel layer keeps per-loop receive state (locks, buffers), which
    daphne's one loop never outgrows but a closed test loop would leave behind for the next test."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


async def _connect(user, path="/ws/pages/?view=overview", application=app, headers=None):
    communicator = WebsocketCommunicator(application, path, headers=headers or [])
    communicator.scope["user"] = user
    connected, code = await communicator.connect()
    return communicator, connected, code


async def _account(owner, login):
    return await sync_to_async(trading_account_create)(owner=owner, login=login, server="S")


async def test_anonymous_users_are_refused():
    _c, connected, code = await _connect(AnonymousUser())
    assert not connected
    assert code == 4401


async def test_a_foreign_origin_is_refused(support):
    guarded = AllowedHostsOriginValidator(app)
    _c, connected, _code = await _connect(
        support, application=guarded, headers=[(b"origin", b"https://evil.example")]
    )
    assert not connected


async def test_a_trader_may_not_open_another_traders_account_page(trader, other_trader):
    theirs = await _account(other_trader, 21)
    _c, connected, code = await _connect(trader, f"/ws/pages/?view=account&account={theirs.pk}")
    assert not connected
    assert code == 4403


async def test_overview_receives_the_row_of_a_synced_account_as_html(settings, trader, other_trader):
    settings.LIVE_SUMMARY_SECONDS = 60  # the summary that follows is another test's
    mine = await _account(trader, 31)
    theirs = await _account(other_trader, 32)
    communicator, connected, _ = await _connect(trader)
    assert connected
    layer = get_channel_layer()
    for account in (theirs, mine):
        await layer.group_send(
            account_group(account.pk),
            {
                "type": "sync_completed",
                "event": "sync.completed",
                "uid": f"u{account.pk}",
                "account_id": account.pk,
            },
        )
    html = await communicator.receive_from(timeout=5)
    assert f'id="overview-account-{mine.pk}"' in html
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


async def test_an_unknown_event_is_ignored_and_the_socket_stays_open(support):
    communicator, connected, _ = await _connect(support)
    assert connected
    await get_channel_layer().group_send(
        STAFF_GROUP, {"type": "brand_new", "event": "brand.new", "account_id": 1}
    )
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


async def test_logging_out_closes_the_users_sockets(support):
    communicator, connected, _ = await _connect(support)
    assert connected
    await get_channel_layer().group_send(
        user_group(support.pk), {"type": "session_ended", "event": "session.ended", "user_id": support.pk}
    )
    output = await communicator.receive_output(timeout=3)
    assert output == {"type": "websocket.close", "code": 4401}


async def test_a_trader_who_loses_an_account_stops_receiving_it(settings, trader, other_trader):
    settings.LIVE_ACCESS_RECHECK_SECONDS = 0.2
    mine = await _account(trader, 41)
    communicator, connected, _ = await _connect(trader)
    assert connected
    mine.owner = other_trader
    await sync_to_async(mine.save)(update_fields=["owner"])
    await communicator.receive_nothing(timeout=0.8)  # a re-check passes
    await get_channel_layer().group_send(
        account_group(mine.pk),
        {"type": "sync_completed", "event": "sync.completed", "uid": "lost", "account_id": mine.pk},
    )
    assert await communicator.receive_nothing(timeout=0.5)
    await communicator.disconnect()


def forget_groups() -> None:
    import redis
    from django.conf import settings as django_settings

    client = redis.Redis.from_url(django_settings.TEST_REDIS_URL)
    keys = list(client.scan_iter(match="*group:*"))
    assert keys, "the socket's groups should be in Redis"
    client.delete(*keys)


async def test_a_socket_whose_group_membership_the_channel_layer_lost_hears_again_after_a_recheck(
    settings, support
):
    """Redis restarted empty (or the layer's group expiry passed) while the socket stayed open: the re-check adds
    every group again, so pushes to the open page resume instead of stopping silently."""
    settings.LIVE_ACCESS_RECHECK_SECONDS = 0.2
    account = await _account(support, 42)
    communicator, connected, _ = await _connect(support)
    assert connected
    layer = get_channel_layer()
    forget_groups()  # what a Redis restart does: every group forgotten, the socket still open
    await communicator.receive_nothing(timeout=0.8)  # a re-check passes
    await layer.group_send(
        STAFF_GROUP,
        {"type": "sync_completed", "event": "sync.completed", "uid": "after-flush", "account_id": account.pk},
    )
    frames = await _received_within(communicator, 1.0)
    assert any(f'id="overview-account-{account.pk}"' in frame for frame in frames)
    await communicator.disconnect()


async def _received_within(communicator, seconds: float) -> list[str]:
    """Every frame until the socket has been quiet for `seconds` (receive_from's timeout would end the app)."""
    frames = []
    while not await communicator.receive_nothing(timeout=seconds):
        frames.append(await communicator.receive_from())
    return frames


async def test_the_fleet_summary_rides_with_a_row_at_most_once_per_period(
    settings, support, trader, monkeypatch
):
    """The summary goes in a row's own frame (one frame per socket, not two), at most once per period; a change
    too soon after the last summary leaves it owed, and the next row that may carries it."""
    import time

    from dashboard import live

    period = settings.LIVE_SUMMARY_SECONDS = 0.5
    summaries_rendered = []
    render_summary = live.render_fleet_summary

    def counted(**kwargs):
        summaries_rendered.append(kwargs)
        return render_summary(**kwargs)

    monkeypatch.setattr(live, "render_fleet_summary", counted)
    first = await _account(trader, 61)
    sockets = [(await _connect(support))[0] for _ in range(2)]  # two open overviews of the same audience
    layer = get_channel_layer()

    async def sync(uid):
        await layer.group_send(
            STAFF_GROUP,
            {"type": "sync_completed", "event": "sync.completed", "uid": uid, "account_id": first.pk},
        )

    await asyncio.sleep(period - time.time() % period + 0.02)  # just after a period starts
    await sync("s0")  # carries the summary
    await asyncio.sleep(0.1)
    await sync("s1")  # too soon: owed
    await asyncio.sleep(period)
    await sync("s2")  # carries the owed summary
    for communicator in sockets:
        frames = await _received_within(communicator, 2.0)
        assert len(frames) == 3  # three rows, no frame of its own for a summary
        assert all(f'id="overview-account-{first.pk}"' in f for f in frames)
        assert ['id="fleet-summary"' in f for f in frames] == [True, False, True]
        assert frames[0].index("overview-account-") < frames[0].index('id="fleet-summary"')  # row first
        assert 'Accounts</span><span class="value num">1<' in frames[2]
    assert len(summaries_rendered) == 2  # each rendered once for both sockets
    for communicator in sockets:
        await communicator.disconnect()


async def test_an_owed_fleet_summary_no_row_carries_goes_alone_after_the_next_period(
    settings, support, trader
):
    import time

    period = settings.LIVE_SUMMARY_SECONDS = 0.5
    first = await _account(trader, 63)
    sockets = [(await _connect(support))[0] for _ in range(2)]
    layer = get_channel_layer()
    await asyncio.sleep(period - time.time() % period + 0.02)
    for n in range(3):  # three syncs inside one period: the first row carries it, the others leave it owed
        await layer.group_send(
            STAFF_GROUP,
            {"type": "sync_completed", "event": "sync.completed", "uid": f"o{n}", "account_id": first.pk},
        )
    for communicator in sockets:
        frames = await _received_within(communicator, 2.0)
        rows = [f for f in frames if f'id="overview-account-{first.pk}"' in f]
        alone = [f for f in frames if 'id="fleet-summary"' in f and f not in rows]
        assert len(rows) == 3
        assert 'id="fleet-summary"' in rows[0]
        assert len(alone) == 1  # the owed one, once

    second = await _account(trader, 62)  # the fleet grew: the next sync's summary says so
    await layer.group_send(
        STAFF_GROUP,
        {"type": "sync_completed", "event": "sync.completed", "uid": "s9", "account_id": second.pk},
    )
    summaries = [f for f in await _received_within(sockets[0], 1.0) if 'id="fleet-summary"' in f]
    assert len(summaries) == 1
    assert 'Accounts</span><span class="value num">2<' in summaries[0]
    for communicator in sockets:
        await communicator.disconnect()


async def test_a_trader_hears_the_summary_of_their_own_accounts_only(settings, trader, other_trader):
    settings.LIVE_SUMMARY_SECONDS = 0.2
    mine = await _account(trader, 71)
    await _account(other_trader, 72)
    communicator, connected, _ = await _connect(trader)
    assert connected
    await get_channel_layer().group_send(
        account_group(mine.pk),
        {"type": "sync_completed", "event": "sync.completed", "uid": "t1", "account_id": mine.pk},
    )
    summaries = [f for f in await _received_within(communicator, 1.0) if 'id="fleet-summary"' in f]
    assert len(summaries) == 1
    assert 'Accounts</span><span class="value num">1<' in summaries[0]
    await communicator.disconnect()


async def test_a_broadcast_costs_no_sync_thread_hop_per_socket(settings, support, trader, monkeypatch):
    """Channels' own dispatch closes old database connections through the sync thread before every message of
    every socket (500 open pages: 500 serialized hops per broadcast); this consumer's does not."""
    import channels.consumer

    settings.LIVE_SUMMARY_SECONDS = 60
    hops = []

    async def counted():
        hops.append(1)

    monkeypatch.setattr(channels.consumer, "aclose_old_connections", counted)
    account = await _account(trader, 81)
    sockets = [(await _connect(support))[0] for _ in range(3)]
    await get_channel_layer().group_send(
        STAFF_GROUP,
        {"type": "sync_completed", "event": "sync.completed", "uid": "h1", "account_id": account.pk},
    )
    for communicator in sockets:
        assert f'id="overview-account-{account.pk}"' in await communicator.receive_from(timeout=5)
        await communicator.disconnect()
    assert hops == []


def _staff_group_members() -> int:
    import redis
    from django.conf import settings as django_settings

    client = redis.Redis.from_url(django_settings.TEST_REDIS_URL)
    return sum(client.zcard(key) for key in client.scan_iter(match=f"*group:{STAFF_GROUP}"))


async def test_open_pages_of_one_process_share_one_channel_layer_membership(settings, support, trader):
    """500 open overviews must not cost 500 deliveries inside the channel layer per broadcast: a process joins a
    group once (dashboard.relay) and hands each message to its sockets, which still each get their row."""
    settings.LIVE_SUMMARY_SECONDS = 60
    account = await _account(trader, 91)
    sockets = [(await _connect(support))[0] for _ in range(3)]
    assert await sync_to_async(_staff_group_members)() == 1
    await get_channel_layer().group_send(
        STAFF_GROUP,
        {"type": "sync_completed", "event": "sync.completed", "uid": "r1", "account_id": account.pk},
    )
    for communicator in sockets:
        assert f'id="overview-account-{account.pk}"' in await communicator.receive_from(timeout=5)
    for communicator in sockets[:2]:
        await communicator.disconnect()
    assert await sync_to_async(_staff_group_members)() == 1  # the last open page still hears
    await get_channel_layer().group_send(
        STAFF_GROUP,
        {"type": "sync_completed", "event": "sync.completed", "uid": "r2", "account_id": account.pk},
    )
    assert f'id="overview-account-{account.pk}"' in await sockets[2].receive_from(timeout=5)
    await sockets[2].disconnect()
    assert await sync_to_async(_staff_group_members)() == 0  # nobody left: the process left the group


async def test_one_page_failing_does_not_stop_the_others(settings, support, trader, monkeypatch):
    from dashboard.consumers import LivePagesConsumer

    settings.LIVE_SUMMARY_SECONDS = 60
    account = await _account(trader, 92)
    first, second = (await _connect(support))[0], (await _connect(support))[0]
    original = LivePagesConsumer.sync_completed
    failed = []

    async def first_one_fails(self, message):
        if not failed:
            failed.append(self)
            raise RuntimeError("this page's handler broke")
        await original(self, message)

    monkeypatch.setattr(LivePagesConsumer, "sync_completed", first_one_fails)
    await get_channel_layer().group_send(
        STAFF_GROUP,
        {"type": "sync_completed", "event": "sync.completed", "uid": "f1", "account_id": account.pk},
    )
    assert f'id="overview-account-{account.pk}"' in await second.receive_from(timeout=5)
    assert await first.receive_nothing(timeout=0.3)
    await get_channel_layer().group_send(  # and the broken page's relay keeps delivering afterwards
        STAFF_GROUP,
        {"type": "sync_completed", "event": "sync.completed", "uid": "f2", "account_id": account.pk},
    )
    assert f'id="overview-account-{account.pk}"' in await first.receive_from(timeout=5)
    for communicator in (first, second):
        await communicator.disconnect()


async def test_an_overview_hears_only_the_rows_it_shows_once_it_has_said_which(settings, support, trader):
    """A page shows 50 of perhaps 1 000 accounts: once it names its rows, the other accounts' syncs push no row to
    it (the fleet summary still follows them). Anything else it sends is ignored and changes nothing."""
    settings.LIVE_SUMMARY_SECONDS = 60
    shown, other = await _account(trader, 93), await _account(trader, 94)
    communicator, connected, _ = await _connect(support)
    assert connected
    layer = get_channel_layer()

    async def sync(account, uid):
        await layer.group_send(
            STAFF_GROUP,
            {"type": "sync_completed", "event": "sync.completed", "uid": uid, "account_id": account.pk},
        )

    for junk in ("not json", '{"rows": "1,2"}', '{"rows": [1, "x"]}', '["rows"]', '{"rows": [true]}'):
        await communicator.send_to(text_data=junk)
    await sync(other, "f1")
    assert f'id="overview-account-{other.pk}"' in await communicator.receive_from(
        timeout=5
    )  # still every row

    await communicator.send_to(text_data=f'{{"rows": [{shown.pk}]}}')
    await sync(other, "f2")
    await sync(shown, "f3")
    frames = await _received_within(communicator, 1.0)
    assert not any(f'id="overview-account-{other.pk}"' in f for f in frames)
    assert any(f'id="overview-account-{shown.pk}"' in f for f in frames)

    await communicator.send_to(text_data='{"rows": []}')  # a filter that matches nothing: an empty table
    await sync(shown, "f4")
    assert not any("overview-account-" in f for f in await _received_within(communicator, 0.5))
    await communicator.disconnect()
