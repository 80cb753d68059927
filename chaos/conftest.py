"""Chaos tests run only with `make chaos` (`pytest -m chaos chaos/`): each starts its own private Redis and
PostgreSQL and the real processes, so they need no test database and take minutes, not seconds."""

from collections.abc import Iterator

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
