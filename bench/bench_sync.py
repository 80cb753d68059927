"""Account syncs per second: `.venv/bin/python bench/bench_sync.py [--accounts 1000] [--positions 20]`.

One command: creates a throw-away PostgreSQL database (`bench_mt5guard`, dropped at the end), N trading accounts on
in-process simulated terminals (the real gateway stack: get_gateway → ManagedGateway with the Redis circuit breaker
→ TerminalGateway mapping → SimulatedTerminal), each with P open positions and the bot trades that expect most of
them, then runs the full `account_sync` of every account (terminal reads, snapshot, matcher, position upserts,
events, run record, live-update hooks, guards) one after another in this single process: the figures are per
worker process. Pass 1 is the first sync (rows created); passes 2-3 are steady syncs (what runs every 10 s).

`--rule-set two_step` puts every account under that preset (the live rule-set evaluation then runs in every sync);

Per account: 80 % of the positions are expected by a bot trade with their tag (matched by tag), 10 % by a bot trade
without a tag and an SL 20 pips off (tolerance match + an sl_mismatch event), 10 % are manual (unmatched), and one
more bot trade has no position (missing). Uses the test settings' Redis (TEST_REDIS_URL, key prefix "bench").

Also printed, in the same run:
* the floor: the minimum database work of the same syncs (the snapshot insert, the upsert of the account's
  positions and the run record, as plain SQL on a bare connection of the driver, one transaction each, values prepared
  beforehand), once committed synchronously and once with `synchronous_commit = off`, and the ratio full / floor;
* the guard state as production has it after an hour: the market guard's spread memory of each symbol filled with
  an hour of readings (`--history-seconds`, one per 10 s) before the first pass;
* the process's RSS after every pass (10 passes by default; the simulated terminals live in this process too, so
  their share, measured when they were built, is printed beside it).
* the CPU split of a steady sync (one more pass with counters): the whole sync, the reading, and the simulated
  terminal's own functions (in this process here; a real terminal spends that in its own), so the worker's own share;
* with `--profile FILE`, one steady pass under cProfile on CPU time, written to FILE (read it with pstats).
BENCH_DATABASE_NAME chooses the throw-away database (default `bench_mt5guard`).
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
os.environ["TEST_DATABASE_NAME"] = os.environ.get("BENCH_DATABASE_NAME", "bench_mt5guard")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models.constants import OnConflict  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment, teardown_test_environment  # noqa: E402

settings.CACHES["default"]["KEY_PREFIX"] = "bench"
SERVER = "Bench-Sim"
PARALLEL_WARM_UP_PASSES = 2
PARALLEL_TIMED_PASSES = 3
SYMBOLS = (("EURUSD", "1.08500", Decimal("0.00001")), ("GBPUSD", "1.27000", Decimal("0.00001")))


def _build(*, accounts: int, positions: int) -> list:
    from accounts.models import Role
    from accounts.selectors import trading_account_gateway
    from accounts.services import trading_account_create, user_create
    from integrations.mt5.simulated import default_registry
    from reconciliation.models import BotTrade

    owner = user_create(username="bench-trader", password="bench-password-1", role=Role.TRADER)  # noqa: S106
    registry = default_registry()
    made = []
    trades = []
    for index in range(accounts):
        login = 8_000_000 + index
        account = trading_account_create(owner=owner, login=login, server=SERVER)
        # Only the symbols traded, a short bar history: a real terminal lives in its own process, so the less of
        # it in this one, the closer the RSS is to a worker's own.
        terminal = registry.create_account(
            login,
            server=SERVER,
            password=None,
            seed=index,
            symbols=[name for name, _bid, _point in SYMBOLS],
            history_bars=120,
        )
        terminal.initialize()
        for symbol, bid, _point in SYMBOLS:
            terminal.sim_set_price(symbol, bid)
        for slot in range(positions):
            symbol, _bid, point = SYMBOLS[slot % len(SYMBOLS)]
            side = "buy" if slot % 3 else "sell"
            tag = f"b{index}-{slot}"
            kind = slot % 10
            comment = tag if kind < 8 else ""
            ticket = terminal.sim_open_manual(symbol, side, "0.10", comment=comment)
            (price,) = terminal.positions_get(ticket=ticket)
            if kind == 9:
                continue  # a manual position: unmatched
            sl = (
                None
                if kind < 8
                else Decimal(str(price.price_open)) - 200 * point * (1 if side == "buy" else -1)
            )
            trades.append(
                BotTrade(
                    account=account,
                    signal_id=f"sig-{index}-{slot}",
                    leg=1,
                    symbol=symbol,
                    side=side,
                    volume=Decimal("0.10"),
                    entry_price=Decimal(str(price.price_open)),
                    sl=sl,
                    tag=tag if kind < 8 else "",
                )
            )
        trades.append(
            BotTrade(
                account=account,
                signal_id=f"sig-{index}-gone",
                leg=1,
                symbol="EURUSD",
                side="buy",
                volume=Decimal("0.10"),
                entry_price=Decimal("1.08000"),
            )
        )
        trading_account_gateway(account=account).breaker.reset()  # no circuit state left by anything else
        made.append(account)
    BotTrade.objects.bulk_create(trades, batch_size=2000)
    return made


def _assign_rule_set(accounts: list, *, preset: str) -> None:
    from rules.models import RuleSet
    from rules.services import account_rule_set_assign

    rule_set = RuleSet.objects.get(preset=preset)
    for account in accounts:
        account_rule_set_assign(
            actor=None, account=account, rule_set=rule_set, initial_balance="10000", reason="bench"
        )


def _cache_clear(cache) -> None:
    """Only this benchmark's keys: the Redis database is shared with the test suite."""
    client = cache._cache.get_client(None, write=True)
    for key in client.scan_iter(match=f"{settings.CACHES['default']['KEY_PREFIX']}:*", count=1000):
        client.delete(key)


