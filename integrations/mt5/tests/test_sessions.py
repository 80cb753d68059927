"""Circuit breaker, back-off and ManagedGateway (reconnect, fail fast, credentials never leak)."""

import logging
import os
import uuid

import pytest

from integrations.mt5.circuit import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    Backoff,
    BreakerState,
    CircuitBreaker,
    MemoryBreakerStore,
    RedisBreakerStore,
)
from integrations.mt5.errors import (
    GatewayAuthFailed,
    GatewayCircuitOpen,
    GatewayInvalidRequest,
    GatewayTimeout,
    GatewayUnavailable,
)
from integrations.mt5.selection import ConnectionConfig
from integrations.mt5.sessions import ManagedGateway
from integrations.mt5.terminal import TerminalGateway
from integrations.mt5.tests import fakes

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
PASSWORD = "hunter2-Sup3rSecret!"


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def breaker(clock: Clock, store=None, threshold: int = 3, reset: float = 30.0) -> CircuitBreaker:
    return CircuitBreaker(
        "account-1",
        store=store or MemoryBreakerStore(),
        failure_threshold=threshold,
        reset_seconds=reset,
        clock=clock,
    )


# ---------------------------------------------------------------------- breaker transitions


def test_closed_breaker_allows_and_opens_after_threshold_consecutive_failures(clock):
    b = breaker(clock)
    assert b.allow()[0]
    b.record_failure("one")
    b.record_failure("two")
    assert b.state.state == CLOSED
    assert b.state.failures == 2
    b.record_failure("three")
    state = b.state
    assert state.state == OPEN
    assert state.failures == 3
    assert state.opened_at == clock.now
    assert state.last_error == "three"


def test_a_success_resets_the_consecutive_count(clock):
    b = breaker(clock)
    b.record_failure()
    b.record_failure()
    b.record_success()
    b.record_failure()
    assert b.state.state == CLOSED
    assert b.state.failures == 1


def test_open_breaker_refuses_until_reset_then_grants_one_half_open_trial(clock):
    b = breaker(clock, threshold=1)
    b.record_failure("down")
    clock.advance(29.9)
    assert b.allow()[0] is False
    clock.advance(0.2)
    allowed, state = b.allow()
    assert allowed
    assert state.state == HALF_OPEN
    # A second caller while the trial runs is refused.
    assert b.allow()[0] is False


def test_half_open_success_closes(clock):
    b = breaker(clock, threshold=1)
    b.record_failure()
    clock.advance(31)
    assert b.allow()[0]
    b.record_success()
    assert b.state == BreakerState(CLOSED, 0, None, None, "", clock.now)
    assert b.allow()[0]


def test_half_open_failure_reopens_with_a_fresh_reset_time(clock):
    b = breaker(clock, threshold=3)
    for _ in range(3):
        b.record_failure()
    clock.advance(31)
    assert b.allow()[0]
    b.record_failure("still down")
    state = b.state
    assert state.state == OPEN
    assert state.opened_at == clock.now
    assert b.allow()[0] is False


def test_a_trial_that_never_reports_is_granted_again_after_reset(clock):
    b = breaker(clock, threshold=1)
    b.record_failure()
    clock.advance(31)
    assert b.allow()[0]
    clock.advance(10)
    assert b.allow()[0] is False
    clock.advance(25)
    assert b.allow()[0]


def test_threshold_must_be_positive(clock):
    with pytest.raises(ValueError, match="threshold"):
        breaker(clock, threshold=0)


# ---------------------------------------------------------------------- backoff


