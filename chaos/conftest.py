"""Chaos tests run only with `make chaos` (`pytest -m chaos chaos/`): each starts its own private Redis and
PostgreSQL and the real processes, so they need no test database and take minutes, not seconds."""

from collections.abc import Iterator
from typing import Any

import pytest

from chaos.harness import Stack


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "chaos/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.chaos)


@pytest.fixture
def stack() -> Iterator[Stack]:
    """A fresh private stack with the demo accounts, bridge, worker and beat running (web and demo market on demand)."""
    with Stack() as running:
        running.prepare()
        running.start("bridge", "worker", "beat")
        yield running


LOG_TAIL = 6000  # characters of each process's log attached to a failed test's report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    """A failed chaos test carries the end of every process's log in its report (CI keeps only the output): the
    workdir with the logs is gone once the stack stops."""
    report = yield
    running = getattr(item, "funcargs", {}).get("stack")
    if report.failed and call.when == "call" and isinstance(running, Stack):
        for name in sorted(running.processes):
            report.sections.append((f"{name}.log (end)", running.log(name)[-LOG_TAIL:]))
    return report