def _pass(accounts: list) -> tuple[float, list[float], int]:
    from accounts.selectors import trading_account_gateway
    from pipeline.services import account_sync

    durations = []
    failures = 0
    started = time.perf_counter()
    for account in accounts:
        t0 = time.perf_counter()
        result = account_sync(account=account, gateway=trading_account_gateway(account=account))
        durations.append(time.perf_counter() - t0)
        failures += not result.ok or bool(result.guards_error)
    return time.perf_counter() - started, durations, failures


def _child_pass(account_ids: list[int]) -> float:
    """In a forked worker: warm-up passes, then the median of timed ones. The first pass reconnects the child's
    gateways; and each simulated terminal catches up the ticks since its account's last sync (1 s grid), so a pass
    right after a long gap (the parent's floor and profile runs) costs more than a steady one: two warm-up passes
    bring the gap down to a pass's length, as in the single-process steady passes."""
    from accounts.models import TradingAccount

    accounts = list(TradingAccount.objects.filter(pk__in=account_ids).order_by("pk"))
    for _warm_up in range(PARALLEL_WARM_UP_PASSES):
        _pass(accounts)
    return statistics.median(_pass(accounts)[0] for _timed in range(PARALLEL_TIMED_PASSES))


def _parallel_pass(accounts: list, processes: int) -> float:
    """Steady syncs of all accounts split over `processes` forked workers, as Celery prefork runs them: the
    rate is the accounts over the slowest worker's (median) time."""
    from django.db import connections

    connections.close_all()  # each child opens its own
    slices = [[a.pk for a in accounts[i::processes]] for i in range(processes)]
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        elapsed = pool.map(_child_pass, slices)
    return len(accounts) / max(elapsed)


def _queries(accounts: list) -> tuple[float, float]:
    """Per steady sync: SQL statements, and database round trips (every statement sent, BEGIN, SAVEPOINT and COMMIT
    included; a SAVEPOINT riding with a statement is one round trip with it)."""
    from accounts.selectors import trading_account_gateway
    from core.db import sql_statements
    from pipeline.services import account_sync

    counts, trips = [], []
    for account in accounts:
        gateway = trading_account_gateway(account=account)
        with CaptureQueriesContext(connection) as ctx:
            account_sync(account=account, gateway=gateway)
        # SQL statements; transaction control (BEGIN/COMMIT/SAVEPOINT) is not a query.
        counts.append(len(sql_statements(ctx.captured_queries)))
        trips.append(len(ctx.captured_queries))
    return statistics.mean(counts), statistics.mean(trips)


