"""The guards' clock: aware UTC `now()` and `sleep()`, replaceable as a whole by the scenario runner.

Production reads the real clock. `run_scenario` installs a virtual clock (process-wide, so the threads of a
concurrent-close step see it too) for the duration of a replay.
"""

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from django.utils import timezone

_lock = threading.Lock()
_now: Callable[[], datetime] | None = None
_sleep: Callable[[float], None] | None = None
_generation = 0  # bumped whenever the clock is replaced: anything cached in the old clock's time is void


def clock_generation() -> int:
    """Changes whenever a clock override starts or ends (caches keyed on guard_now() must start afresh)."""
    return _generation


def guard_now() -> datetime:
    override = _now
    return override() if override is not None else timezone.now()


def guard_sleep(seconds: float) -> None:
    override = _sleep
    if override is not None:
        override(seconds)
    elif seconds > 0:
        time.sleep(seconds)


@contextmanager
def clock_override(*, now: Callable[[], datetime], sleep: Callable[[float], None]) -> Iterator[None]:
    global _now, _sleep, _generation
    with _lock:
        previous = (_now, _sleep)
        _now, _sleep = now, sleep
        _generation += 1
    try:
        yield
    finally:
        with _lock:
            _now, _sleep = previous
            _generation += 1
