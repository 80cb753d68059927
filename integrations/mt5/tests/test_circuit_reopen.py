"""The circuit's open period: short the first time (a terminal back from a short outage is found by the next sync
cycle), doubling with each failed trial up to a cap (a terminal that stays down is asked ever more rarely)."""

from integrations.mt5.circuit import CLOSED, HALF_OPEN, OPEN, CircuitBreaker, MemoryBreakerStore


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def _breaker(clock: Clock) -> CircuitBreaker:
    return CircuitBreaker(
        "account-1", store=MemoryBreakerStore(), failure_threshold=2, reset_seconds=8, max_reset_seconds=30,
        clock=clock,
    )  # fmt: skip


def test_a_failed_trial_doubles_the_open_period_up_to_the_cap_and_a_success_starts_over():
    clock = Clock()
    breaker = _breaker(clock)
    breaker.record_failure("down")
    assert breaker.record_failure("down").state == OPEN
    waits = []
    for _ in range(4):
        opened = clock.now
        while not breaker.allow()[0]:
            clock.now += 1
        waits.append(clock.now - opened)
        assert breaker.state.state == HALF_OPEN
        breaker.record_failure("still down")
    assert waits == [8, 16, 30, 30]

    while not breaker.allow()[0]:
        clock.now += 1
    breaker.record_success()
    assert breaker.state.state == CLOSED
    assert breaker.state.reopens == 0
    breaker.record_failure("down again")
    breaker.record_failure("down again")
    opened = clock.now
    while not breaker.allow()[0]:
        clock.now += 1
    assert clock.now - opened == 8  # a new outage starts from the short period


def test_the_message_of_a_refused_call_names_the_real_wait():
    clock = Clock()
    breaker = _breaker(clock)
    breaker.record_failure("down")
    breaker.record_failure("down")
    clock.now += 8
    assert breaker.allow()[0]
    breaker.record_failure("still down")
    state = breaker.state
    assert breaker.open_seconds(state) == 16