def _cpu_split(accounts: list) -> tuple[float, float, float]:
    """One more steady pass (guards, pushes) with CPU counters around the reading and the terminal's API calls: per
    sync, the CPU ms of the whole sync, of `account_reading_take` (the circuit breaker, the mapping and the terminal)
    and of the simulated terminal's own functions alone (every call the mapping makes into it: a real terminal
    spends this in its own process). The worker's own share is the whole minus the terminal's."""
    from integrations.mt5.terminal import TerminalGateway
    from pipeline.services import sync as sync_module

    spent = {"reading": 0.0, "terminal": 0.0}
    real_take, real_call = sync_module.account_reading_take, TerminalGateway._call

    def take(**kwargs):
        t0 = time.process_time()
        try:
            return real_take(**kwargs)
        finally:
            spent["reading"] += time.process_time() - t0

    def call(self, name, *args, **kwargs):
        function = getattr(self._api, name)

        def timed(*a, **k):
            t0 = time.process_time()
            try:
                return function(*a, **k)
            finally:
                spent["terminal"] += time.process_time() - t0

        api = self._api
        self._api = _Api(api, name, timed)
        try:
            return real_call(self, name, *args, **kwargs)
        finally:
            self._api = api

    sync_module.account_reading_take, TerminalGateway._call = take, call
    try:
        cpu = time.process_time()
        _pass(accounts)
        total = time.process_time() - cpu
    finally:
        sync_module.account_reading_take, TerminalGateway._call = real_take, real_call
    per = 1000 / len(accounts)
    return total * per, spent["reading"] * per, spent["terminal"] * per


class _Api:
    """The terminal API with one function replaced (the timed one): what `_cpu_split` hands `TerminalGateway._call`."""

    def __init__(self, api, name, function) -> None:
        self._api, self._name, self._function = api, name, function

    def __getattr__(self, name):
        return self._function if name == self._name else getattr(self._api, name)


def _profile(accounts: list, path: str) -> None:
    """One steady pass (guards, pushes) under cProfile on CPU time, written to `path` (read it with pstats)."""
    import cProfile

    profiler = cProfile.Profile(time.process_time)  # CPU, not the waits on PostgreSQL and Redis
    profiler.enable()
    _pass(accounts)
    profiler.disable()
    profiler.dump_stats(path)


