"""The worker's consumer reconnects to a lost broker within seconds, not on Celery's ladder that grows to 30 s."""

import logging
import re
import socket
from unittest import mock

import pytest
from celery.worker.consumer import Consumer
from kombu import Connection
from kombu.exceptions import OperationalError

from config.celery import app
from core.worker import BrokerConsumer


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _retry_delays(consumer_class: type[Consumer], caplog: pytest.LogCaptureFixture) -> list[float]:
    consumer = consumer_class.__new__(consumer_class)  # only what ensure_connected reads
    consumer.app, consumer.first_connection_attempt, consumer.broker_connection_retry_attempt = app, False, 0
    conn = Connection(f"redis://127.0.0.1:{_dead_port()}/0", connect_timeout=1)
    retries = app.conf.broker_connection_max_retries
    app.conf.broker_connection_max_retries = 6
    try:
        with (
            mock.patch("kombu.utils.functional.sleep"),  # the ladder is read from the log, not waited out
            caplog.at_level(logging.ERROR),
            pytest.raises(OperationalError),
        ):
            consumer.ensure_connected(conn)
    finally:
        app.conf.broker_connection_max_retries = retries
    return [float(m) for m in re.findall(r"Trying again in ([\d.]+) second", caplog.text)]


def test_the_worker_is_configured_with_the_short_ladder() -> None:
    assert app.conf.worker_consumer == "core.worker:BrokerConsumer"


def test_a_lost_broker_is_retried_at_most_two_seconds_apart(caplog: pytest.LogCaptureFixture) -> None:
    assert _retry_delays(BrokerConsumer, caplog) == [1.0, 2.0, 2.0, 2.0, 2.0, 2.0]


def test_celerys_own_consumer_would_wait_longer_each_time(caplog: pytest.LogCaptureFixture) -> None:
    # What the subclass exists for: the default ladder keeps growing (2, 4, 6 … 30 s).
    assert _retry_delays(Consumer, caplog) == [2.0, 4.0, 6.0, 8.0, 10.0, 12.0]
