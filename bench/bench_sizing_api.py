"""Sizing requests per second through the DRF API: `.venv/bin/python bench/bench_sizing_api.py [--requests N]`.

One command: creates a throw-away PostgreSQL database (`bench_mt5guard_risk`, dropped at the end), installs the
demo data of `make run` (the demo users, their three accounts, here on the in-process simulated terminal rather
than the bridge, a fresh snapshot each read from that terminal) and a bot API user with `risk.size_any_account`,
then posts sizing requests with DRF's APIClient (the whole stack: URL routing, authentication, serializers, the
service, the terminal calls symbol_info + order_calc_margin, the risk-log insert, the JSON response). Single
process, single thread: the figures are per web worker. Uses the test settings' Redis (db 15) for the shared cache.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
os.environ["TEST_DATABASE_NAME"] = "bench_mt5guard_risk"

import django

django.setup()

from django.contrib.auth.models import Permission  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import setup_test_environment, teardown_test_environment  # noqa: E402
from django.urls import reverse  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

DEMO_SERVER = "SimBroker-Demo"


def _demo_data() -> dict[str, Any]:
    from accounts.models import Role, TradingAccount, User
    from accounts.selectors import trading_account_gateway
    from accounts.services import account_snapshot_record, trading_account_create, user_create
    from pipeline.management.commands.seed_demo_users import DEMO_ACCOUNTS, DEMO_USERS
    from risk.selectors import risk_config_invalidate_cache

    risk_config_invalidate_cache()
    users: dict[str, User] = {
        username: user_create(username=username, password=password, role=role)
        for username, role, password in DEMO_USERS
    }
    bot = user_create(username="bot", password="bot-bench-password", role=Role.TRADER)  # noqa: S106
    bot.user_permissions.add(Permission.objects.get(codename="size_any_account"))
    users["bot"] = User.objects.get(pk=bot.pk)
    accounts: list[TradingAccount] = []
    for username, login, label, _balance in DEMO_ACCOUNTS:
        account = trading_account_create(
            owner=users[username], login=login, server=DEMO_SERVER, label=label, password=f"demo-mt5-{login}"
        )
        gateway = trading_account_gateway(account=account)
        account_snapshot_record(account=account, state=gateway.account())
        accounts.append(account)
    stale = trading_account_create(owner=users["trader"], login=7_100_009, server=DEMO_SERVER, label="Stale")
    return {"users": users, "accounts": accounts, "stale": stale}


def _scenarios(data: dict[str, Any]) -> dict[str, tuple[str, Callable[[APIClient], Any], int]]:
    """name -> (who asks, the request, the expected status)."""
    accounts = data["accounts"]
    alice_fx = accounts[0]
    setup = {"symbol": "EURUSD", "side": "buy", "entries": ["1.0850", "1.0840", "1.0830"], "sl": "1.0800"}
    sell = {"symbol": "EURUSD", "side": "sell", "entries": ["1.0850"], "sl": "1.0900"}

    def size(account_id: int, body: dict[str, Any]) -> Callable[[APIClient], Any]:
        url = reverse("risk-api:trade-setup-size", kwargs={"account_id": account_id})
        return lambda client: client.post(url, body, format="json")

    config_url = reverse("risk-api:config")
    return {
        "trader, own account, 3 entries": ("trader", size(alice_fx.pk, setup), 200),
        "trader, own account, 1 entry (sell)": ("trader", size(alice_fx.pk, sell), 200),
        "bot, any account, 3 entries": ("bot", size(accounts[2].pk, setup), 200),
        "stale account (no terminal call)": ("trader", size(data["stale"].pk, setup), 200),
        "stop on the wrong side (400)": ("trader", size(alice_fx.pk, setup | {"sl": "1.0900"}), 400),
        "text where a number belongs (400)": ("trader", size(alice_fx.pk, setup | {"sl": "low"}), 400),
        "GET config (shared cache)": ("trader", lambda client: client.get(config_url), 200),
    }


def _run(*, requests: int, rounds: int, warmup: int) -> list[tuple[str, int, float, float, float]]:
    """Each scenario `rounds` times (interleaved, so a noisy neighbour hits every row alike); the rate is the median
    round's, the latencies are over every request."""
    data = _demo_data()
    scenarios = _scenarios(data)
    clients = {}
    for name, (username, call, status) in scenarios.items():
        clients[name] = APIClient()
        clients[name].force_authenticate(data["users"][username])
        for _ in range(warmup):
            assert call(clients[name]).status_code == status, name
    rates: dict[str, list[float]] = {name: [] for name in scenarios}
    durations: dict[str, list[float]] = {name: [] for name in scenarios}
    for _ in range(rounds):
        for name, (_username, call, status) in scenarios.items():
            client = clients[name]
            started = time.perf_counter()
            for _ in range(requests):
                t0 = time.perf_counter()
                response = call(client)
                durations[name].append(time.perf_counter() - t0)
                assert response.status_code == status, (name, response.status_code, response.content[:300])
            rates[name].append(requests / (time.perf_counter() - started))
    rows = []
    for name in scenarios:
        samples = sorted(durations[name])
        p95 = samples[int(len(samples) * 0.95) - 1]
        rows.append(
            (
                name,
                len(samples),
                statistics.median(rates[name]),
                statistics.median(samples) * 1000,
                p95 * 1000,
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--requests", type=int, default=300, help="requests per scenario and round (default 300)"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()

    logging.disable(logging.WARNING)  # the 400 scenarios would log a warning per request
    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        rows = _run(requests=args.requests, rounds=args.rounds, warmup=args.warmup)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        teardown_test_environment()

    print(
        f"Sizing API (DRF APIClient, one process, PostgreSQL + Redis): {args.rounds} rounds x {args.requests}"
        " requests per scenario; req/s of the median round, latencies over all requests"
    )
    print(f"{'scenario':<40} {'requests':>8} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8}")
    for name, count, rate, p50, p95 in rows:
        print(f"{name:<40} {count:>8} {rate:>8.0f} {p50:>8.2f} {p95:>8.2f}")


if __name__ == "__main__":
    main()
