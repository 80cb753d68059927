"""Live drill (run by hand, not collected by pytest): the guards on the real stack, with the real clock.

    .venv/bin/python -m guards.tests.live_drill            # needs PostgreSQL and Redis on 127.0.0.1
    DRILL_REDIS_URL=redis://127.0.0.1:6379/9 .venv/bin/python -m guards.tests.live_drill   # another Redis db

What it starts, all of it its own and stopped at the end: a throw-away PostgreSQL database (`guards_drill_<pid>`),
the MT5 bridge serving simulated terminals (another process: the terminals outlive any worker), and Celery workers
(`celery -A config worker`, Redis database 14). The drill process plays the sync beat (account_sync every
SYNC_SECONDS) and the market (sim_* helpers through the bridge).

1. Delay: an account falls to a critical drawdown; measured from the snapshot that confirms critical (the
   `liquidation_scheduled` alert) to the first close order (`close_sent`), through Celery's countdown task.
2. Killed worker: order_send is slowed to 4 s in the terminal; the worker is SIGKILLed while the liquidation's first
   order is in flight; a new worker starts (its start-up recovery runs, and the liquidation message comes back after
   the broker's visibility timeout). Checked: no position left open, one order per ticket (the intents' write-ahead
   counters, and the closing deals in the terminal's history).
3. Market closed through the liquidation moment, opened again 30 s after the liquidation started: every failed
   attempt audited with MARKET_CLOSED 10018, the gaps between attempts (5, 10, 20 s), the time from the opening to
   the confirmed closes, one closing deal per ticket.
4. Bridge restart: the bridge (simulated terminals kept under a state directory, as in `make run`) is killed and
   started again while an account holds positions; the next syncs see the same tickets and money and no guard moves.
"""

import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import closing, suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python")
CELERY = str(ROOT / ".venv" / "bin" / "celery")
SYNC_SECONDS = 2.0
DB = f"guards_drill_{os.getpid()}"
STATE_DIR = tempfile.mkdtemp(prefix="drill-terminals-")


def _free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


PORT = _free_port()
# Its own Redis database (broker + cache): two drills sharing one would take each other's tasks.
REDIS_URL = os.environ.get("DRILL_REDIS_URL", "redis://127.0.0.1:6379/14")
ENV = {
    **os.environ,
    "DJANGO_SETTINGS_MODULE": "config.settings.base",
    "DJANGO_DEBUG": "true",
    "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB}",
    "REDIS_URL": REDIS_URL,
    "CELERY_BROKER_URL": REDIS_URL,
    "CELERY_VISIBILITY_TIMEOUT": "15",
    "MT5_BRIDGE_SECRET": "drill-secret",
    "MT5_BRIDGE_URL": f"http://127.0.0.1:{PORT}",
    "DJANGO_LOG_LEVEL": "WARNING",
    "CACHE_KEY_PREFIX": f"drill{os.getpid()}",
}
os.environ.update(ENV)


def _psql(sql: str) -> None:
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(sql)
    conn.close()


