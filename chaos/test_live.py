"""Live updates across a broker restart: pushes to an open page resume once Redis is back, with no loss that a page
would not make up (it resynchronises after its socket reconnects), and the web server stays responsive."""

import asyncio
import re
import signal
import time

import httpx
import pytest
import websockets

from chaos.harness import Stack, report, wait_for
from chaos.test_services import ONE_CYCLE, _every_account_synced_after


def _session_cookie(stack: Stack, username: str, password: str) -> str:
    base = f"http://127.0.0.1:{stack.web_port}"
    with httpx.Client(base_url=base, follow_redirects=False, timeout=10) as client:
        page = client.get("/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert token, "no CSRF token on the login page"
        answer = client.post(
            "/login/",
            data={"username": username, "password": password, "csrfmiddlewaretoken": token.group(1)},
            headers={"Referer": f"{base}/login/"},
        )
        assert answer.status_code == 302, answer.text[:500]
        return "; ".join(f"{name}={value}" for name, value in client.cookies.items())


class LivePage:
    """An open overview page: one socket, reconnected with back-off like the htmx ws extension, counting the
    partials it receives and when."""

    def __init__(self, url: str, cookie: str, origin: str) -> None:
        self.url, self.cookie, self.origin = url, cookie, origin
        self.received: list[float] = []
        self.opens = 0
        self.stop = False

    async def run(self) -> None:
        delay = 0.5
        while not self.stop:
            try:
                async with websockets.connect(
                    self.url,
                    additional_headers={"Cookie": self.cookie, "Origin": self.origin},
                    open_timeout=10,
                ) as ws:
                    self.opens += 1
                    delay = 0.5
                    while not self.stop:
                        try:
                            await asyncio.wait_for(ws.recv(), timeout=1.0)
                        except TimeoutError:
                            continue
                        self.received.append(time.monotonic())
            except Exception:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 8.0)