def test_backoff_ceiling_grows_exponentially_up_to_the_cap():
    backoff = Backoff(base=0.5, cap=10.0)
    assert [backoff.ceiling(n) for n in range(0, 8)] == [0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert backoff.ceiling(10_000) == 10.0


def test_backoff_full_jitter_spans_zero_to_the_ceiling():
    assert Backoff(base=1, cap=60, rng=lambda: 0.0).delay(5) == 0.0
    assert Backoff(base=1, cap=60, rng=lambda: 0.999999).delay(5) == pytest.approx(16.0, rel=1e-5)
    assert Backoff(base=1, cap=60, rng=lambda: 0.5).delay(30) == 30.0
    real = Backoff(base=1, cap=8)
    delays = [real.delay(4) for _ in range(500)]
    assert all(0.0 <= d <= 8.0 for d in delays)
    assert max(delays) - min(delays) > 4  # really jittered


def test_backoff_rejects_bad_bounds():
    with pytest.raises(ValueError, match="base"):
        Backoff(base=0, cap=1)
    with pytest.raises(ValueError, match="base"):
        Backoff(base=5, cap=1)


# ---------------------------------------------------------------------- ManagedGateway


def managed(api, clock, *, threshold=3, reset=30.0, rng=lambda: 1.0, store=None) -> ManagedGateway:
    terminal = TerminalGateway(api, login=5001, password=PASSWORD, server="Sim-Demo", server_utc_offset=7200)
    return ManagedGateway(
        terminal,
        account_key="account-1",
        breaker=breaker(clock, store=store, threshold=threshold, reset=reset),
        backoff=Backoff(base=1.0, cap=8.0, rng=rng),
        clock=clock,
    )


def test_first_call_connects_and_later_calls_reuse_the_connection(clock):
    api = fakes.ScriptedApi()
    gw = managed(api, clock)
    gw.account()
    gw.positions()
    assert api.names().count("initialize") == 1
    assert api.names().count("login") == 1
    assert gw.is_connected


def test_unavailable_drops_the_connection_and_the_next_call_reconnects(clock):
    api = fakes.ScriptedApi()
    gw = managed(api, clock)
    gw.account()
    api.fail("positions_get", -10004, "No IPC connection")
    with pytest.raises(GatewayUnavailable):
        gw.positions()
    assert not gw.is_connected
    assert api.names()[-1] == "shutdown"
    assert gw.positions() == ()
    assert api.names().count("initialize") == 2
    assert gw.breaker.state.failures == 0  # the success reset the count


def test_timeout_on_order_send_drops_and_is_not_retried(clock):
    api = fakes.ScriptedApi()
    gw = managed(api, clock)
    gw.connect()
    api.fail("order_send", -10005, "IPC timeout")
    request = fakes_request()
    with pytest.raises(GatewayTimeout):
        gw.order_send(request)
    assert api.names().count("order_send") == 1
    assert not gw.is_connected


def fakes_request():
    from decimal import Decimal

    from integrations.mt5.types import TradeRequest

    return TradeRequest(
        action=1,
        symbol="EURUSD",
        volume=Decimal("0.1"),
        type=1,
        price=Decimal("1.085"),
        deviation=10,
        magic=990001,
        comment="close",
        type_filling=0,
        position=1001,
    )


def test_failed_reconnects_back_off_without_touching_the_terminal(clock):
    api = fakes.ScriptedApi()
    gw = managed(api, clock, threshold=100, rng=lambda: 1.0)
    api.fail("initialize", -10003, "IPC initialize failed", times=3)
    with pytest.raises(GatewayUnavailable):
        gw.account()  # attempt 1 fails: wait up to 1 s
    calls = len(api.calls)
    with pytest.raises(GatewayUnavailable, match="backing off"):
        gw.account()
    assert len(api.calls) == calls  # nothing reached the terminal
    clock.advance(1.01)
    with pytest.raises(GatewayUnavailable, match="IPC initialize failed"):
        gw.account()  # attempt 2 fails: wait up to 2 s
    clock.advance(1.5)
    with pytest.raises(GatewayUnavailable, match="backing off"):
        gw.account()
    clock.advance(0.6)
    with pytest.raises(GatewayUnavailable, match="IPC initialize failed"):
        gw.account()  # attempt 3: wait up to 4 s
    clock.advance(4.01)
    assert gw.account().login == 5001  # attempt 4 succeeds
    assert api.names().count("initialize") == 4


def test_circuit_opens_after_threshold_and_then_makes_no_terminal_call(clock):
    api = fakes.ScriptedApi()
    gw = managed(api, clock, threshold=2)
    gw.connect()
    api.fail("account_info", -10004, "No IPC connection")
    with pytest.raises(GatewayUnavailable):
        gw.account()
    api.fail("initialize", -10004, "No IPC connection")
    with pytest.raises(GatewayUnavailable):
        gw.account()
    assert gw.breaker.state.state == OPEN
    calls = len(api.calls)
    with pytest.raises(GatewayCircuitOpen, match="circuit open for account-1") as caught:
        gw.account()
    assert len(api.calls) == calls
    assert caught.value.retryable
    health = gw.health()
    assert not health.connected
    assert "circuit open" in health.error
    assert len(api.calls) == calls
    # After the reset time one trial goes through (ignoring back-off) and closes the circuit.
    clock.advance(31)
    assert gw.account().login == 5001
    assert gw.breaker.state.state == CLOSED


def test_errors_that_prove_the_link_works_do_not_count(clock):
    api = fakes.ScriptedApi()
    gw = managed(api, clock, threshold=1)
    gw.connect()
    with pytest.raises(GatewayInvalidRequest):
        gw.symbol("NOPE")
    assert gw.breaker.state.state == CLOSED
    assert gw.is_connected


def test_auth_failures_count_into_the_breaker(clock):
    api = fakes.ScriptedApi()
    gw = managed(api, clock, threshold=1)
    api.fail("login", -6, "Terminal: Authorization failed")
    with pytest.raises(GatewayAuthFailed):
        gw.connect()
    assert gw.breaker.state.state == OPEN
    with pytest.raises(GatewayCircuitOpen):
        gw.connect()


def test_health_goes_through_the_session(clock):
    api = fakes.ScriptedApi()
    gw = managed(api, clock)
    health = gw.health(symbols=["EURUSD"])
    assert health.connected
    assert health.error == ""
    assert gw.is_connected


def test_circuit_state_for_pages(clock):
    gw = managed(fakes.ScriptedApi(), clock, threshold=1)
    gw.breaker.record_failure("boom")
    assert gw.circuit_state() == {"state": OPEN, "failures": 1, "opened_at": clock.now, "last_error": "boom"}


# ---------------------------------------------------------------------- Redis-backed state


@pytest.fixture
def redis_prefix():
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL)
    prefix = f"test:mt5:circuit:{uuid.uuid4().hex}:"
    yield prefix
    for key in client.scan_iter(prefix + "*"):
        client.delete(key)
    client.close()


