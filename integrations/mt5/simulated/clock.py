"""Time for a simulated terminal: real or virtual (settable), plus the trade server's UTC offset.

Every epoch number the MT5 API reports is the trade server's *wall clock* (REFERENCE §10): an instant 12:00 UTC on a
server at UTC+2 is reported as the epoch of 14:00. `server_ms()` gives exactly that number. The offset is fixed (no
DST switching) and configurable.
"""

import threading
import time
from datetime import UTC, datetime, timedelta

DEFAULT_SERVER_UTC_OFFSET = timedelta(hours=2)
# A Monday morning, so a virtual clock starts inside the trading week.
DEFAULT_VIRTUAL_START = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)


class SimClock:
    """A clock that is either real (`time.time()`) or virtual (starts at `start`, moves only when told).

    Shared by the market and the trading engine of one terminal. Thread-safe.
    """

    def __init__(
        self,
        *,
        virtual: bool = False,
        start: datetime | None = None,
        server_utc_offset: timedelta | int = DEFAULT_SERVER_UTC_OFFSET,
    ) -> None:
        if isinstance(server_utc_offset, int):
            server_utc_offset = timedelta(seconds=server_utc_offset)
        self.virtual = virtual
        self.server_utc_offset = server_utc_offset
        self._lock = threading.Lock()
        start = start or DEFAULT_VIRTUAL_START
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self._virtual_ms = int(start.timestamp() * 1000)

    # Pickled with the terminal it drives (simulated/persistence.py); the lock is recreated.
    def __getstate__(self) -> dict[str, object]:
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @classmethod
    def real(cls, *, server_utc_offset: timedelta | int = DEFAULT_SERVER_UTC_OFFSET) -> "SimClock":
        return cls(virtual=False, server_utc_offset=server_utc_offset)

    @classmethod
    def fixed(
        cls, start: datetime | None = None, *, server_utc_offset: timedelta | int = DEFAULT_SERVER_UTC_OFFSET
    ) -> "SimClock":
        return cls(virtual=True, start=start, server_utc_offset=server_utc_offset)

    # --- reading -------------------------------------------------------------------------------------------------
    def utc_ms(self) -> int:
        """True UTC epoch milliseconds."""
        if not self.virtual:
            return int(time.time() * 1000)
        with self._lock:
            return self._virtual_ms

    def now(self) -> datetime:
        """The current instant, aware UTC."""
        return datetime.fromtimestamp(self.utc_ms() / 1000, tz=UTC)

    @property
    def offset_ms(self) -> int:
        return int(self.server_utc_offset.total_seconds() * 1000)

    def server_ms(self) -> int:
        """Epoch milliseconds of the trade server's wall clock (what MT5 reports as `time_msc`)."""
        return self.utc_ms() + self.offset_ms

    def server_s(self) -> int:
        return self.server_ms() // 1000

    def server_to_utc(self, server_epoch_s: int) -> datetime:
        return datetime.fromtimestamp(server_epoch_s - self.offset_ms // 1000, tz=UTC)

    # --- moving (virtual only) -----------------------------------------------------------------------------------
    def advance(self, seconds: float) -> None:
        if not self.virtual:
            raise RuntimeError("cannot advance a real-time clock")
        if seconds < 0:
            raise ValueError("time only moves forward")
        with self._lock:
            self._virtual_ms += round(seconds * 1000)

    def set(self, when: datetime) -> None:
        if not self.virtual:
            raise RuntimeError("cannot set a real-time clock")
        if when.tzinfo is None:
            raise ValueError("when must be timezone-aware")
        target = int(when.timestamp() * 1000)
        with self._lock:
            if target < self._virtual_ms:
                raise ValueError("time only moves forward")
            self._virtual_ms = target
