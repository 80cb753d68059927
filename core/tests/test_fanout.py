"""core.fanout.task_fanout: the messages `apply_async` would send, published in batches."""

import base64
import json

import pytest
import redis
from django.conf import settings

from config.celery import app
from core.fanout import task_fanout

QUEUE = "test-core-fanout"


@app.task(name="core.tests.fanout_probe", ignore_result=True)
def fanout_probe(value: int, *, tag: str = "") -> str:
    return f"{value}{tag}"


@pytest.fixture
def broker():
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete(QUEUE)
    yield client
    client.delete(QUEUE)


def _drain(broker) -> list[dict]:
    return [json.loads(broker.rpop(QUEUE)) for _ in range(broker.llen(QUEUE))]


def test_each_call_is_one_message_like_apply_async_sends(broker):
    fanout_probe.apply_async(args=[0], kwargs={"tag": "x"}, queue=QUEUE, expires=9)
    (reference,) = _drain(broker)

    assert (
        task_fanout(
            fanout_probe, [([n], {"tag": f"t{n}"}) for n in range(5)], queue=QUEUE, expires=9, chunk=2
        )
        == 5
    )
    messages = _drain(broker)

    assert [json.loads(base64.b64decode(m["body"]))[:2] for m in messages] == [
        [[n], {"tag": f"t{n}"}] for n in range(5)
    ]
    assert len({m["headers"]["id"] for m in messages}) == 5
    assert len({m["properties"]["delivery_tag"] for m in messages}) == 5
    for message in messages:
        assert (
            message["headers"]["id"]
            == message["properties"]["correlation_id"]
            == message["headers"]["root_id"]
        )
        assert set(message["headers"]) == set(reference["headers"])
        assert set(message["properties"]) == set(reference["properties"])
        assert message["headers"]["task"] == "core.tests.fanout_probe"
        assert message["properties"]["expiration"] == reference["properties"]["expiration"] == "9000"
        assert message["properties"]["delivery_info"] == reference["properties"]["delivery_info"]


def test_a_worker_runs_the_published_messages(broker):
    """The payloads are what a worker consumes: decoded by kombu and run by Celery's own request handling."""
    from celery.worker.request import Request
    from kombu.transport.virtual import Message

    task_fanout(fanout_probe, [([n], {"tag": "!"}) for n in (7, 8)], queue=QUEUE, expires=9)
    with app.connection_for_read() as connection:
        channel = connection.default_channel
        results = []
        for payload in _drain(broker):
            message = Message(payload, channel=channel)
            request = Request(message, app=app, task=fanout_probe)
            results.append(fanout_probe(*request.args, **request.kwargs))
    assert results == ["7!", "8!"]


def test_nothing_to_publish():
    assert task_fanout(fanout_probe, [], queue=QUEUE) == 0
