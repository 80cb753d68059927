"""Play a scenario through the real pipeline: account_sync (snapshot, reconciliation, live positions) → guards →
liquidation / auto-close → audit, against an in-process simulated terminal on a virtual clock.

The database is whatever is current (the management command provides a throw-away one). Nothing leaves the run:
the cache and the channel layer are in-memory for its duration, Celery is replaced by a dispatcher that runs the
same services at the right virtual moment, and the gateway has its own in-memory circuit breaker.

Timeline: the moments are the step times, the sync times (0, interval, 2 * interval, ... <= until) and the due times
of dispatched work. At each moment, in this order: the steps (file order), the work that is due (a liquidation at
the end of its grace period, closes), the sync, then any work the sync dispatched for "now".
"""

import heapq
import itertools
import secrets
import threading
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import close_old_connections, connection
from django.test.utils import override_settings

from accounts.models import Role, TradingAccount, User
from accounts.services import trading_account_create, user_create
from core.exceptions import ApplicationError
from guards.clock import clock_override
from guards.models import AlertKind, CloseIntent, CloseTrigger, GuardAlert, GuardState
from guards.services.autoclose import close_intent_follow_up, position_close, positions_close_all
from guards.services.dispatch import dispatcher_override
from guards.services.liquidation import account_liquidate
from guards.services.reset import guard_reset
from guards.services.settings import guard_settings_update
from integrations.mt5.circuit import Backoff, CircuitBreaker, MemoryBreakerStore
from integrations.mt5.sessions import ManagedGateway
from integrations.mt5.simulated import SimClock, SimulatedTerminal, SimulatorError
from integrations.mt5.simulated.clock import DEFAULT_SERVER_UTC_OFFSET, DEFAULT_VIRTUAL_START
from integrations.mt5.terminal import TerminalGateway
from pipeline.replay.parser import Scenario, ScenarioError
from pipeline.services import account_sync
from reconciliation.models import ReconciliationEvent
from reconciliation.services.bot_trades import bot_trade_register
from risk.services import trade_setup_size
from rules.models import AccountRulesState
from rules.services import account_rule_set_assign, rule_set_create
from rules.services.config import rule_set_terms_of

SERVER = "Scenario-Sim"
RETRY_LIQUIDATION_SECONDS = 5.0


class TerminalProxy:
    """The simulated terminal as the gateway sees it: counts the product's order_send calls per position ticket and
    applies `before_call` actions just before the named call reaches the terminal."""

    def __init__(self, sim: SimulatedTerminal, apply: Callable[[str, Any], None]) -> None:
        self._sim = sim
        self._apply = apply
        self._lock = threading.Lock()
        self._hooks: dict[str, deque[Callable[[], None]]] = defaultdict(deque)
        self.order_sends: Counter[int] = Counter()
        self.requests: list[dict[str, Any]] = []

    def hook(self, call: str, action: str, args: Any) -> None:
        """Apply a scenario action just before the next `call` reaches the terminal."""
        self.before(call, lambda: self._apply(action, args))

    def before(self, call: str, effect: Callable[[], None]) -> None:
        with self._lock:
            self._hooks[call].append(effect)

    def _before(self, call: str) -> None:
        with self._lock:
            pending = list(self._hooks.pop(call, ()))
        for effect in pending:
            effect()

    def order_send(self, request: dict[str, Any]) -> Any:
        self._before("order_send")
        with self._lock:
            self.order_sends[int(request.get("position") or 0)] += 1
            self.requests.append(dict(request))
        return self._sim.order_send(request)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._sim, name)
        if not callable(attr) or name.startswith("sim_") or name not in _HOOKABLE:
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self._before(name)
            return attr(*args, **kwargs)

        return call


_HOOKABLE = frozenset(
    {"order_check", "positions_get", "account_info", "symbol_info", "symbol_info_tick", "copy_rates_from_pos",
     "history_deals_get", "history_orders_get", "terminal_info", "initialize", "login"}
)  # fmt: skip


