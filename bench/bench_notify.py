"""Notifications: `.venv/bin/python bench/bench_notify.py [--operators 20] [--messages 300]`.

One command: a throw-away PostgreSQL database (`bench_mt5guard_notify`, dropped at the end), a fake Telegram Bot
API and a webhook receiver on loopback (free ports). Measures
1. what a guard pays for the outbox: `alerts_record` of a trip's two alerts with and without the notification
   rows (N operators + the trader, each with e-mail and Telegram, and one webhook), median over rounds;
2. deliveries per second through the real delivery service to the fake Telegram API (many chats: the 30/s total
   limit applies), to a webhook receiver, and to Django's locmem e-mail backend, in this one process.
Uses the test settings' Redis (db 15 unless TEST_REDIS_URL says otherwise, key prefix "bench").
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
os.environ["TEST_DATABASE_NAME"] = "bench_mt5guard_notify"

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test.utils import (  # noqa: E402
    CaptureQueriesContext,
    setup_test_environment,
    teardown_test_environment,
)
from django.utils import timezone  # noqa: E402

settings.CACHES["default"]["KEY_PREFIX"] = "bench"
TOKEN = "999:bench"  # noqa: S105 - the fake API's token


def _people(operators: int):
    from accounts.models import Role
    from accounts.services import trading_account_create, user_create
    from notifications.models import TelegramChat

    trader = user_create(username="bench-trader", password="bench-password-1", role=Role.TRADER)  # noqa: S106
    users = [trader] + [
        user_create(username=f"bench-op{i}", password="bench-password-1", role=Role.SUPPORT)  # noqa: S106
        for i in range(operators)
    ]
    for user in users:
        user.email = f"{user.username}@example.test"
        user.save(update_fields=["email"])
        TelegramChat.objects.create(user=user, chat_id=10_000 + user.pk)
    return trading_account_create(owner=trader, login=9_100_001, server="Bench-Notify")


def _trip_alerts(account, n: int):
    from guards.services.alerts import alert_build

    now = timezone.now()
    return [
        alert_build(account_id=account.pk, kind="guard_level", guard="drawdown", level="critical",
                    message=f"bench {n}", now=now, detail={"from": "warning", "to": "critical"}),
        alert_build(account_id=account.pk, kind="liquidation_scheduled", guard="drawdown", level="critical",
                    message=f"bench {n}", now=now, detail={"at": now.isoformat(), "trip_id": str(n)}),
    ]  # fmt: skip


def _outbox_cost(account, rounds: int) -> tuple[float, float, int, int, int]:
    from unittest import mock

    from guards.services import alerts as alerts_module
    from notifications.models import Notification

    queries: list[int] = []

    def timed(n: int) -> float:
        with transaction.atomic(), CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            alerts_module.alerts_record(alerts=_trip_alerts(account, n))
            elapsed = (time.perf_counter() - started) * 1000
        queries.append(len(captured))
        return elapsed

    with_rows = [timed(n) for n in range(rounds)]
    with_queries = queries[-1]
    rows = Notification.objects.count() // rounds
    with mock.patch.object(alerts_module, "alerts_may_notify", return_value=False):
        without = [timed(rounds + n) for n in range(rounds)]
    return statistics.median(without), statistics.median(with_rows), rows, queries[-1], with_queries


def _deliver(channel: str) -> tuple[int, float]:
    from notifications.models import Notification
    from notifications.services import notification_deliver

    ids = list(Notification.objects.filter(channel=channel, state="pending").values_list("pk", flat=True))
    started = time.perf_counter()
    outcomes = []
    pending = list(ids)
    while pending:  # throttled rows come round again, as the worker's re-queue would
        retry = []
        for pk in pending:
            result = notification_deliver(notification_id=pk)
            if result.outcome == "throttled":
                retry.append(pk)
            else:
                outcomes.append(result.outcome)
        if retry:
            time.sleep(0.05)
        pending = retry
    elapsed = time.perf_counter() - started
    assert outcomes == ["sent"] * len(ids), set(outcomes)
    return len(ids), elapsed


def _run(*, operators: int, messages: int, rounds: int) -> list[tuple[str, str]]:
    from accounts.models import User
    from notifications.events import Audience, Event
    from notifications.models import EventKind, Severity
    from notifications.services import notification_events_record, webhook_endpoint_create
    from notifications.tests.fakes import FakeTelegram, WebhookReceiver

    account = _people(operators)
    owner = User.objects.create_superuser("bench-owner", "owner@example.test", "bench-password-1")
    created = webhook_endpoint_create(
        actor=owner, name="bench", url="http://127.0.0.1:9/", min_severity="info"
    )
    telegram, receiver = FakeTelegram(token=TOKEN), WebhookReceiver(secret=created.secret)
    telegram.start()
    receiver.start()
    created.endpoint.url = receiver.base_url
    created.endpoint.save(update_fields=["url"])
    settings.TELEGRAM_BOT_TOKEN, settings.TELEGRAM_API_BASE_URL = TOKEN, telegram.base_url
    try:
        without, with_rows, rows, q_without, q_with = _outbox_cost(account, rounds)
        from notifications.models import Notification

        Notification.objects.all().delete()
        events = max(1, messages // max(1, operators))  # a risk change reaches each support user's chat
        notification_events_record(
            events=[
                Event(key=f"bench:{i}", kind=EventKind.RISK_CONFIG_CHANGED, severity=Severity.CRITICAL,
                      occurred_at=timezone.now(), audience=Audience.OPERATORS,
                      payload={"version": i, "changed_by": "bench", "reason": "bench", "changes": {}})
                for i in range(events)
            ]
        )  # fmt: skip
        results = [
            ("telegram", _deliver("telegram")),
            ("webhook", _deliver("webhook")),
            ("email", _deliver("email")),
        ]
    finally:
        telegram.stop()
        receiver.stop()
    table = [
        (
            "outbox: alerts_record of a trip (2 alerts), notifications off",
            f"{without:.2f} ms, {q_without} queries",
        ),
        (f"outbox: same, notifications on ({rows} rows)", f"{with_rows:.2f} ms, {q_with} queries"),
    ]
    for channel, (count, elapsed) in results:
        table.append((f"deliver {count} {channel} messages", f"{count / elapsed:.0f}/s ({elapsed:.2f} s)"))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--operators", type=int, default=20, help="support users besides the trader (default 20)"
    )
    parser.add_argument(
        "--messages", type=int, default=300, help="about this many Telegram messages (default 300)"
    )
    parser.add_argument("--rounds", type=int, default=30, help="outbox timing rounds (default 30)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        rows = _run(operators=args.operators, messages=args.messages, rounds=args.rounds)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        teardown_test_environment()
    width = max(len(name) for name, _ in rows)
    print(f"{'measure'.ljust(width)}  result")
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")


if __name__ == "__main__":
    main()