def test_redis_state_is_shared_between_breaker_instances(clock, redis_prefix):
    worker_a = breaker(clock, store=RedisBreakerStore.from_url(REDIS_URL, prefix=redis_prefix), threshold=2)
    worker_b = breaker(clock, store=RedisBreakerStore.from_url(REDIS_URL, prefix=redis_prefix), threshold=2)
    worker_a.record_failure("a failed")
    worker_b.record_failure("b failed")
    assert worker_a.state.state == OPEN
    assert worker_a.state.last_error == "b failed"
    assert worker_b.allow()[0] is False
    clock.advance(31)
    assert worker_a.allow()[0]  # A wins the trial...
    assert worker_b.allow()[0] is False  # ...so B is refused
    worker_a.record_success()
    assert worker_b.state.state == CLOSED
    assert worker_b.allow()[0]


def test_managed_gateways_in_two_processes_share_the_circuit(clock, redis_prefix):
    api_a, api_b = fakes.ScriptedApi(), fakes.ScriptedApi()
    gw_a = managed(
        api_a, clock, threshold=1, store=RedisBreakerStore.from_url(REDIS_URL, prefix=redis_prefix)
    )
    gw_b = managed(
        api_b, clock, threshold=1, store=RedisBreakerStore.from_url(REDIS_URL, prefix=redis_prefix)
    )
    api_a.fail("initialize", -10004, "No IPC connection")
    with pytest.raises(GatewayUnavailable):
        gw_a.account()
    with pytest.raises(GatewayCircuitOpen):
        gw_b.account()
    assert api_b.calls == []


def test_redis_outage_degrades_to_per_process_state(clock, caplog):
    store = RedisBreakerStore.from_url("redis://127.0.0.1:1/0")  # nothing listens on port 1
    b = breaker(clock, store=store, threshold=1)
    assert b.allow()[0]
    b.record_failure("down")
    assert b.allow()[0] is False
    assert "Redis unavailable" in caplog.text


# ---------------------------------------------------------------------- credentials never leak


def test_credentials_never_appear_in_logs_reprs_or_errors(clock, caplog, redis_prefix):
    caplog.set_level(logging.DEBUG)
    config = ConnectionConfig(
        account_key="account-1",
        backend="bridge",
        login=5001,
        server="Sim-Demo",
        password=PASSWORD,
        bridge_url="http://127.0.0.1:1",
        bridge_secret=PASSWORD + "-bridge",
    )
    api = fakes.ScriptedApi()
    gw = managed(api, clock, threshold=2, store=RedisBreakerStore.from_url(REDIS_URL, prefix=redis_prefix))
    errors = []
    api.fail("login", -6, "Terminal: Authorization failed", times=2)
    for _ in range(3):
        try:
            gw.account()
        except Exception as exc:
            errors.append(exc)
        clock.advance(60)
    api.fail("positions_get", -10005, "IPC timeout")
    try:
        gw.positions()
    except Exception as exc:
        errors.append(exc)
    seen = [
        caplog.text,
        repr(config),
        str(config),
        repr(gw),
        repr(gw.inner),
        repr(gw.breaker),
        str(gw.circuit_state()),
        *(repr(e) for e in errors),
        *(str(e) for e in errors),
    ]
    assert len(errors) == 3
    assert "Authorization failed" in caplog.text or any("Authorization" in str(e) for e in errors)
    for text in seen:
        assert PASSWORD not in text
    # The password really was used, so the check above means something.
    assert any(kwargs.get("password") == PASSWORD for name, _, kwargs in api.calls if name == "login")


