"""Fault injection for a simulated terminal: scripted failures per API call, latency, and dropped connections.

* `inject(call, last_error, times=1, executed=False)`: the next `times` calls of `call` fail: they return None
  (False for the bool functions) and last_error() reports `last_error`. With `executed=True` the call still takes
  effect inside the terminal first (an order that was filled although the caller saw a timeout).
* `inject_retcode(call, retcode, times=1, executed=False, comment=None)`: for order_send/order_check: the call
  returns a result with that retcode and zeroed fields (e.g. REQUOTE 10004, TIMEOUT 10012); with `executed=True`
  the trade was done anyway.
* `set_latency(call, seconds)`: every call of `call` (or "*" for all) takes that long (via the terminal's sleep).
"""

import threading
from collections import deque
from dataclasses import dataclass


@dataclass
class Fault:
    call: str
    last_error: tuple[int, str] | None = None
    retcode: int | None = None
    comment: str | None = None
    executed: bool = False


class FaultPlan:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queued: dict[str, deque[Fault]] = {}
        self._latency: dict[str, float] = {}

    def inject(
        self, call: str, last_error: tuple[int, str], *, times: int = 1, executed: bool = False
    ) -> None:
        code, description = last_error
        self._add(Fault(call, last_error=(int(code), str(description)), executed=executed), times)

    def inject_retcode(
        self, call: str, retcode: int, *, times: int = 1, executed: bool = False, comment: str | None = None
    ) -> None:
        if call not in ("order_send", "order_check"):
            raise ValueError("retcode faults apply to order_send and order_check only")
        self._add(Fault(call, retcode=retcode, comment=comment, executed=executed), times)

    def _add(self, fault: Fault, times: int) -> None:
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._queued.setdefault(fault.call, deque()).extend([fault] * times)

    def take(self, call: str) -> Fault | None:
        with self._lock:
            queue = self._queued.get(call)
            return queue.popleft() if queue else None

    def pending(self, call: str) -> int:
        with self._lock:
            return len(self._queued.get(call, ()))

    def set_latency(self, call: str, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("latency must be >= 0")
        with self._lock:
            self._latency[call] = seconds

    def latency(self, call: str) -> float:
        with self._lock:
            return self._latency.get(call, 0.0) + self._latency.get("*", 0.0)

    def clear(self) -> None:
        with self._lock:
            self._queued.clear()
            self._latency.clear()