def _start_worker(name: str) -> subprocess.Popen:
    return subprocess.Popen(  # noqa: S603 - our own venv
        [CELERY, "-A", "config", "worker", "-l", "warning", "--concurrency", "2", "-n", f"{name}@%h"],
        cwd=ROOT,
        env=ENV,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _start_bridge() -> subprocess.Popen:
    """The bridge of `make run`: simulated terminals kept under STATE_DIR, so a restart looks like a reconnect."""
    process = subprocess.Popen(  # noqa: S603 - our own venv
        [
            *(
                PYTHON,
                "-m",
                "integrations.mt5.bridge.server",
                "--backend",
                "simulated",
                "--host",
                "127.0.0.1",
            ),
            *("--port", str(PORT), "--secret-env", "MT5_BRIDGE_SECRET", "--log-level", "WARNING"),
            *("--state-dir", STATE_DIR),
        ],
        cwd=ROOT,
        env=ENV,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(ENV["MT5_BRIDGE_URL"], timeout=1):  # noqa: S310 - our bridge
                return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the bridge did not start") from None
            time.sleep(0.2)


def _kill_group(process: subprocess.Popen) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def _market_closed_case(account_for, sync_until) -> dict:  # type: ignore[no-untyped-def]
    """3. The symbol's market closes just before the liquidation and opens again 30 s after it started: every
    attempt in between answers MARKET_CLOSED 10018 and is audited; the first attempt after the opening closes."""
    from guards.models import AlertKind, CloseIntent, GuardAlert, GuardState

    account, sim, gateway = account_for(7103)
    tickets = [sim.sim_open_manual("EURUSD", "buy", "1.0", comment=f"m{i}") for i in range(2)]
    from pipeline.services import account_sync

    account_sync(account=account, gateway=gateway)
    sim.sim_set_price("EURUSD", "1.07400", "1.07410")
    sim.sim_set_market_open("EURUSD", False)
    assert sync_until(
        account,
        gateway,
        lambda: CloseIntent.objects.filter(account=account, state="failed").exists(),
        limit=60,
    ), "liquidation did not start"
    started = GuardAlert.objects.get(account=account, kind=AlertKind.LIQUIDATION_STARTED).created_at
    time.sleep(max(0.0, 30 - (time.time() - started.timestamp())))
    sim.sim_set_market_open("EURUSD", True)
    opened_at = time.time()
    finished = sync_until(
        account,
        gateway,
        lambda: CloseIntent.objects.filter(account=account, state="confirmed").count() == len(tickets),
        limit=120,
    )
    confirmed_at = max(
        a.created_at.timestamp()
        for a in GuardAlert.objects.filter(account=account, kind=AlertKind.CLOSE_CONFIRMED)
    ) if finished else None  # fmt: skip
    failures = list(
        GuardAlert.objects.filter(account=account, kind=AlertKind.CLOSE_FAILED).order_by("created_at")
    )
    per_ticket: dict[int, list[float]] = {}
    for alert in failures:
        per_ticket.setdefault(alert.ticket, []).append(alert.created_at.timestamp())
    gaps = {t: [round(b - a, 2) for a, b in itertools.pairwise(times)] for t, times in per_ticket.items()}
    attempts = list(
        CloseIntent.objects.filter(account=account)
        .order_by("ticket", "attempt")
        .values_list("ticket", "attempt", "state", "last_retcode", "order_sends")
    )
    closing_deals = {
        t: len([d for d in sim.history_deals_get(position=t) or () if d.entry == 1]) for t in tickets
    }
    return {
        "finished": finished,
        "failed_attempts_audited": len(failures),
        "failure_retcodes": sorted({a.detail.get("retcode") for a in failures}),
        "gaps_between_failed_attempts_seconds": gaps,
        "open_to_confirmed_seconds": round(confirmed_at - opened_at, 2) if confirmed_at else None,
        "intents": attempts,
        "positions_left": sim.positions_total(),
        "closing_deals_per_ticket": closing_deals,
        "state": GuardState.objects.get(account=account).status,
        "ok": bool(
            finished
            and sim.positions_total() == 0
            and failures
            and all(a.detail.get("retcode") == 10018 for a in failures)
            and all(n == 1 for n in closing_deals.values())
        ),
    }


def bridge_restart_case(*, account_for, restart_bridge) -> dict:
    """3. Bridge restart during the demo: the bridge process is killed (SIGKILL, no clean save) while an account
    holds positions, and started again on its state directory. Checked: the syncs after the restart succeed and see
    the same tickets and balance, and no guard moves (no alert, no close intent, levels normal)."""
    from accounts.models import TradingAccount
    from guards.models import CloseIntent, GuardAlert, GuardState
    from pipeline.services import account_sync
    from reconciliation.models import LivePosition

    account, sim, gateway = account_for(7104)
    # Not the simulator's default balance: a fresh terminal would look like a big loss.
    sim.sim_deposit("15000")
    tickets = sorted(sim.sim_open_manual("EURUSD", "buy", "0.5", comment=f"r{i}") for i in range(2))
    for _ in range(3):
        account_sync(account=account, gateway=gateway)
        time.sleep(SYNC_SECONDS)
    balance_before = TradingAccount.objects.get(pk=account.pk).latest_snapshot.balance
    alerts_before = GuardAlert.objects.filter(account=account).count()

    restart_bridge()
    syncs_ok = []
    for _ in range(4):
        syncs_ok.append(account_sync(account=account, gateway=gateway).ok)
        time.sleep(SYNC_SECONDS)
    account.refresh_from_db()
    state = GuardState.objects.get(account=account)
    after = {
        "syncs_ok": syncs_ok,
        "tickets_before": tickets,
        "tickets_after": sorted(
            LivePosition.objects.filter(account=account).values_list("ticket", flat=True)
        ),
        "balance_before": balance_before,
        "balance_after": account.latest_snapshot.balance,
        "new_alerts": list(
            GuardAlert.objects.filter(account=account)
            .order_by("pk")[alerts_before:]
            .values_list("kind", flat=True)
        ),
        "close_intents": CloseIntent.objects.filter(account=account).count(),
        "levels": [state.drawdown_level, state.daily_loss_level, state.status],
    }
    after["ok"] = (
        # The first sync may meet the bridge still starting: a failed sync concludes nothing.
        all(after["syncs_ok"][1:])
        and after["tickets_after"] == tickets
        and after["balance_after"] == balance_before
        and not after["new_alerts"]
        and after["close_intents"] == 0
        and after["levels"] == ["normal", "normal", "normal"]
    )
    return after


def main() -> int:
    _psql(f'CREATE DATABASE "{DB}"')
    processes: list[subprocess.Popen] = []
    try:
        subprocess.run([PYTHON, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=ENV, check=True)  # noqa: S603
        bridge = _start_bridge()
        processes.append(bridge)
        worker = _start_worker("drill-a")
        processes.append(worker)

        import django

        sys.path.insert(0, str(ROOT))
        django.setup()
        from decimal import Decimal

        from accounts.models import Role
        from accounts.selectors import trading_account_gateway
        from accounts.services import trading_account_create, user_create
        from guards.models import AlertKind, CloseIntent, GuardAlert, GuardState
        from guards.services import guard_settings_update
        from integrations.mt5.bridge.client import BridgeClient
        from pipeline.services import account_sync

        time.sleep(3)  # bridge and worker up
        trader = user_create(username="drill-trader", password="drill-pass-12345", role=Role.TRADER)
        guard_settings_update(
            actor=None, values={"daily_loss_warning_percent": None, "daily_loss_critical_percent": None}
        )

        def account_for(login: int):
            account = trading_account_create(
                owner=trader, login=login, server="Simulated-Demo", backend="bridge"
            )
            sim = BridgeClient(
                ENV["MT5_BRIDGE_URL"], ENV["MT5_BRIDGE_SECRET"], login=login, server="Simulated-Demo"
            )
            sim.sim_set_price("EURUSD", "1.08500", "1.08510")
            return account, sim, trading_account_gateway(account=account)

        def sync_until(account, gateway, done, limit=120.0):
            started = time.monotonic()
            while time.monotonic() - started < limit:
                account_sync(account=account, gateway=gateway)
                if done():
                    return True
                time.sleep(SYNC_SECONDS)
            return False

        report: dict = {"sync_interval_seconds": SYNC_SECONDS, "grace_seconds": 10}

        # 1. delay --------------------------------------------------------------------------------------------
        account, sim, gateway = account_for(7101)
        tickets = [sim.sim_open_manual("EURUSD", "buy", "1.0", comment=f"d{i}") for i in range(2)]
        account_sync(account=account, gateway=gateway)
        sim.sim_set_price("EURUSD", "1.07400", "1.07410")  # about 22 % down
        assert sync_until(
            account,
            gateway,
            lambda: CloseIntent.objects.filter(account=account, state="confirmed").count() == 2,
        ), "liquidation did not complete"
        scheduled = GuardAlert.objects.get(account=account, kind=AlertKind.LIQUIDATION_SCHEDULED)
        first_close = GuardAlert.objects.filter(account=account, kind=AlertKind.CLOSE_SENT).order_by(
            "created_at"
        )[0]
        report["delay_seconds"] = round((first_close.created_at - scheduled.created_at).total_seconds(), 3)
        report["delay_over_grace_seconds"] = round(report["delay_seconds"] - 10, 3)
        report["delay_positions_left"] = sim.positions_total()
        report["delay_tickets"] = tickets

        # 2. killed worker ------------------------------------------------------------------------------------
        account, sim, gateway = account_for(7102)
        tickets = [sim.sim_open_manual("EURUSD", "buy", "1.0", comment=f"k{i}") for i in range(3)]
        account_sync(account=account, gateway=gateway)
        sim.sim_set_price("EURUSD", "1.07400", "1.07410")
        sim.sim_set_latency("order_send", 4.0)
        assert sync_until(
            account,
            gateway,
            lambda: CloseIntent.objects.filter(account=account, state="sent").exists(),
            limit=60,
        ), "liquidation did not start"
        time.sleep(1.0)  # the first order is inside the terminal now
        in_flight = list(CloseIntent.objects.filter(account=account).values("ticket", "state", "order_sends"))
        _kill_group(worker)
        processes.remove(worker)
        report["killed_with"] = in_flight
        time.sleep(4)  # the order completes in the terminal; nobody records it
        sim.sim_set_latency("order_send", 0.0)
        worker = _start_worker("drill-b")
        processes.append(worker)
        finished = sync_until(
            account,
            gateway,
            lambda: (
                not CloseIntent.objects.filter(
                    account=account, state__in=["pending", "sent", "unresolved"]
                ).exists()
                and CloseIntent.objects.filter(account=account).count() == 3
            ),
            limit=120,
        )
        intents = list(CloseIntent.objects.filter(account=account).order_by("ticket").values("ticket", "state",
                                                                                             "order_sends"))  # fmt: skip
        closing_deals = {
            t: len([d for d in sim.history_deals_get(position=t) or () if d.entry == 1]) for t in tickets
        }
        report["killed_worker"] = {
            "finished": finished,
            "positions_left": sim.positions_total(),
            "intents": intents,
            "closing_deals_per_ticket": closing_deals,
            "state": GuardState.objects.get(account=account).status,
        }
        report["killed_worker_ok"] = (
            finished
            and sim.positions_total() == 0
            and all(i["order_sends"] == 1 and i["state"] == "confirmed" for i in intents)
            and all(n == 1 for n in closing_deals.values())
        )
        report["market_closed"] = _market_closed_case(account_for, sync_until)

        def restart_bridge() -> None:
            nonlocal bridge
            _kill_group(bridge)
            processes.remove(bridge)
            bridge = _start_bridge()
            processes.append(bridge)

        report["bridge_restart"] = bridge_restart_case(account_for=account_for, restart_bridge=restart_bridge)
        print(json.dumps(report, indent=2, default=str))
        return (
            0
            if report["killed_worker_ok"]
            and report["market_closed"]["ok"]
            and report["bridge_restart"]["ok"]
            and Decimal(str(report["delay_over_grace_seconds"])) < 2
            else 1
        )
    finally:
        for process in processes:
            _kill_group(process)
        from django.db import connections

        connections.close_all()
        _psql(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        shutil.rmtree(STATE_DIR, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
