"""GET /healthz (alive) and GET /readyz (every part answers; 503 naming the failing parts)."""

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.utils import timezone

from accounts.services import trading_account_create
from reconciliation.models import SyncCycle

pytestmark = pytest.mark.django_db


class _Alive(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{"status": "ok"}')

    def log_message(self, *args):
        pass


@pytest.fixture
def bridge_url():
    server = HTTPServer(("127.0.0.1", 0), _Alive)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def worker_answers(monkeypatch):
    from config.celery import app

    monkeypatch.setattr(app.control, "ping", lambda timeout: [{"celery@test": {"ok": "pong"}}])


def _recent_cycle():
    SyncCycle.objects.create(started_at=timezone.now(), interval_seconds=10)


def test_healthz_is_alive_without_authentication(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ready_when_every_part_answers(client, owner, bridge_url, worker_answers):
    _recent_cycle()
    trading_account_create(
        owner=owner, login=8101, server="Br", backend="bridge", connection={"bridge_url": bridge_url}
    )
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["failing"] == []
    assert set(body["checks"]) == {
        "database",
        "redis",
        "channel_layer",
        "beat",
        "worker",
        f"bridge {bridge_url}",
    }


def test_readyz_names_the_failing_parts_with_503(client, owner, worker_answers):
    dead = "http://127.0.0.1:1"
    trading_account_create(
        owner=owner, login=8102, server="Br", backend="bridge", connection={"bridge_url": dead}
    )
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready"
    assert set(body["failing"]) == {"beat", f"bridge {dead}"}
    assert body["checks"]["database"]["ok"] is True
    assert "no sync cycle" in body["checks"]["beat"]["detail"]


def test_readyz_fails_when_no_worker_answers(client, monkeypatch):
    from config.celery import app

    _recent_cycle()
    monkeypatch.setattr(app.control, "ping", lambda timeout: [])
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["worker"]


def test_readyz_reports_a_dead_redis(client, monkeypatch, worker_answers):
    from redis.exceptions import ConnectionError as RedisConnectionError

    def dead(*args, **kwargs):
        raise RedisConnectionError("Connection refused")

    _recent_cycle()
    monkeypatch.setattr("pipeline.readiness.cache.set", dead)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["redis"]
