"""Loopback stand-ins for the outside world: a fake Telegram Bot API and a webhook receiver, each a real HTTP
server on 127.0.0.1 and a free port, so the production client code runs unchanged against them."""

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from notifications.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature_verify


class _Server:
    """A ThreadingHTTPServer that can be stopped (an outage) and started again on the same port (recovery)."""

    def __init__(self) -> None:
        self.port = 0
        self._httpd: ThreadingHTTPServer | None = None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    def start(self) -> None:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class FakeTelegram(_Server):
    token: str
    sent: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    fail_with: int | None = None  # answer every call with this HTTP status (e.g. 502 during an outage)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        _Server.__init__(self)

    def messages_to(self, chat_id: int) -> list[str]:
        return [m["text"] for m in self.sent if m["chat_id"] == chat_id]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                prefix = f"/bot{fake.token}/"
                if not self.path.startswith(prefix):
                    return self._answer(404, {"ok": False, "error_code": 404, "description": "Not Found"})
                if fake.fail_with is not None:
                    error = {"ok": False, "error_code": fake.fail_with, "description": "Bad Gateway"}
                    return self._answer(fake.fail_with, error)
                method = self.path[len(prefix) :]
                if method == "sendMessage":
                    if body.get("chat_id") == 403:
                        return self._answer(
                            403, {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked"}
                        )
                    with fake.lock:
                        fake.sent.append(body)
                        message_id = len(fake.sent)
                    return self._answer(200, {"ok": True, "result": {"message_id": message_id}})
                if method == "getUpdates":
                    offset = body.get("offset") or 0
                    with fake.lock:
                        result = [u for u in fake.updates if u["update_id"] >= offset]
                    return self._answer(200, {"ok": True, "result": result})
                return self._answer(404, {"ok": False, "error_code": 404, "description": "Not Found"})

            def _answer(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


@dataclass
class WebhookReceiver(_Server):
    """Verifies every request with the documented recipe (notifications.signing.signature_verify): 204 when the
    signature holds, 401 otherwise; `fail_with` answers every request with that status instead."""

    secret: str
    received: list[dict[str, Any]] = field(default_factory=list)
    rejected: int = 0
    fail_with: int | None = None

    def __post_init__(self) -> None:
        _Server.__init__(self)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if fake.fail_with is not None:
                    self.send_response(fake.fail_with)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                valid = signature_verify(
                    secret=fake.secret,
                    timestamp=self.headers.get(TIMESTAMP_HEADER, ""),
                    body=raw,
                    signature=self.headers.get(SIGNATURE_HEADER, ""),
                )
                if valid:
                    fake.received.append({"headers": dict(self.headers), "body": json.loads(raw)})
                else:
                    fake.rejected += 1
                self.send_response(204 if valid else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

        return Handler
