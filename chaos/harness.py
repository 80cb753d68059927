"""The chaos harness: private Redis and PostgreSQL servers on free ports, and the real processes of `make run`
(web, worker, beat, bridge, demo market) started against them, so a test can kill, stop and restart any of them
without touching the machine's own services.

Every server and process lives in its own temporary directory and process group; `Stack.close()` ends them all.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg2

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"
PYTHON = str(BIN / "python")


def free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    predicate: Callable[[], Any], *, timeout: float, interval: float = 0.25, what: str = "condition"
) -> Any:
    """Poll until predicate() is truthy (exceptions count as not yet); raise TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except Exception as exc:  # a service that is still starting raises
            last_error = exc
        else:
            if value:
                return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what} (last error: {last_error!r})")


def _port_answers(port: int) -> bool:
    with contextlib.closing(socket.socket()) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class PrivateRedis:
    """A redis-server of our own, keeping nothing on disk (like the machine's)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.process = subprocess.Popen(  # noqa: S603 - a fixed binary
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=self.workdir,
            stdout=(self.workdir / "redis.log").open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(lambda: _port_answers(self.port), timeout=10, what="private redis")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


def _pg_bin(name: str) -> str:
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)
    found = shutil.which(name) or (str(candidates[0]) if candidates else None)
    if found is None:
        raise RuntimeError(f"PostgreSQL's {name} is not installed (apt-get install postgresql)")
    return found


class PrivatePostgres:
    """A PostgreSQL cluster of our own (initdb in a temporary directory, trust auth on 127.0.0.1).

    PostgreSQL refuses to run as root: as root the cluster belongs to the `postgres` system user."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.datadir = workdir / "pgdata"
        self.logfile = workdir / "postgres.log"
        self.workdir = workdir
        workdir.mkdir(exist_ok=True)
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            pwd.getpwnam("postgres")  # KeyError: no postgres user to run the server as
            self._as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(workdir, "postgres")

    @property
    def dsn(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/mt5guard"

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as_user, *args], check=True, capture_output=True)  # noqa: S603

    def init(self) -> None:
        self._run(_pg_bin("initdb"), "-D", str(self.datadir), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.start()
        self.sql("CREATE DATABASE mt5guard", dbname="postgres")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            _pg_bin("pg_ctl"), "-D", str(self.datadir), "-l", str(self.logfile), "-o", options, "-w", "start"
        )

    def stop(self, mode: str = "immediate") -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(_pg_bin("pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "stop")

    def connect(self, dbname: str = "mt5guard") -> Any:
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=dbname)
        conn.autocommit = True
        return conn

    def sql(
        self, statement: str, params: tuple[Any, ...] = (), *, dbname: str = "mt5guard"
    ) -> list[tuple[Any, ...]]:
        conn = self.connect(dbname)
        try:
            with conn.cursor() as cursor:
                cursor.execute(statement, params)
                return list(cursor.fetchall()) if cursor.description else []
        finally:
            conn.close()


# The processes of Procfile.dev, with ports chosen per stack.
COMMANDS: dict[str, Callable[[Stack], list[str]]] = {
    "bridge": lambda s: [
        PYTHON, "-m", "integrations.mt5.bridge.server", "--backend", "simulated", "--host", "127.0.0.1",
        "--port", str(s.bridge_port), "--secret-env", "MT5_BRIDGE_SECRET",
        "--state-dir", str(s.workdir / "simulated-terminals"),  # as in make run: terminals outlive the process
    ],
    "web": lambda s: [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(s.web_port), "config.asgi:application"],
    "worker": lambda s: [str(BIN / "celery"), "-A", "config", "worker", "-l", "info", "--concurrency", "2"],
    "beat": lambda s: [str(BIN / "celery"), "-A", "config", "beat", "-l", "info", "-s", str(s.workdir / "beat")],
    "demo": lambda s: [PYTHON, "manage.py", "run_demo_market"],
}  # fmt: skip


class Stack:
    """Private services + the real processes, all stopped by close()."""

    def __init__(self, *, extra_env: dict[str, str] | None = None) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="mt5guard-chaos-"))
        os.chmod(self.workdir, 0o755)  # noqa: S103 - the postgres user must reach its data directory
        self.redis = PrivateRedis(self.workdir)
        self.postgres = PrivatePostgres(self.workdir / "pg")
        self.bridge_port = free_port()
        self.web_port = free_port()
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.base",
            "DJANGO_DEBUG": "true",
            "DATABASE_URL": self.postgres.dsn,
            "REDIS_URL": self.redis.url,
            "CELERY_BROKER_URL": self.redis.url,
            "MT5_BRIDGE_URL": f"http://127.0.0.1:{self.bridge_port}",
            "MT5_BRIDGE_SECRET": "chaos-bridge-secret",
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def prepare(self) -> None:
        """Start the private services, migrate, declare the schedule, seed the demo users and accounts."""
        self.redis.start()
        self.postgres.init()
        for command in ("migrate --noinput", "setup_periodic_tasks", "seed_demo_users"):
            self.manage(*command.split())

    def manage(self, *args: str) -> str:
        done = subprocess.run(  # noqa: S603 - our own venv
            [PYTHON, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=120
        )
        if done.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stderr[-2000:]}")
        return done.stdout

    def start(self, *names: str) -> None:
        for name in names:
            log = (self.workdir / f"{name}.log").open("ab")
            self.processes[name] = subprocess.Popen(  # noqa: S603 - our own venv
                COMMANDS[name](self), cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        if "bridge" in names:
            wait_for(lambda: _port_answers(self.bridge_port), timeout=20, what="bridge")
        if "web" in names:
            wait_for(lambda: _port_answers(self.web_port), timeout=30, what="web")

    def start_extra(self, kind: str, name: str) -> None:
        """A second process of a kind (e.g. another beat) under its own name."""
        command = COMMANDS[kind](self)
        if kind == "beat":
            command = [*command[:-1], str(self.workdir / name)]
        if kind == "worker":
            command = [
                *command,
                "-n",
                f"{name}@%h",
            ]  # a node name of its own, as a second machine's worker has
        log = (self.workdir / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(  # noqa: S603 - our own venv
            command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def terminal(self, login: int, server: str = "SimBroker-Demo") -> Any:
        """The bridge's simulated terminal of an account, to script it (sim_* helpers) as the tests do."""
        from integrations.mt5.bridge.client import BridgeClient

        return BridgeClient(
            f"http://127.0.0.1:{self.bridge_port}", self.env["MT5_BRIDGE_SECRET"], login=login, server=server
        )

    def demo_logins(self) -> list[int]:
        return [
            row[0] for row in self.postgres.sql("SELECT login FROM accounts_tradingaccount ORDER BY login")
        ]

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        process = self.processes.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=15)
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def alive(self, name: str) -> bool:
        process = self.processes.get(name)
        return process is not None and process.poll() is None

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        for name in list(self.processes):
            self.kill(name, signal.SIGTERM)
        self.redis.kill()
        self.postgres.stop("immediate")
        if os.environ.get("CHAOS_KEEP") != "1":
            shutil.rmtree(self.workdir, ignore_errors=True)

    # Reads of the private database (plain SQL: the test process is not configured for it).
    def syncs_since(self, since_id: int = 0) -> list[tuple[Any, ...]]:
        return self.postgres.sql(
            "SELECT id, account_id, ok FROM reconciliation_accountsync WHERE id > %s ORDER BY id", (since_id,)
        )

    def last_sync_id(self) -> int:
        rows = self.postgres.sql("SELECT coalesce(max(id), 0) FROM reconciliation_accountsync")
        return int(rows[0][0])

    def active_account_ids(self) -> set[int]:
        return {
            row[0]
            for row in self.postgres.sql("SELECT id FROM accounts_tradingaccount WHERE status = 'active'")
        }


REPORT = ROOT / "var" / "chaos-report.json"


def report(fault: str, **figures: Any) -> None:
    """Keep a fault's measured figures (recovery seconds, losses, duplicates) for docs/RELIABILITY.md."""
    import json

    REPORT.parent.mkdir(exist_ok=True)
    data = json.loads(REPORT.read_text()) if REPORT.exists() else {}
    data[fault] = figures
    REPORT.write_text(json.dumps(data, indent=2, sort_keys=True))


def timed_wait(predicate: Callable[[], Any], *, timeout: float, what: str) -> float:
    """wait_for, returning how many seconds it took."""
    started = time.monotonic()
    wait_for(predicate, timeout=timeout, what=what)
    return round(time.monotonic() - started, 1)