def _log_times(log: str, pattern: str) -> list[float]:
    """Epoch seconds of the log lines containing `pattern` (Celery logs local time)."""
    times = []
    for line in log.splitlines():
        if pattern in line:
            stamp = re.match(r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3})", line)
            if stamp:
                times.append(
                    time.mktime(time.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S"))
                    + int(stamp.group(2)) / 1000
                )
    return times


@pytest.mark.chaos
def test_redis_restarted_pushes_to_an_open_page_resume_and_nothing_is_dropped_after_it_returns(
    stack: Stack,
) -> None:
    stack.start("web")
    wait_for(lambda: _every_account_synced_after(stack, 0), timeout=60, what="a first sync of every account")
    cookie = _session_cookie(stack, "support", "support-dev-password")
    origin = f"http://127.0.0.1:{stack.web_port}"
    page = LivePage(f"ws://127.0.0.1:{stack.web_port}/ws/pages/?view=overview", cookie, origin)

    async def scenario() -> dict[str, float]:
        runner = asyncio.create_task(page.run())
        deadline = time.monotonic() + ONE_CYCLE
        while not page.received and time.monotonic() < deadline:
            await asyncio.sleep(0.25)
        assert page.received, "no live partial before the fault"
        stack.redis.kill()
        await asyncio.sleep(20)
        stack.redis.start()  # back empty: the channel layer's groups are gone with it
        back = time.monotonic()
        back_wall = time.time()
        deadline = back + ONE_CYCLE + 10
        while time.monotonic() < deadline and not [t for t in page.received if t > back]:
            await asyncio.sleep(0.25)
        resumed = [t for t in page.received if t > back]
        page.stop = True
        await runner
        assert resumed, "no live partial reached the open page after Redis came back"
        async with httpx.AsyncClient(base_url=origin, timeout=5) as client:
            answer = await client.get("/login/")
        assert answer.status_code == 200  # the web server answers
        return {"resume_seconds": round(resumed[0] - back, 1), "back_wall": back_wall}

    figures = asyncio.run(scenario())
    back_wall = figures.pop("back_wall")
    settle = 5  # the first seconds after the return: connections being re-made
    dropped_after = [
        t for t in _log_times(stack.log("worker"), "was not delivered") if t - back_wall > settle
    ]
    assert dropped_after == [], f"{len(dropped_after)} live updates dropped after Redis was back"
    for name in ("web", "worker", "beat"):
        assert stack.alive(name), f"{name} died:\n{stack.log(name)[-3000:]}"
    report("redis_restart_live_updates", reconnects=page.opens - 1, dropped_after_return=0, **figures)


SOCKETS = 500


class Fleet:
    """Many open pages: sockets that reconnect with the htmx ws extension's full-jitter back-off
    (a random delay up to 2^min(n, 6) s after the n-th failure)."""

    def __init__(self, url: str, cookie: str, origin: str, count: int) -> None:
        self.url, self.cookie, self.origin = url, cookie, origin
        self.count = count
        self.connected: set[int] = set()
        self.opens = [0] * count
        self.last_message = [0.0] * count
        self.stop = False

    async def socket(self, index: int) -> None:
        import random

        failures = 0
        while not self.stop:
            try:
                async with websockets.connect(
                    self.url,
                    additional_headers={"Cookie": self.cookie, "Origin": self.origin},
                    open_timeout=30,
                    ping_interval=None,
                ) as ws:
                    self.opens[index] += 1
                    self.connected.add(index)
                    failures = 0
                    while not self.stop:
                        try:
                            await asyncio.wait_for(ws.recv(), timeout=1.0)
                        except TimeoutError:
                            continue
                        self.last_message[index] = time.monotonic()
            except (OSError, TimeoutError, websockets.WebSocketException):
                self.connected.discard(index)  # refused or dropped: back off, then reconnect
            self.connected.discard(index)
            if self.stop:
                return
            failures += 1
            await asyncio.sleep(random.random() * 2 ** min(failures, 6))


@pytest.mark.chaos
def test_web_server_restarted_under_500_open_pages_all_reconnect_and_it_stays_responsive(
    stack: Stack,
) -> None:
    stack.start("web")
    wait_for(lambda: _every_account_synced_after(stack, 0), timeout=60, what="a first sync of every account")
    cookie = _session_cookie(stack, "support", "support-dev-password")
    origin = f"http://127.0.0.1:{stack.web_port}"
    fleet = Fleet(f"ws://127.0.0.1:{stack.web_port}/ws/pages/?view=overview", cookie, origin, SOCKETS)

    async def responsive(client: httpx.AsyncClient) -> float:
        started = time.monotonic()
        answer = await client.get("/login/")
        assert answer.status_code == 200
        return time.monotonic() - started

    async def scenario() -> dict[str, float]:
        tasks = [asyncio.create_task(fleet.socket(i)) for i in range(SOCKETS)]
        deadline = time.monotonic() + 120
        while len(fleet.connected) < SOCKETS and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        assert len(fleet.connected) == SOCKETS, f"only {len(fleet.connected)} of {SOCKETS} sockets opened"

        await asyncio.to_thread(stack.kill, "web", signal.SIGTERM)
        await asyncio.to_thread(stack.start, "web")
        restarted = time.monotonic()
        latencies = []
        async with httpx.AsyncClient(base_url=origin, timeout=30) as client:
            deadline = restarted + 120
            while len(fleet.connected) < SOCKETS and time.monotonic() < deadline:
                latencies.append(await responsive(client))  # the server answers pages during the storm
                await asyncio.sleep(1)
            all_back = time.monotonic() - restarted
            assert len(fleet.connected) == SOCKETS, (
                f"only {len(fleet.connected)} of {SOCKETS} sockets came back"
            )
            heard_from = time.monotonic()
            deadline = heard_from + ONE_CYCLE
            while time.monotonic() < deadline and min(fleet.last_message) < heard_from:
                await asyncio.sleep(0.5)
            assert min(fleet.last_message) >= heard_from, "some reconnected pages receive no pushes"
            latencies.append(await responsive(client))
        fleet.stop = True
        await asyncio.gather(*tasks, return_exceptions=True)
        return {
            "all_reconnected_seconds": round(all_back, 1),
            "page_latency_max_seconds": round(max(latencies), 2),
            "pushes_resumed_seconds": round(time.monotonic() - restarted, 1),
        }

    figures = asyncio.run(scenario())
    assert all(opens >= 2 for opens in fleet.opens)  # every page reconnected (once, or more after a refusal)
    for name in ("web", "worker", "beat"):
        assert stack.alive(name), f"{name} died:\n{stack.log(name)[-3000:]}"
    report("web_restart_500_websockets", sockets=SOCKETS, **figures)
