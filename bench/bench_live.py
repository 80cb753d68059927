"""Live pages: `.venv/bin/python bench/bench_live.py [--accounts 1000] [--clients 500] [--pushes 20]`.

One command: a throw-away PostgreSQL database (`bench_live_mt5guard`, or BENCH_DATABASE_NAME; dropped at the end), N accounts with what an
overview row shows (snapshot, guard state, health, last sync, a divergence on every third), then

1. the overview at N accounts rendered through the test client (the full page: summary, filters, 50 rows sorted by
   headroom over all N, the banner), with its query count;
2. a daphne server (the project's ASGI application, Redis channel layer) in a forked process, C websocket clients
   logged in as support staff on the overview (`/ws/pages/?view=overview`), and P "syncs": each commits a new
   snapshot of one account and broadcasts `sync.completed` after commit, as the sync does. The latency is from the
   commit to the pushed row (`<tr id="overview-account-...">`) arriving at each client.

The clients run in this process (one asyncio loop), so their own scheduling is included in the latency: on the
2-core machine the server, Redis, PostgreSQL and the clients share the CPUs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from decimal import Decimal
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
os.environ["TEST_DATABASE_NAME"] = os.environ.get("BENCH_DATABASE_NAME", "bench_live_mt5guard")
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment, teardown_test_environment  # noqa: E402

settings.CACHES["default"]["KEY_PREFIX"] = "bench-live"
settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = "bench-live:asgi"


def _fleet(size: int) -> list[int]:
    from django.utils import timezone

    from accounts.models import AccountHealth, AccountSnapshot, Role, TradingAccount
    from accounts.services import user_create
    from guards.models import GuardState
    from reconciliation.models import AccountSync, ReconciliationEvent

    now = timezone.now()
    owner = user_create(username="bench-trader", password="bench-password-1", role=Role.TRADER)  # noqa: S106
    accounts = TradingAccount.objects.bulk_create(
        TradingAccount(owner=owner, login=9_000_000 + i, server="Bench-Sim") for i in range(size)
    )
    snapshots = AccountSnapshot.objects.bulk_create(
        AccountSnapshot(
            account=a,
            balance=Decimal("10000"),
            equity=Decimal("10000") - i % 900,
            margin_free=Decimal("9000"),
            currency="USD",
            taken_at=now,
            server_time=now,
        )
        for i, a in enumerate(accounts)
    )
    for account, snapshot in zip(accounts, snapshots, strict=True):
        account.latest_snapshot = snapshot
    TradingAccount.objects.bulk_update(accounts, ["latest_snapshot"], batch_size=500)
    GuardState.objects.bulk_create(
        GuardState(
            account=a,
            peak_equity=Decimal("10000"),
            day_anchor=Decimal("10000"),
            drawdown_percent=Decimal(i % 900) / 100,
            daily_loss_percent=Decimal(i % 900) / 100,
        )
        for i, a in enumerate(accounts)
    )
    AccountHealth.objects.bulk_create(
        AccountHealth(account=a, connected=True, probe_latency_ms=Decimal("1"), checked_at=now)
        for a in accounts
    )
    AccountSync.objects.bulk_create(
        AccountSync(account=a, started_at=now, finished_at=now, ok=True) for a in accounts
    )
    ReconciliationEvent.objects.bulk_create(
        ReconciliationEvent(
            account=a,
            kind="unmatched_position",
            fingerprint=f"b{a.pk}",
            ticket=1,
            first_seen_at=now,
            last_seen_at=now,
        )
        for a in accounts[::3]
    )
    return [a.pk for a in accounts]


def _overview_render(client: Client, repeats: int = 7) -> tuple[list[float], int]:
    timings, queries = [], 0
    for _ in range(repeats):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get("/")
            timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
        queries = len(captured.captured_queries)
    return timings, queries


def _commit_sync(account_id: int) -> float:
    """A new snapshot of one account committed, `sync.completed` broadcast after commit; returns the commit time."""
    from django.utils import timezone

    from accounts.models import AccountSnapshot, TradingAccount
    from core.realtime import STAFF_GROUP, account_group, broadcast

    committed: list[float] = []
    with transaction.atomic():
        now = timezone.now()
        snapshot = AccountSnapshot.objects.create(
            account_id=account_id,
            balance=Decimal("10000"),
            equity=Decimal("9876.54"),
            margin_free=Decimal("9000"),
            currency="USD",
            taken_at=now,
            server_time=now,
        )
        TradingAccount.objects.filter(pk=account_id).update(latest_snapshot=snapshot)
        transaction.on_commit(lambda: committed.append(time.perf_counter()))
        broadcast(account_group(account_id), "sync.completed", account_id=account_id)
        broadcast(STAFF_GROUP, "sync.completed", account_id=account_id)
    return committed[0]


async def _clients(
    url: str, cookie: str, origin: str, count: int, account_ids: list[int], pushes: int
) -> list[float]:
    import websockets

    arrivals: dict[tuple[int, int], float] = {}
    summaries = [0]
    frames = [0]
    sockets = []
    for index in range(count):
        ws = await websockets.connect(
            url, additional_headers={"Cookie": cookie, "Origin": origin}, open_timeout=60, ping_interval=None
        )
        sockets.append(ws)
        if index % 100 == 99:
            await asyncio.sleep(0.2)

    async def listen(index: int, ws) -> None:  # type: ignore[no-untyped-def]
        async for message in ws:
            frames[0] += 1
            if 'id="fleet-summary"' in message:
                summaries[0] += 1  # alone, or in a row's frame (then the row counts below too)
            for account_id in account_ids:
                if f'id="overview-account-{account_id}"' in message:
                    arrivals.setdefault((index, account_id), time.perf_counter())

    listeners = [asyncio.create_task(listen(i, ws)) for i, ws in enumerate(sockets)]
    await asyncio.sleep(1.0)
    latencies: list[float] = []
    loop = asyncio.get_running_loop()
    PHASE.update(
        wall=time.perf_counter(), server=_cpu_seconds(SERVER_PID[0]), bench=_cpu_seconds(os.getpid())
    )
    for push in range(pushes):
        account_id = account_ids[push]
        committed = await loop.run_in_executor(None, _commit_sync, account_id)
        deadline = time.perf_counter() + 10
        while time.perf_counter() < deadline and sum(1 for (i, a) in arrivals if a == account_id) < count:
            await asyncio.sleep(0.01)
        got = [at - committed for (i, a), at in arrivals.items() if a == account_id]
        missing = count - len(got)
        if missing:
            print(f"  push {push}: {missing} client(s) got nothing within 10 s")
        latencies.extend(got)
        await asyncio.sleep(0.3)
    PHASE.update(
        wall=time.perf_counter() - PHASE["wall"],
        server=_cpu_seconds(SERVER_PID[0]) - PHASE["server"],
        bench=_cpu_seconds(os.getpid()) - PHASE["bench"],
    )
    for task in listeners:
        task.cancel()
    for ws in sockets:
        await ws.close()
    SUMMARY_FRAMES.append(summaries[0])
    ALL_FRAMES.append(frames[0])
    return latencies


SUMMARY_FRAMES: list[int] = []
ALL_FRAMES: list[int] = []
SERVER_PID: list[int] = []


def _profile_server(path: str) -> None:
    """In the forked server: profile its main thread (the event loop: websocket frames, the channel layer, the
    consumers) until it is terminated, then write the stats to `path` (`python -m pstats path`)."""
    import cProfile
    import signal

    profiler = cProfile.Profile()

    def stop(signum: int, frame: object) -> None:
        profiler.disable()
        profiler.dump_stats(path)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    profiler.enable()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


PHASE: dict[str, float] = {}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--pushes", type=int, default=20)
    parser.add_argument(
        "--summary-seconds", type=float, default=None,
        help="LIVE_SUMMARY_SECONDS of the server (the fleet summary's push period; large = no summary pushes)",
    )  # fmt: skip
    parser.add_argument("--profile", default=None, help="write a cProfile of the server's main thread here")
    parser.add_argument(
        "--layer", default=None, help="channel layer backend for the server (default: the settings')"
    )
    args = parser.parse_args()
    if args.layer:
        settings.CHANNEL_LAYERS["default"]["BACKEND"] = args.layer
    if args.summary_seconds is not None:
        settings.LIVE_SUMMARY_SECONDS = args.summary_seconds

    from channels.testing.live import make_application
    from daphne.testing import DaphneProcess
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
    from django.db import connections

    from accounts.models import Role
    from accounts.services import user_create

    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    server = None
    try:
        account_ids = _fleet(args.accounts)
        support = user_create(username="bench-support", password="bench-password-2", role=Role.SUPPORT)  # noqa: S106
        client = Client()
        client.force_login(support)
        render_ms, queries = _overview_render(client)

        connections.close_all()
        server = DaphneProcess(
            "127.0.0.1",
            partial(make_application, static_wrapper=ASGIStaticFilesHandler),
            setup=partial(_profile_server, args.profile) if args.profile else None,
        )
        server.daemon = True
        server.start()
        if not server.ready.wait(timeout=30):
            raise RuntimeError("daphne did not start")
        port = server.port.value
        SERVER_PID.append(server.pid)
        cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
        latencies = asyncio.run(
            _clients(
                f"ws://127.0.0.1:{port}/ws/pages/?view=overview",
                cookie,
                f"http://127.0.0.1:{port}",
                args.clients,
                account_ids[: args.pushes],
                args.pushes,
            )
        )
        ms = [x * 1000 for x in latencies]
        print()
        print(f"accounts: {args.accounts}, websocket clients: {args.clients}, pushes: {args.pushes}")
        print(f"{'measure':<44} {'p50':>9} {'p95':>9} {'max':>9}")
        print(
            f"{'overview render, full page (ms)':<44} {statistics.median(render_ms):>9.1f} "
            f"{_pct(render_ms, 0.95):>9.1f} {max(render_ms):>9.1f}   ({queries} queries)"
        )
        if ms:
            print(
                f"{'commit -> pushed row at each client (ms)':<44} {statistics.median(ms):>9.1f} "
                f"{_pct(ms, 0.95):>9.1f} {max(ms):>9.1f}   ({len(ms)} deliveries)"
            )
        if PHASE:
            print(
                f"CPU during the pushes ({PHASE['wall']:.1f} s of wall time): server {PHASE['server']:.2f} s "
                f"({PHASE['server'] * 1000 / args.pushes:.0f} ms per push), clients + commits {PHASE['bench']:.2f} s "
                f"({PHASE['bench'] * 1000 / args.pushes:.0f} ms per push)"
            )
        frames = SUMMARY_FRAMES[0] if SUMMARY_FRAMES else 0
        print(
            f"frames carrying the fleet summary: {frames} ({frames / max(args.clients, 1):.1f} per client; "
            f"LIVE_SUMMARY_SECONDS={settings.LIVE_SUMMARY_SECONDS})"
        )
        every = ALL_FRAMES[0] if ALL_FRAMES else 0
        print(f"frames received in all: {every} ({every / max(args.clients, 1):.1f} per client)")
        print(f"channel layer: {settings.CHANNEL_LAYERS['default']['BACKEND']}")
        print(f"load average (1, 5, 15 min) at the end: {os.getloadavg()}")
    finally:
        if server is not None:
            server.terminate()
            server.join(timeout=10)
        connections.close_all()
        for _attempt in range(10):  # the server's connections go away a moment after it is terminated
            try:
                connection.creation.destroy_test_db(old_name, verbosity=0)
                break
            except Exception:
                time.sleep(1)
        teardown_test_environment()


if __name__ == "__main__":
    main()
