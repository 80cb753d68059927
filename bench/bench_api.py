"""The cached API read against a bare view, on the server the README runs: `.venv/bin/python bench/bench_api.py`.

One command: creates a throw-away PostgreSQL database (BENCH_DATABASE_NAME, default `bench_mt5guard_api`, dropped at
the end) with an owner, an
account with a snapshot and a guard state, starts daphne (as `make run` does, one process) on a free port with the
project's URLs plus one bare view returning the same JSON from memory (bench/api_urls.py), then drives it with an
asyncio HTTP/1.1 keep-alive client. `--processes N` starts N daphnes sharing one listening socket (`daphne --fd`,
the kernel spreads the connections): docs/DEPLOY.md's "one web process per core"; 1 is what `make run` runs.

1. throughput: GET /api/v1/accounts/<id>/guards/ (JWT, Redis-cached status read) vs GET /bench/bare/ (no auth,
   no cache, no DRF), each for --seconds at --connections, alternated --rounds times; the ratio is cached / bare
   (goal ≥ 0.8); the same JSON from an async bare view (bench/bare-async/) is printed for reference;
2. latency: the cached read at 100 concurrent connections for --seconds: p50 / p95 / p99 and errors (goal p99 ≤
   50 ms, 0 errors), first closed loop (each connection sends its next request as soon as the answer is in: the
   server saturated, so latency = 100 / throughput), then open loop at each --rates total (100 clients each
   polling every 100/rate seconds: the latency a client sees at that load).

The client runs on the same machine (one process); its CPU counts against the server's. Uses the test settings'
Redis (TEST_REDIS_URL, db 15 by default) for the cache.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
os.environ["TEST_DATABASE_NAME"] = os.environ.get("BENCH_DATABASE_NAME", "bench_mt5guard_api")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import setup_test_environment, teardown_test_environment  # noqa: E402


def _seed() -> tuple[int, str]:
    from decimal import Decimal

    from django.utils import timezone
    from rest_framework_simplejwt.tokens import RefreshToken

    from accounts.models import AccountSnapshot, Role
    from accounts.services import trading_account_create, user_create
    from guards.models import GuardState

    owner = user_create(username="bench-owner", password="bench-owner-pass-1", role=Role.OWNER)  # noqa: S106
    account = trading_account_create(owner=owner, login=4_200_001, server="Bench-Demo", label="bench")
    now = timezone.now()
    snapshot = AccountSnapshot.objects.create(
        account=account, balance=Decimal("10000"), equity=Decimal("9700"), margin=Decimal("300"),
        margin_free=Decimal("9400"), currency="USD", taken_at=now, server_time=now,
    )  # fmt: skip
    account.latest_snapshot = snapshot
    account.save(update_fields=["latest_snapshot"])
    GuardState.objects.create(
        account=account, peak_equity=Decimal("10000"), day_anchor=Decimal("10000"), drawdown_percent=Decimal("3"),
        daily_loss_percent=Decimal("3"), evaluated_at=now,
    )  # fmt: skip
    return account.pk, str(RefreshToken.for_user(owner).access_token)


def _listening_socket() -> socket.socket:
    """One listening socket on a free port, inherited by every server process (`daphne --fd`)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def _uptime() -> str:
    uptime = shutil.which("uptime")
    if uptime is None:
        return f"load average {os.getloadavg()}"
    return subprocess.run([uptime], capture_output=True, text=True, check=False).stdout.strip()  # noqa: S603


async def _get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return status


ERROR_STATUSES: dict[str, int] = {}