def simulated_gateway(api: Any, *, login: int, server: str, clock: SimClock) -> ManagedGateway:
    """The production gateway stack (ManagedGateway around TerminalGateway) over a simulated terminal, with its own
    in-memory circuit breaker (never the shared Redis one) and the terminal's virtual clock."""
    return ManagedGateway(
        TerminalGateway(
            api,
            login=login,
            password="",
            server=server,
            server_utc_offset=int(clock.server_utc_offset.total_seconds()),
            clock=lambda: clock.utc_ms() / 1000,
        ),
        account_key=f"scenario-{secrets.token_hex(4)}",
        breaker=CircuitBreaker(
            "scenario", store=MemoryBreakerStore(), failure_threshold=5, reset_seconds=1.0
        ),
        backoff=Backoff(base=0.001, cap=0.01),
    )


@dataclass(order=True)
class _Job:
    due: float
    seq: int
    kind: str = field(compare=False)
    kwargs: dict[str, Any] = field(compare=False)


class _Dispatcher:
    def __init__(self, run: "_Run") -> None:
        self._run = run

    def liquidation(self, *, account_id: int, trip_id: str, countdown: float) -> None:
        self._run.schedule(countdown, "liquidation", {"trip_id": trip_id})

    def closes(self, *, account_id: int, trigger: str, trigger_key: str, tickets: list[int]) -> None:
        self._run.schedule(
            0.0, "closes", {"trigger": trigger, "trigger_key": trigger_key, "tickets": tickets}
        )

    def close_retry(self, *, account_id: int, intent_id: int, countdown: float) -> None:
        self._run.schedule(countdown, "retry", {"intent_id": intent_id})


def _num(value: Decimal | float | int | None) -> float | int | None:
    if value is None:
        return None
    number = float(value)
    return int(number) if number.is_integer() else number