class _CountingStore(MemoryBreakerStore):
    def __init__(self) -> None:
        super().__init__()
        self.loads = 0
        self.updates = 0

    def load(self, key):
        self.loads += 1
        return super().load(key)

    def update(self, key, change):
        self.updates += 1
        return super().update(key, change)


def test_a_success_on_a_closed_circuit_costs_one_store_read_and_no_write(clock):
    store = _CountingStore()
    gw = managed(fakes.ScriptedApi(), clock, store=store)
    gw.account()
    store.loads = 0
    gw.positions()
    assert (store.loads, store.updates) == (1, 0)  # allow()'s read only


def test_a_success_after_failures_still_resets_the_count(clock):
    store = _CountingStore()
    api = fakes.ScriptedApi()
    gw = managed(api, clock, store=store)
    gw.account()
    api.fail("positions_get", -10004, "No IPC connection")
    with pytest.raises(GatewayUnavailable):
        gw.positions()
    assert gw.breaker.state.failures == 1
    gw.positions()
    assert gw.breaker.state.failures == 0


def test_a_failure_recorded_elsewhere_during_a_call_stays_counted(clock):
    store = _CountingStore()
    b = breaker(clock, store=store)
    _allowed, seen = b.allow()
    b.record_failure("another process")
    b.record_success(seen=seen)  # overlapped: "success, then that failure" is a valid order
    assert b.state.failures == 1
    b.record_success()
    assert b.state.failures == 0


def test_a_call_right_behind_another_callers_trial_waits_for_its_outcome_instead_of_losing_a_cycle(clock):
    """After an outage the health probe may win the half-open trial a moment before the sync comes: the sync waits
    (up to trial_wait_seconds) for the trial's outcome and goes through, rather than failing until the next cycle."""
    api = fakes.ScriptedApi()
    store = MemoryBreakerStore()
    gw = managed(api, clock, threshold=1, reset=8.0, store=store)
    gw.trial_wait_seconds = 3.0
    other = breaker(clock, store=store, threshold=1, reset=8.0)  # the probe, in another process
    other.record_failure("down")
    clock.advance(8)
    assert other.allow()[0]  # the probe holds the trial now

    def sleep(seconds: float) -> None:
        clock.advance(seconds)
        if clock.now >= 1_000_008.0 + 1.0:
            other.record_success()  # the probe's trial succeeded a second later

    gw._sleep = sleep
    assert gw.account().login == 5001
    assert gw.breaker.state.state == CLOSED


def test_a_call_waits_for_a_trial_only_so_long_then_fails_fast(clock):
    api = fakes.ScriptedApi()
    store = MemoryBreakerStore()
    gw = managed(api, clock, threshold=1, reset=8.0, store=store)
    gw.trial_wait_seconds = 3.0
    gw._sleep = clock.advance
    other = breaker(clock, store=store, threshold=1, reset=8.0)
    other.record_failure("down")
    with pytest.raises(GatewayCircuitOpen, match="next trial in 8s"):
        gw.account()  # 8 s away: not worth waiting
    clock.advance(8)
    assert other.allow()[0]  # the trial hangs (a killed worker)
    started = clock.now
    with pytest.raises(GatewayCircuitOpen, match="a trial call is in progress"):
        gw.account()
    assert clock.now - started == pytest.approx(3.0, abs=0.25)
    assert api.calls == []


def test_the_calls_of_one_reading_share_one_look_at_the_circuit(clock):
    store = _CountingStore()
    api = fakes.ScriptedApi()
    gw = managed(api, clock, store=store)
    gw.account()
    store.loads = 0
    with gw.reading():
        gw.account()
        gw.positions()
        gw.terminal()
    assert (store.loads, store.updates) == (1, 0)  # one read for the whole reading, not one per call
    gw.positions()
    assert store.loads == 2  # outside a reading: every call looks again


def test_a_failure_inside_a_reading_makes_the_next_call_look_again(clock):
    store = _CountingStore()
    api = fakes.ScriptedApi()
    gw = managed(api, clock, store=store, threshold=1)
    gw.account()
    with gw.reading():
        gw.account()
        api.fail("positions_get", -10004, "No IPC connection")
        with pytest.raises(GatewayUnavailable):
            gw.positions()
        with pytest.raises(GatewayCircuitOpen):  # the breaker opened: the next call reads it and is refused
            gw.terminal()