async def _load(
    port: int, request: bytes, *, connections: int, seconds: float, rate: float | None = None
) -> tuple[list[float], int]:
    """`connections` keep-alive connections, each sending requests back to back for `seconds` (closed loop), or,
    with `rate`, together `rate` requests per second on a fixed schedule (open loop: each connection sends every
    connections/rate seconds; a request sent late because the previous one had not come back is timed from when
    it was due, so a slow server is not flattered)."""
    latencies: list[float] = []
    errors = 0
    begin = time.perf_counter()
    deadline = begin + seconds
    period = connections / rate if rate else 0.0

    async def worker(index: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        due = begin + (index * period / connections if period else 0.0)
        try:
            while time.perf_counter() < deadline:
                if period:
                    await asyncio.sleep(max(0.0, due - time.perf_counter()))
                    if due >= deadline:
                        break
                    start = due
                    due += period
                else:
                    start = time.perf_counter()
                try:
                    status = await _get(reader, writer, request)
                except (OSError, asyncio.IncompleteReadError):
                    errors += 1
                    ERROR_STATUSES["disconnect"] = ERROR_STATUSES.get("disconnect", 0) + 1
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    continue
                latencies.append(time.perf_counter() - start)
                if status != 200:
                    errors += 1
                    ERROR_STATUSES[str(status)] = ERROR_STATUSES.get(str(status), 0) + 1
        finally:
            writer.close()

    await asyncio.gather(*(worker(i) for i in range(connections)))
    return latencies, errors


def _request(path: str, token: str | None = None) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: keep-alive\r\n\r\n".encode()


def _wait_for(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the server did not start")


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=10, help="for the throughput comparison")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--processes", type=int, default=1, help="daphne processes sharing the listening socket"
    )
    parser.add_argument(
        "--rates", type=float, nargs="*", default=[50.0, 100.0],
        help="total req/s of the open-loop runs at 100 connections (one run per rate)",
    )  # fmt: skip
    args = parser.parse_args()

    print(f"start: {_uptime()}", flush=True)
    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    servers: list[subprocess.Popen[bytes]] = []
    try:
        account_id, token = _seed()
        bench_db = connection.settings_dict["NAME"]
        connection.close()
        from django.test import Client

        cached_path = f"/api/v1/accounts/{account_id}/guards/"
        body = Client().get(cached_path, headers={"Authorization": f"Bearer {token}"}).content
        with tempfile.NamedTemporaryFile("wb", suffix=".json", delete=False) as bare_json:
            bare_json.write(body)
        listener = _listening_socket()
        port = int(listener.getsockname()[1])
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "bench.api_server_settings",
            "BENCH_API_DB": bench_db,
            "BENCH_API_BARE_JSON": bare_json.name,
        }
        server_log = open(Path(tempfile.gettempdir()) / "bench_api_server.log", "wb")  # noqa: SIM115
        for _ in range(args.processes):
            servers.append(
                subprocess.Popen(  # noqa: S603
                    [
                        str(ROOT / ".venv/bin/daphne"),
                        "--fd",
                        str(listener.fileno()),
                        "config.asgi:application",
                    ],
                    cwd=ROOT,
                    env=env,
                    stdout=server_log,
                    stderr=server_log,
                    pass_fds=(listener.fileno(),),
                )
            )
        listener.close()
        _wait_for(port)
        cached, bare = _request(cached_path, token), _request("/bench/bare/")
        bare_async = _request("/bench/bare-async/")
        for request in (cached, bare, bare_async):  # warm-up: imports, connections, cache (every process)
            asyncio.run(_load(port, request, connections=4 * args.processes, seconds=2))
        rates: dict[str, list[float]] = {"cached": [], "bare": [], "bare_async": []}
        for _ in range(args.rounds):
            for name, request in (("bare", bare), ("cached", cached), ("bare_async", bare_async)):
                latencies, errors = asyncio.run(
                    _load(port, request, connections=args.connections, seconds=args.seconds)
                )
                if errors:
                    print(f"{name}: {errors} errors {ERROR_STATUSES}", file=sys.stderr)
                rates[name].append(len(latencies) / args.seconds)
        latencies, errors = asyncio.run(_load(port, cached, connections=100, seconds=args.seconds))
        paced: list[tuple[float, list[float], int]] = []
        for rate in args.rates:
            paced_latencies, paced_errors = asyncio.run(
                _load(port, cached, connections=100, seconds=args.seconds, rate=rate)
            )
            paced.append((rate, paced_latencies, paced_errors))
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(10)
        connection.creation.destroy_test_db(old_name, verbosity=0)
        teardown_test_environment()

    bare_rate, cached_rate = statistics.mean(rates["bare"]), statistics.mean(rates["cached"])
    bare_async_rate = statistics.mean(rates["bare_async"])
    print(
        f"daphne, {args.processes} process(es); {args.connections} connections x {args.seconds:.0f} s x "
        f"{args.rounds} rounds"
    )
    print(f"{'read':<44}{'req/s':>10}")
    print(f"{'bare view, same JSON from memory':<44}{bare_rate:>10.0f}")
    print(f"{'GET /api/v1/accounts/<id>/guards/ (cached)':<44}{cached_rate:>10.0f}")
    print(f"{'ratio cached / bare (goal >= 0.8)':<44}{cached_rate / bare_rate:>10.2f}")
    print(f"{'(reference) bare async view, same JSON':<44}{bare_async_rate:>10.0f}")
    print(f"{'(reference) ratio cached / bare async':<44}{cached_rate / bare_async_rate:>10.2f}")
    print()
    print(f"cached read, 100 concurrent connections x {args.seconds:.0f} s")
    print(f"{'requests':<12}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>8}")
    print(
        f"{len(latencies):<12}{len(latencies) / args.seconds:>8.0f}{_ms(latencies, 0.50):>9.1f}"
        f"{_ms(latencies, 0.95):>9.1f}{_ms(latencies, 0.99):>9.1f}{errors:>8}"
    )
    print()
    print(f"cached read, 100 connections at a fixed total rate (open loop) x {args.seconds:.0f} s")
    print(f"{'req/s asked':<12}{'served':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for rate, paced_latencies, paced_errors in paced:
        print(
            f"{rate:<12.0f}{len(paced_latencies) / args.seconds:>8.0f}{_ms(paced_latencies, 0.50):>9.1f}"
            f"{_ms(paced_latencies, 0.95):>9.1f}{_ms(paced_latencies, 0.99):>9.1f}{paced_errors:>8}"
        )
    print(f"end: {_uptime()}")
    if ERROR_STATUSES:
        print(f"errors by status: {ERROR_STATUSES}")


if __name__ == "__main__":
    main()
