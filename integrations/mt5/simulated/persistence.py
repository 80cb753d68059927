"""Simulated terminals that outlive their process: each terminal's whole state in one file under a directory.

What is kept is everything the trade server and the market hold: balance, credit, positions, pending orders, deal
and order history, ticket counters, the clock (virtual time or the real clock's offset) and every symbol's price walk
(its random generator included, so prices go on exactly where they stopped). Injected faults and latencies are not
kept: they belong to the test or demo that set them.

Files are pickles written atomically (a temporary file in the same directory, fsync, then os.replace), so a crash
mid-write leaves the previous state in place. A pickle runs code when it is loaded: the directory must be writable
only by the user that runs the bridge (the default is the project's own `var/`). A file that cannot be read (another
simulator version, a truncated disk) is logged and set aside as `<name>.unreadable`, and that account starts afresh.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from integrations.mt5.simulated.registry import TerminalRegistry
    from integrations.mt5.simulated.terminal import SimulatedTerminal

logger = logging.getLogger(__name__)

FORMAT = 1  # bump when a change to the simulator makes older files unloadable
_SUFFIX = ".terminal"


class TerminalStateStore:
    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)

    def path_for(self, login: int, server: str) -> Path:
        # The server name is free text: hash it into the file name, keep the login readable.
        digest = hashlib.sha256(server.encode()).hexdigest()[:16]
        return self.directory / f"{int(login)}-{digest}{_SUFFIX}"

    def save(self, terminal: SimulatedTerminal) -> Path:
        """Write one terminal's state atomically; the terminal's lock is held only while it is serialised."""
        data = terminal.state_bytes()
        path = self.path_for(terminal.login_id, terminal.server)
        payload = pickle.dumps(
            (FORMAT, terminal.login_id, terminal.server, data), protocol=pickle.HIGHEST_PROTOCOL
        )
        fd, temporary = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return path

    def save_all(self, registry: TerminalRegistry) -> int:
        saved = 0
        for terminal in registry:
            try:
                self.save(terminal)
                saved += 1
            except Exception:  # one terminal that cannot be written must not stop the others from being saved
                logger.exception("simulated terminal %s: state not saved", terminal)
        return saved

    def forget(self, login: int, server: str) -> None:
        self.path_for(login, server).unlink(missing_ok=True)

    def load_into(self, registry: TerminalRegistry) -> int:
        """Put every saved terminal into `registry`; returns how many were restored."""
        restored = 0
        for path in sorted(self.directory.glob(f"*{_SUFFIX}")):
            terminal = self._load(path)
            if terminal is not None:
                registry.adopt(terminal)
                restored += 1
        return restored

    def _load(self, path: Path) -> SimulatedTerminal | None:
        from integrations.mt5.simulated.terminal import SimulatedTerminal

        try:
            # Our own files in a directory only the bridge's user can write (see the module docstring).
            version, login, server, data = pickle.loads(path.read_bytes())  # noqa: S301
            if version != FORMAT:
                raise ValueError(f"format {version}, expected {FORMAT}")
            terminal = pickle.loads(data)  # noqa: S301
            if not isinstance(terminal, SimulatedTerminal) or (terminal.login_id, terminal.server) != (
                login,
                server,
            ):
                raise ValueError("not the terminal the file is named for")
        except Exception as exc:
            aside = path.with_suffix(".unreadable")
            logger.warning(
                "simulated terminal state %s unreadable (%s); set aside as %s, the account starts afresh",
                path.name,
                exc,
                aside.name,
            )
            os.replace(path, aside)
            return None
        return terminal