def _rss_mb() -> float:
    """This process's resident set size now (Linux /proc), MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _history_fill(accounts: list, *, seconds: int, now: float) -> int:
    """The guard state as an hour of syncs leaves it: every symbol's spread memory full of `seconds` of readings
    (one per 10 s), written straight into GuardState.market before the first pass. Returns the readings per symbol."""
    from guards.models import GuardState
    from guards.services import market as market_module

    readings = [(int(now) - seconds + 10 * i, 5 + i % 7) for i in range(seconds // 10)]
    fill = getattr(market_module, "spread_memory_from_readings", None)
    if fill is not None:
        spreads = fill(readings)
        memory = {name: {"level": "normal", **spreads} for name, _bid, _point in SYMBOLS}
    else:  # the tree before the bounded summary: a list of [epoch, points], capped at MAX_SPREAD_SAMPLES
        samples = [list(r) for r in readings][-market_module.MAX_SPREAD_SAMPLES :]
        memory = {name: {"level": "normal", "spreads": samples} for name, _bid, _point in SYMBOLS}
    GuardState.objects.bulk_create(
        [GuardState(account_id=a.pk, market=memory) for a in accounts],
        update_conflicts=True,
        unique_fields=["account"],
        update_fields=["market"],
        batch_size=500,
    )
    return len(readings)


def _floor_inputs(accounts: list) -> list[tuple[tuple[str, list], tuple[str, list], tuple[str, list]]]:
    """Per account, the three statements of the floor with their values, prepared outside the timing: the values
    the sync stores (the terminal read once here), compiled by the ORM to plain SQL once."""
    from django.db.models.sql import InsertQuery

    from accounts.models import AccountSnapshot
    from accounts.selectors import trading_account_gateway
    from reconciliation.models import AccountSync, LivePosition

    def insert_sql(model, objs, **conflict):
        fields = [f for f in model._meta.concrete_fields if not f.primary_key]
        query = InsertQuery(model, **conflict)
        query.insert_values(fields, objs)
        ((sql, params),) = query.get_compiler(connection=connection).as_sql()
        return sql, list(params)

    update_fields = [
        LivePosition._meta.get_field(name)
        for name in ("price_current", "sl", "tp", "profit", "swap", "last_seen_at", "volume")
    ]
    unique = [LivePosition._meta.get_field("account"), LivePosition._meta.get_field("ticket")]
    now = datetime.now(UTC)
    # Connect every gateway first, 64 at a time: a connect waits up to 1.5 s for a tick to learn the broker's clock
    # offset (a real-time simulated clock), which is no part of any timing here.
    with ThreadPoolExecutor(64) as pool:
        readings = list(
            pool.map(
                lambda a: (lambda g: (g.account(), g.positions()))(trading_account_gateway(account=a)),
                accounts,
            )
        )
    inputs = []
    for account, (state, positions) in zip(accounts, readings, strict=True):
        snapshot = AccountSnapshot(
            account=account, balance=state.balance, credit=state.credit, profit=state.profit, equity=state.equity,
            margin=state.margin, margin_free=state.margin_free, margin_level=state.margin_level,
            leverage=state.leverage, margin_mode=str(state.margin_mode), currency=state.currency, taken_at=now,
            server_time=state.server_time,
        )  # fmt: skip
        rows = [
            LivePosition(
                account=account,
                ticket=p.ticket,
                symbol=p.symbol,
                canonical_symbol=p.symbol,
                side=str(p.side),
                volume=p.volume,
                price_open=p.price_open,
                price_current=p.price_current,
                sl=p.sl,
                tp=p.tp,
                profit=p.profit,
                swap=p.swap,
                magic=p.magic,
                comment=p.comment[:64],
                opened_at=p.time,
                opened_at_server_epoch=p.time_epoch,
                first_seen_at=now,
                last_seen_at=now,
            )
            for p in positions
        ]
        run = AccountSync(account=account, started_at=now, finished_at=now, ok=True, positions=len(rows))
        inputs.append(
            (
                insert_sql(AccountSnapshot, [snapshot]),
                insert_sql(
                    LivePosition,
                    rows,
                    on_conflict=OnConflict.UPDATE,
                    update_fields=update_fields,
                    unique_fields=unique,
                ),
                insert_sql(AccountSync, [run]),
            )
        )
    return inputs


def _floor(inputs: list, *, synchronous: bool) -> float:
    """Seconds for the floor's transactions of every account on a bare connection of Django's driver (psycopg 3,
    with the same connection parameters; no Django in the way)."""
    raw = connection.Database.connect(**connection.get_connection_params())
    try:
        with raw.cursor() as cursor:
            started = time.perf_counter()
            for statements in inputs:
                if not synchronous:
                    cursor.execute("SET LOCAL synchronous_commit = off")
                for sql, values in statements:
                    cursor.execute(sql, values)
                raw.commit()
            return time.perf_counter() - started
    finally:
        raw.close()


def _matcher_only(*, positions: int, repeat: int) -> tuple[float, float]:
    """The pure matcher on one account's inputs (positions and bot trades as above): positions/s and reconciles/s."""
    from reconciliation.matching import BotTrade, LivePosition, SymbolSpec, reconcile

    table = {name: SymbolSpec(name=name, digits=5, point=point) for name, _bid, point in SYMBOLS}
    lives, bots = [], []
    for slot in range(positions):
        symbol, bid, point = SYMBOLS[slot % len(SYMBOLS)]
        price = Decimal(bid) + slot * point
        side = "buy" if slot % 3 else "sell"
        kind = slot % 10
        lives.append(
            LivePosition(
                ticket=1000 + slot,
                time=1_763_900_000 + slot,
                type=0 if side == "buy" else 1,
                magic=0,
                volume=Decimal("0.10"),
                price_open=price,
                sl=None,
                tp=None,
                symbol=symbol,
                comment=f"t{slot}" if kind < 8 else "",
            )
        )
        if kind != 9:
            bots.append(
                BotTrade(
                    id=str(slot),
                    symbol=symbol,
                    side=side,
                    volume=Decimal("0.10"),
                    entry_price=price,
                    sl=price - 200 * point if kind >= 8 else None,
                    tag=f"t{slot}" if kind < 8 else None,
                )
            )
    started = time.perf_counter()
    for _ in range(repeat):
        reconcile(symbols=table, bot_trades=bots, positions=lives)
    elapsed = time.perf_counter() - started
    return positions * repeat / elapsed, repeat / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--positions", type=int, default=20)
    parser.add_argument("--processes", type=int, default=2, help="worker processes for the parallel pass")
    parser.add_argument(
        "--passes", type=int, default=10, help="passes in all (first, steady..., no guards, no pushes)"
    )
    parser.add_argument(
        "--history-seconds", type=int, default=3600, help="spread memory in place before pass 1"
    )
    parser.add_argument(
        "--rule-set",
        default="",
        help="put every account under this preset rule set (two_step, one_step, ny_close): the live rule-set "
        "evaluation runs in every sync",
    )
    parser.add_argument(
        "--profile", default="", metavar="FILE", help="also profile one steady pass with cProfile into FILE"
    )
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the terminals' connect/disconnect INFO lines are not the benchmark

    from django.core.cache import cache

    from integrations.mt5 import reset_gateways

    load_before = os.getloadavg()
    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        _cache_clear(cache)
        reset_gateways()
        rss_start = _rss_mb()
        t0 = time.perf_counter()
        accounts = _build(accounts=args.accounts, positions=args.positions)
        if args.rule_set:
            _assign_rule_set(accounts, preset=args.rule_set)
        build_seconds = time.perf_counter() - t0
        rss_built = _rss_mb()
        history = _history_fill(accounts, seconds=args.history_seconds, now=time.time())
        floor_inputs = _floor_inputs(accounts)
        rows = []
        from pipeline.services import sync as sync_module

        real_guards, real_broadcast = sync_module.account_guards_evaluate, sync_module.broadcast_groups
        steady = max(args.passes - 3, 1)
        labels = ["first sync", *["steady"] * steady, "steady, no guards", "steady, no guards, no pushes"]
        rss_after = []
        cpu_ms: dict[str, list[float]] = {}  # this process's CPU per sync (the simulated terminals' included)
        for label in labels:
            if "no guards" in label:
                sync_module.account_guards_evaluate = lambda **kwargs: None
            if "no pushes" in label:
                sync_module.broadcast_groups = lambda *args, **kwargs: None
            cpu = time.process_time()
            elapsed, durations, failures = _pass(accounts)
            cpu_ms.setdefault(label, []).append((time.process_time() - cpu) / len(accounts) * 1000)
            rows.append((label, elapsed, durations, failures))
            rss_after.append(_rss_mb())
        sync_module.account_guards_evaluate, sync_module.broadcast_groups = real_guards, real_broadcast
        cpu_split = _cpu_split(accounts)
        if args.profile:
            _profile(accounts, args.profile)
        floors = {mode: _floor(floor_inputs, synchronous=mode == "on") for mode in ("on", "off")}
        parallel_rate = _parallel_pass(accounts, args.processes) if args.processes > 1 else None
        queries, round_trips = _queries(accounts[:50])
        matcher_positions, matcher_reconciles = _matcher_only(positions=args.positions, repeat=5000)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        teardown_test_environment()
        _cache_clear(cache)
        reset_gateways()
    load_after = os.getloadavg()

    under = f", under the rule set {args.rule_set!r}" if args.rule_set else ""
    print(
        f"setup: {args.accounts} accounts x {args.positions} positions{under} built in {build_seconds:.1f} s; "
    )
    print(f"spread memory in place: {history} readings per symbol ({args.history_seconds} s)")
    print(
        f"load average (1 min) before / after: {load_before[0]:.2f} / {load_after[0]:.2f} on {os.cpu_count()} CPUs"
    )
    print()
    print(
        "| pass | accounts | positions/account | syncs/s | median ms | p99 ms | CPU ms/sync | failed | queries/sync "
        "| DB round trips/sync |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    grouped: dict[str, list] = {}
    for label, elapsed, durations, failures in rows:
        grouped.setdefault(label, []).append((elapsed, durations, failures))
    steady_ms = 0.0
    for label, runs in grouped.items():
        rates = sorted(len(accounts) / elapsed for elapsed, _d, _f in runs)
        rate = statistics.median(rates)
        durations = sorted(d for _e, ds, _f in runs for d in ds)
        median = statistics.median(durations) * 1000
        if label == "steady":
            steady_ms = 1000 / rate
        name = f"{label} (median of {len(runs)} passes)" if len(runs) > 1 else label
        q = f"{queries:.1f} | {round_trips:.1f}" if label == "steady" else "- | -"  # with guards
        print(
            f"| {name} | {args.accounts} | {args.positions} | {rate:.0f} | {median:.2f} "
            f"| {durations[int(len(durations) * 0.99) - 1] * 1000:.2f} | {statistics.median(cpu_ms[label]):.2f} "
            f"| {sum(f for *_x, f in runs)} | {q} |"
        )
    if parallel_rate is not None:
        print(
            f"| steady, {args.processes} worker processes (total) | {args.accounts} | {args.positions} "
            f"| {parallel_rate:.0f} | - | - | - | - | - | - |"
        )
    print()
    whole, reading_ms, terminal_ms = cpu_split
    print("| CPU ms per steady sync (guards, pushes; one more pass, counted) | ms |")
    print("|---|---:|")
    print(f"| the whole sync, this process | {whole:.2f} |")
    print(f"| the reading (`account_reading_take`: breaker, mapping, terminal) | {reading_ms:.2f} |")
    print(
        f"| of which the simulated terminal's own functions (a real one runs in its own process) | {terminal_ms:.2f} |"
    )
    print(f"| **the worker's own share** (whole minus the terminal's) | **{whole - terminal_ms:.2f}** |")
    if args.profile:
        print(f"(one steady pass profiled into {args.profile})")
    print()
    # A cycle dispatches every account at once; the queue drains at the workers' steady rate, so the k-th account
    # waits k / rate: what SyncCycle.queue_lag_seconds (mean) and queue_lag_max_seconds record with these workers.
    print("| queue lag of one cycle of these accounts, at the steady rates above | mean s | max s |")
    print("|---|---:|---:|")
    lag_rates = [("1 worker process", 1000 / steady_ms)]
    if parallel_rate is not None:
        lag_rates.append((f"{args.processes} worker processes", parallel_rate))
    for name, lag_rate in lag_rates:
        print(f"| {name} | {len(accounts) / lag_rate / 2:.2f} | {len(accounts) / lag_rate:.2f} |")
    print()
    # The simulated terminal's CPU is in the steady time too; a real terminal spends it in its own process.
    print("| the floor (plain SQL: snapshot insert, positions upsert, run insert; one transaction) | syncs/s | ms/sync "
          "| full steady sync / floor | (full minus the terminal's CPU) / floor |")  # fmt: skip
    print("|---|---:|---:|---:|---:|")
    for mode, seconds in floors.items():
        per_sync = seconds / len(accounts) * 1000
        print(
            f"| synchronous_commit = {mode} | {len(accounts) / seconds:.0f} | {per_sync:.2f} "
            f"| {steady_ms / per_sync:.2f} | {(steady_ms - terminal_ms) / per_sync:.2f} |"
        )
    print()
    print("| worker RSS, MB | at start | terminals built | after pass 1 | after the last pass |")
    print("|---|---:|---:|---:|---:|")
    print(
        f"| this process ({len(rows)} passes over {args.accounts} accounts) | {rss_start:.0f} | {rss_built:.0f} "
        f"| {rss_after[0]:.0f} | {rss_after[-1]:.0f} |"
    )
    print(
        f"| without the simulated terminals' share ({rss_built - rss_start:.0f} MB) | {rss_start:.0f} | - "
        f"| {rss_after[0] - (rss_built - rss_start):.0f} | {rss_after[-1] - (rss_built - rss_start):.0f} |"
    )
    print()
    print("| matcher only | positions/s | reconciles/s (one account) |")
    print("|---|---:|---:|")
    print(
        f"| {args.positions} positions per account | {matcher_positions:,.0f} | {matcher_reconciles:,.0f} |"
    )


if __name__ == "__main__":
    main()
