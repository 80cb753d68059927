"""Market guard: per symbol an account holds, gaps on closed bars, spread against its recent median and an absolute
cap, and stale quotes (shared/spec/guards.md "Market guard").

Runs inside account_guards_evaluate and keeps its memory (spread readings, level per symbol) in GuardState.market,
so it adds no query. Decisions where the spec is silent (docs/GUARDS.md):
* gap over the limit → critical; spread over its absolute cap → critical; spread over multiplier * median → warning;
  stale quote → warning. A symbol's level is the highest of its current findings; an alert is written when it changes.
* The gap is checked on the newest closed bar against the bar before it (`bars(start_pos=1, count=2)`), so a gap
  stays a finding while that bar is the newest closed one.
* The median needs `market_spread_min_samples` readings inside the window; the reading being judged is not part of it.
* A session is open Monday to Friday on the broker's server clock (the gateway exposes no session table) and the
  symbol's trade mode is not "disabled".
* On critical the positions on the symbol are marked (audited) and, when the owner set the action to "close",
  closed through auto-close once per critical episode.
"""

import logging
import statistics
import uuid
from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from guards.models import LEVEL_RANK, AlertKind, CloseTrigger, Guard, Level, MarketGuardAction
from integrations.mt5.errors import GatewayError
from integrations.mt5.gateway import Mt5Gateway

if TYPE_CHECKING:
    from guards.services.evaluate import _Context

logger = logging.getLogger(__name__)

MAX_SPREAD_SAMPLES = 720
SYMBOL_TRADE_MODE_DISABLED = 0
HUNDRED = Decimal(100)
PLACES = Decimal("0.0001")


def session_open(*, server_weekday: int, trade_mode: int) -> bool:
    return server_weekday < 5 and trade_mode != SYMBOL_TRADE_MODE_DISABLED


def spread_points(*, bid: Decimal, ask: Decimal, point: Decimal) -> int:
    return int(((ask - bid) / point).to_integral_value())


def gap_percent(*, previous_close: Decimal, open_: Decimal) -> Decimal | None:
    if previous_close <= 0:
        return None
    return (abs(open_ - previous_close) / previous_close * HUNDRED).quantize(PLACES)


def _findings(
    ctx: "_Context", *, symbol: str, memory: dict[str, Any], gateway: Mt5Gateway
) -> list[dict[str, Any]]:
    cfg = ctx.cfg
    findings: list[dict[str, Any]] = []
    spec = gateway.symbol(symbol)
    tick = gateway.tick(symbol)
    now_epoch = int(ctx.now.timestamp())
    age = Decimal(str(round((ctx.now - tick.time).total_seconds(), 3)))
    server_now = ctx.now.astimezone(tick.server_time.tzinfo)
    if session_open(server_weekday=server_now.weekday(), trade_mode=spec.trade_mode) and (
        age > cfg.market_stale_quote_seconds
    ):
        findings.append(
            {"level": Level.WARNING, "reason": "stale_quote", "value": age, "unit": "seconds",
             "detail": {"tick_time": tick.time.isoformat(), "limit_seconds": cfg.market_stale_quote_seconds}}
        )  # fmt: skip
    elif age <= cfg.market_stale_quote_seconds:
        points = spread_points(bid=tick.bid, ask=tick.ask, point=spec.point)
        window_start = now_epoch - cfg.market_spread_window_seconds
        samples = [s for s in memory.get("spreads", []) if s[0] > window_start]
        if len(samples) >= cfg.market_spread_min_samples:
            median = Decimal(str(statistics.median(s[1] for s in samples)))
            if median > 0 and points > cfg.market_spread_multiplier * median:
                findings.append(
                    {"level": Level.WARNING, "reason": "spread", "value": (points / median * HUNDRED).quantize(PLACES),
                     "unit": "percent_of_median", "detail": {"spread_points": points, "median_points": str(median)}}
                )  # fmt: skip
        cap = cfg.market_spread_cap_points.get(symbol)
        if cap and points > cap:
            findings.append(
                {"level": Level.CRITICAL, "reason": "spread_cap", "value": Decimal(points * 100) / cap,
                 "unit": "percent_of_cap", "detail": {"spread_points": points, "cap_points": cap}}
            )  # fmt: skip
        samples.append([now_epoch, points])
        memory["spreads"] = samples[-MAX_SPREAD_SAMPLES:]
    bars = gateway.bars(symbol=symbol, timeframe=cfg.market_gap_timeframe, count=2, start_pos=1)
    if len(bars) >= 2:
        before, newest = bars[-2], bars[-1]
        gap = gap_percent(previous_close=before.close, open_=newest.open)
        if gap is not None and gap > cfg.market_gap_percent:
            findings.append(
                {"level": Level.CRITICAL, "reason": "gap", "value": gap, "unit": "percent",
                 "detail": {"bar_time": newest.time.isoformat(), "open": str(newest.open),
                            "previous_close": str(before.close), "limit_percent": str(cfg.market_gap_percent)}}
            )  # fmt: skip
    return findings