class _Run:
    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.start = scenario.start or DEFAULT_VIRTUAL_START
        self.clock = SimClock.fixed(self.start, server_utc_offset=DEFAULT_SERVER_UTC_OFFSET)
        try:
            self.sim = SimulatedTerminal(
                login=scenario.login,
                password=None,
                server=SERVER,
                balance=scenario.balance,
                currency=scenario.currency,
                leverage=scenario.leverage,
                margin_mode=scenario.margin_mode,
                symbols=scenario.symbols or None,
                clock=self.clock,
                sleep=self._advance_by,
            )
        except (ValueError, TypeError, SimulatorError) as exc:
            raise ScenarioError(f"symbols/account: {exc}") from None
        self.api = TerminalProxy(self.sim, self._apply_action)
        self.gateway = simulated_gateway(self.api, login=scenario.login, server=SERVER, clock=self.clock)
        self.jobs: list[_Job] = []
        self._seq = itertools.count()
        self.events: list[dict[str, Any]] = []
        self.tickets_by_comment: dict[str, int] = {}
        self.closed_markets: dict[str, dict[str, Any] | None] = {}  # symbol -> quote held until it opens
        self._last_alert = 0
        self._last_recon = 0
        self.account: TradingAccount
        self.users: dict[str, User] = {}

    # ------------------------------------------------------------------ time

    def t(self, when: datetime | None = None) -> float:
        return ((when or self.clock.now()) - self.start).total_seconds()

    def _advance_by(self, seconds: float) -> None:
        if seconds > 0:
            self.clock.advance(seconds)

    def _move_to(self, t: float) -> None:
        target = self.start + timedelta(seconds=t)
        if target > self.clock.now():
            self.sim.sim_set_time(target)

    def schedule(self, countdown: float, kind: str, kwargs: dict[str, Any]) -> None:
        heapq.heappush(self.jobs, _Job(self.t() + max(0.0, countdown), next(self._seq), kind, kwargs))

    # ------------------------------------------------------------------ steps

    def _ticket(self, ref: dict[str, Any]) -> int:
        if "ticket" in ref:
            return int(ref["ticket"])
        comment = ref["comment"]
        if comment in self.tickets_by_comment:
            return self.tickets_by_comment[comment]
        found = self.sim.sim_find_positions(comment=comment)
        if not found:
            raise ScenarioError(f"no position with comment {comment!r}")
        return found[0]

    def _assign_rules(self, scenario: Scenario) -> None:
        """The scenario's `rules`: a rule set of its own, assigned to the account from its start."""
        rule_set = rule_set_create(
            actor=None,
            name=f"scenario {scenario.login}",
            reason="scenario rules",
            close_only_on_warning=scenario.rules_close_only_on_warning,
            **rule_set_terms_of(scenario.rules),
        )
        account_rule_set_assign(
            actor=None,
            account=self.account,
            rule_set=rule_set,
            reason="scenario rules",
            initial_balance=scenario.rules.initial_balance,
            start=scenario.rules.start,
        )

    def _size(self, setup: dict[str, Any]) -> None:
        """A sizing request on the scenario's account (the live flow: headroom cap, close-only, halted)."""
        event: dict[str, Any] = {"t": _num(self.t()), "type": "sizing"}
        try:
            log = trade_setup_size(
                account=TradingAccount.objects.select_related("latest_snapshot").get(pk=self.account.pk),
                actor=self.users["trader"],
                symbol=setup["symbol"],
                side=setup["side"],
                entries=[Decimal(str(price)) for price in setup["entries"]],
                sl=Decimal(str(setup["sl"])),
                gateway=self.gateway,
            )
        except ApplicationError as exc:
            event.update(approved=False, reason=exc.extra.get("reason", type(exc).__name__))
        else:
            result = log.result or {}
            event.update(approved=log.approved, reason=log.reason or None, risk_amount=result.get("risk_amount"),
                         capped_by=result.get("capped_by"))  # fmt: skip
        self.events.append(event)

    def _apply_action(self, action: str, args: Any) -> None:
        sim = self.sim
        if action == "size":
            self._size(args)
        elif action == "prices":
            self._prices(args)
        elif action == "market":
            self._market(args)
        elif action == "open":
            ticket = sim.sim_open_manual(
                args["symbol"],
                args["side"],
                str(args["volume"]),
                sl=str(args.get("sl") or 0),
                tp=str(args.get("tp") or 0),
                magic=int(args.get("magic", 0)),
                comment=str(args.get("comment", "")),
            )
            if args.get("comment"):
                self.tickets_by_comment.setdefault(str(args["comment"]), ticket)
        elif action == "close":
            sim.sim_close_manual(self._ticket(args))
        elif action == "fault":
            if "retcode" in args:
                sim.sim_inject_retcode(
                    int(args["retcode"]), int(args.get("times", 1)), call=args["call"],
                    executed=bool(args.get("executed", False)),
                )  # fmt: skip
            else:
                code, description = args["last_error"]
                sim.sim_inject_fault(
                    args["call"], (int(code), str(description)), int(args.get("times", 1)),
                    executed=bool(args.get("executed", False)),
                )  # fmt: skip
        elif action == "bot_trade":
            bot_trade_register(
                account=self.account,
                signal_id=str(args["id"]),
                leg=int(args.get("leg", 1)),
                symbol=str(args["symbol"]),
                side=str(args["side"]),
                volume=Decimal(str(args["volume"])),
                entry_price=Decimal(str(args["entry_price"])),
                sl=Decimal(str(args["sl"])) if args.get("sl") is not None else None,
                tp=Decimal(str(args["tp"])) if args.get("tp") is not None else None,
                ticket=args.get("ticket"),
                magic=args.get("magic"),
                tag=str(args.get("tag", "")),
            )
        elif action == "before_call":
            inner = next(k for k in args if k != "call")
            self.api.hook(args["call"], inner, args[inner])
        elif action == "concurrent_close":
            self._concurrent_close(args)
        elif action == "reset":
            guard_reset(
                account=self.account,
                actor=self.users[args.get("role", "support")],
                reason=args["reason"],
                confirm_open_positions=bool(args.get("confirm_open_positions", False)),
            )
        elif action == "deposit":
            sim.sim_deposit(str(args["amount"]))
        elif action == "balance":
            sim.sim_balance_operation(args["type"], str(args["amount"]), str(args.get("comment", "")))
        elif action == "disconnect":
            sim.sim_set_connected(False)
            self.schedule(float(args["seconds"]), "reconnect", {})
        elif action == "feed":
            sim.sim_set_feed(args["symbol"], args["mode"])
        elif action == "settings":
            guard_settings_update(actor=self.users["owner"], values=args, reason="scenario step")

    def _prices(self, args: dict[str, Any]) -> None:
        """Quotes for symbols whose market is closed are held back and quoted when it opens (no ticks meanwhile)."""
        for symbol, quote in args.items():
            if symbol in self.closed_markets:
                self.closed_markets[symbol] = quote
            else:
                self.sim.sim_set_price(
                    symbol, str(quote["bid"]), str(quote["ask"]) if "ask" in quote else None
                )

    def _market(self, args: dict[str, Any]) -> None:
        """A symbol's trading session closes (order_send answers MARKET_CLOSED 10018, prices stay) or opens."""
        symbol = args["symbol"]
        if args["open"]:
            self.sim.sim_set_market_open(symbol, True)
            held = self.closed_markets.pop(symbol, None)
            if held is not None:
                self._prices({symbol: held})
        else:
            self.sim.sim_set_market_open(symbol, False)
            self.closed_markets.setdefault(symbol, None)

    def _concurrent_close(self, args: dict[str, Any]) -> None:
        ticket = self._ticket(args)
        trigger_key = str(args.get("trigger_key", f"operator-{ticket}"))
        count = int(args.get("requests", 10))
        barrier = threading.Barrier(count)
        errors: list[BaseException] = []

        def request() -> None:
            try:
                barrier.wait(timeout=30)
                position_close(
                    account=self.account,
                    ticket=ticket,
                    trigger_key=trigger_key,
                    gateway=self.gateway,
                    trigger=CloseTrigger.OPERATOR,
                    actor=self.users["support"],
                )
            except BaseException as exc:  # reported below
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=request, name=f"close-{i}") for i in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]

    # ------------------------------------------------------------------ pipeline

    def _run_job(self, job: _Job) -> None:
        if job.kind == "reconnect":
            self.sim.sim_set_connected(True)
        elif job.kind == "liquidation":
            result = account_liquidate(
                account=self.account, trip_id=job.kwargs["trip_id"], gateway=self.gateway
            )
            if result.outcome == "retry":  # what the Celery task does: retry after a short countdown
                self.schedule(RETRY_LIQUIDATION_SECONDS, "liquidation", job.kwargs)
        elif job.kind == "retry":
            intent = CloseIntent.objects.filter(pk=job.kwargs["intent_id"]).first()
            if intent is not None:
                close_intent_follow_up(intent=intent, gateway=self.gateway)
        else:
            positions_close_all(
                account=self.account,
                trigger_key=job.kwargs["trigger_key"],
                gateway=self.gateway,
                trigger=job.kwargs["trigger"],
                tickets=job.kwargs["tickets"],
            )

    def _run_due_jobs(self, t: float) -> None:
        while self.jobs and self.jobs[0].due <= t + 1e-9:
            self._run_job(heapq.heappop(self.jobs))
            self._collect()

    def _sync(self) -> None:
        result = account_sync(account=self.account, gateway=self.gateway, now=self.clock.now())
        self.events.append(
            {
                "t": _num(self.t()),
                "type": "sync",
                "equity": _num(result.snapshot.equity) if result.ok and result.snapshot else None,
                "positions": result.positions if result.ok else None,
                "ok": result.ok,
                **({"error": result.error} if not result.ok else {}),
            }
        )
        for recon in (
            ReconciliationEvent.objects.filter(account=self.account, pk__gt=self._last_recon)
            .select_related("bot_trade")
            .order_by("pk")
        ):
            self._last_recon = recon.pk
            event: dict[str, Any] = {
                "t": _num(self.t(recon.first_seen_at)),
                "type": "divergence",
                "kind": recon.kind,
            }
            if recon.bot_trade is not None:
                event["bot_trade"] = recon.bot_trade.signal_id
            if recon.ticket is not None:
                event["ticket"] = recon.ticket
            self.events.append(event)
        self._collect()

    def _collect(self) -> None:
        for alert in GuardAlert.objects.filter(account=self.account, pk__gt=self._last_alert).order_by("pk"):
            self._last_alert = alert.pk
            self.events.append(self._alert_event(alert))

    def _alert_event(self, alert: GuardAlert) -> dict[str, Any]:
        event: dict[str, Any] = {"t": _num(self.t(alert.created_at)), "type": alert.kind}
        detail = alert.detail or {}
        if alert.kind == AlertKind.GUARD_LEVEL:
            event.update(guard=alert.guard, level=alert.level, value=_num(alert.value))
            if alert.symbol:
                event.update(symbol=alert.symbol, reason=detail.get("reason", ""))
        elif alert.kind == AlertKind.LIQUIDATION_SCHEDULED:
            event.update(
                at=_num(self.t(datetime.fromisoformat(detail["at"]))),
                guard=alert.guard,
                value=_num(alert.value),
            )
        elif alert.kind == AlertKind.CLOSE_SENT:
            event.update(ticket=alert.ticket, retcode=detail.get("retcode"), attempt=detail.get("attempt", 1))
            if detail.get("filling") is not None:
                event["filling"] = detail["filling"]
        elif alert.kind in (AlertKind.CLOSE_CONFIRMED, AlertKind.CLOSE_FAILED, AlertKind.CLOSE_UNRESOLVED):
            event.update(ticket=alert.ticket, attempt=detail.get("attempt", 1))
            if alert.kind == AlertKind.CLOSE_CONFIRMED:
                event.update(closed_by=detail.get("closed_by"), evidence=detail.get("evidence"))
            elif alert.kind == AlertKind.CLOSE_FAILED:
                event["retcode"] = detail.get("retcode")
                if detail.get("retry_at"):
                    event["retry_at"] = _num(self.t(datetime.fromisoformat(detail["retry_at"])))
            elif detail.get("retcode") is not None:
                event["retcode"] = detail.get("retcode")
        elif alert.kind == AlertKind.RULE_LEVEL:
            event.update(level=detail.get("to"), value=_num(alert.value), close_only=detail.get("close_only"))
        elif alert.kind == AlertKind.RULE_BREACH:
            event.update(rule=detail.get("rule"), equity=_num(Decimal(detail["equity"])),
                         limit=_num(Decimal(detail["limit"])))  # fmt: skip
        elif alert.kind == AlertKind.OBJECTIVES_MET:
            event.update(trading_days=detail.get("trading_days"), best_day_share=detail.get("best_day_share"))
        elif alert.kind in (AlertKind.HALTED_POSITION,):
            event.update(ticket=alert.ticket, closing=detail.get("closing"))
        elif alert.kind == AlertKind.MARKET_MARKED:
            event.update(symbol=alert.symbol, tickets=detail.get("tickets"), closing=detail.get("closing"))
        elif alert.kind == AlertKind.BALANCE_ADJUSTED:
            event.update(deal=detail.get("deal"), amount=_num(Decimal(detail["amount"])),
                         peak=_num(Decimal(detail["peak"][1])))  # fmt: skip
        elif alert.kind == AlertKind.SNAPSHOT_STALE:
            event["reason"] = detail.get("reason", "")
        elif alert.kind == AlertKind.RESET:
            event.update(reason=detail.get("reason"), by=alert.actor.get_username() if alert.actor else None)
        elif alert.value is not None:
            event["value"] = _num(alert.value)
        return event

    def _moments(self) -> list[float]:
        interval = self.scenario.sync_interval_seconds
        syncs = [k * interval for k in range(int(self.scenario.until // interval) + 1)]
        return sorted({*syncs, *(s.at for s in self.scenario.steps)})

    def run(self) -> dict[str, Any]:
        scenario = self.scenario
        self.users = {
            "trader": user_create(
                username="scenario-trader", password=secrets.token_urlsafe(16), role=Role.TRADER
            ),
            "owner": user_create(
                username="scenario-owner", password=secrets.token_urlsafe(16), role=Role.OWNER
            ),
            "support": user_create(
                username="scenario-support", password=secrets.token_urlsafe(16), role=Role.SUPPORT
            ),
        }
        self.account = trading_account_create(
            owner=self.users["trader"], login=scenario.login, server=SERVER, label="scenario"
        )
        if scenario.guards:
            guard_settings_update(actor=None, values=scenario.guards, reason="scenario config")
        if scenario.rules is not None:
            self._assign_rules(scenario)
        interval = scenario.sync_interval_seconds
        steps = deque(sorted(scenario.steps, key=lambda s: (s.at, s.index)))
        fixed = deque(self._moments())
        while fixed or (self.jobs and self.jobs[0].due <= scenario.until + 1e-9):
            candidates = [fixed[0]] if fixed else []
            if self.jobs:
                candidates.append(self.jobs[0].due)
            t = min(candidates)
            if t > scenario.until + 1e-9:
                break
            if fixed and fixed[0] <= t + 1e-9:
                fixed.popleft()
            self._move_to(t)
            while steps and steps[0].at <= t + 1e-9:
                step = steps.popleft()
                try:
                    self._apply_action(step.action, step.args)
                except SimulatorError as exc:
                    raise ScenarioError(f"steps[{step.index}].{step.action}: {exc}") from None
                self._collect()
            self._run_due_jobs(t)
            if abs(t / interval - round(t / interval)) < 1e-9:
                self._sync()
                self._run_due_jobs(t)
        return {"events": sorted(self.events, key=lambda e: e["t"]), "final": self._final()}

    def _final(self) -> dict[str, Any]:
        self._move_to(self.scenario.until)
        state = GuardState.objects.filter(account=self.account).first()
        info = self.gateway.account()
        open_tickets = self.sim.sim_find_positions()
        delays = []
        scheduled_at = None
        for event in self.events:
            if event["type"] == "liquidation_scheduled":
                scheduled_at = event["t"]
            elif event["type"] == "close_sent" and scheduled_at is not None:
                delays.append({"critical_confirmed_at": scheduled_at, "first_close_at": event["t"],
                               "seconds": _num(Decimal(str(event["t"])) - Decimal(str(scheduled_at)))})  # fmt: skip
                scheduled_at = None
            elif event["type"] == "liquidation_cancelled":
                scheduled_at = None
        return {
            "open_positions": sorted(int(t) for t in open_tickets),
            "equity": _num(info.equity),
            "balance": _num(info.balance),
            "guard_state": state.status if state else "normal",
            "order_sends": {str(k): v for k, v in sorted(self.api.order_sends.items()) if k},
            "tickets": dict(sorted(self.tickets_by_comment.items())),
            "liquidation_delays": delays,
            "rules": self._rules_final(),
        }

    def _rules_final(self) -> dict[str, Any] | None:
        row = AccountRulesState.objects.filter(account=self.account).first()
        if row is None:
            return None
        return {
            "status": row.status,
            "level": row.level,
            "breach": row.breach,
            "close_only": row.close_only,
            "trading_days": row.trading_days,
            "objectives_met": row.objectives_met_at is not None,
            "daily_limit": _num(row.daily_limit),
            "max_loss_limit": _num(row.max_loss_limit),
            "permitted_loss_today": _num(row.permitted_loss_today),
            "permitted_loss_total": _num(row.permitted_loss_total),
        }


def scenario_run(scenario: Scenario) -> dict[str, Any]:
    """Run on the current database; returns {"events": [...], "final": {...}}."""
    token = secrets.token_hex(4)
    with ExitStack() as stack:
        stack.enter_context(
            override_settings(
                CACHES={
                    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": token}
                },
                CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}},
                # "one sync later" (evidence of a close) is the scenario's sync interval
                RECONCILIATION_SYNC_INTERVAL_SECONDS=scenario.sync_interval_seconds,
            )
        )
        run = _Run(scenario)
        stack.enter_context(clock_override(now=run.clock.now, sleep=lambda seconds: None))
        stack.enter_context(dispatcher_override(_Dispatcher(run)))
        try:
            return run.run()
        finally:
            run.gateway.close()
            close_old_connections()