def market_guard_evaluate(*, ctx: "_Context", positions: Sequence[Any], gateway: Mt5Gateway) -> None:
    held: dict[str, list[int]] = defaultdict(list)
    for position in positions:
        held[str(position.symbol)].append(int(position.ticket))
    memory_all: dict[str, Any] = {k: v for k, v in (ctx.state.market or {}).items() if k in held}
    for symbol, tickets in sorted(held.items()):
        memory = dict(memory_all.get(symbol) or {"level": Level.NORMAL, "spreads": []})
        try:
            findings = _findings(ctx, symbol=symbol, memory=memory, gateway=gateway)
        except GatewayError as exc:
            logger.warning("market guard: %s on account %s not readable: %s", symbol, ctx.account_id, exc)
            memory_all[symbol] = memory
            continue
        worst = max(findings, key=lambda f: LEVEL_RANK[f["level"]], default=None)
        level = worst["level"] if worst else Level.NORMAL
        previous = memory.get("level", Level.NORMAL)
        if level != previous:
            ctx.alert(
                kind=AlertKind.GUARD_LEVEL,
                guard=Guard.MARKET,
                level=level,
                value=worst["value"] if worst else None,
                symbol=symbol,
                message=f"Market {symbol}: "
                + (f"{worst['reason']} {worst['value']} → {level}" if worst else "normal"),
                detail={
                    "from": previous,
                    "to": level,
                    "reason": worst["reason"] if worst else "",
                    "unit": worst["unit"] if worst else "",
                    "findings": [
                        {"reason": f["reason"], "level": f["level"], "value": str(f["value"]), **f["detail"]}
                        for f in findings
                    ],
                },
            )
        memory["level"] = level
        if level == Level.CRITICAL:
            if previous != Level.CRITICAL:
                memory["episode"] = uuid.uuid4().hex
                memory["marked"] = []
            _mark(ctx, symbol=symbol, tickets=tickets, memory=memory, reason=worst["reason"] if worst else "")
        else:
            memory.pop("episode", None)
            memory.pop("marked", None)
        memory_all[symbol] = memory
    ctx.state.market = memory_all


def _mark(ctx: "_Context", *, symbol: str, tickets: list[int], memory: dict[str, Any], reason: str) -> None:
    new = sorted(t for t in tickets if t not in memory.get("marked", []))
    if not new:
        return
    memory["marked"] = sorted({*memory.get("marked", []), *new})
    closing = ctx.cfg.market_guard_action == MarketGuardAction.CLOSE
    ctx.alert(
        kind=AlertKind.MARKET_MARKED,
        guard=Guard.MARKET,
        level=Level.CRITICAL,
        symbol=symbol,
        message=f"Market {symbol} critical ({reason}): positions {', '.join(f'#{t}' for t in new)} marked for close"
        + ("; closing" if closing else "; alert only (action is 'alert')"),
        detail={"tickets": new, "closing": closing, "episode": memory["episode"]},
    )
    if closing:
        ctx.actions.append(
            (
                "closes",
                {
                    "account_id": ctx.account_id,
                    "trigger": CloseTrigger.MARKET,
                    "trigger_key": f"market:{symbol}:{memory['episode']}",
                    "tickets": new,
                },
            )
        )
