"""A small Bot API client over httpx: sendMessage and getUpdates, with errors sorted into retry / give up.

The Bot API answers `{"ok": true, "result": ...}` or `{"ok": false, "error_code": n, "description": "...",
"parameters": {"retry_after": s}}`. 429 carries retry_after; 400/401/403/404 (chat not found, bot blocked, bad
token) will not get better by retrying; 5xx and network errors will.
"""

from dataclasses import dataclass
from typing import Any

import httpx

_PERMANENT = {400, 401, 403, 404}


@dataclass
class TelegramError(Exception):
    message: str
    status_code: int | None = None
    permanent: bool = False
    retry_after: float | None = None

    def __str__(self) -> str:
        return self.message


class TelegramClient:
    def __init__(
        self, *, token: str, base_url: str, timeout: float, transport: httpx.BaseTransport | None = None
    ):
        if not token:
            raise TelegramError("No Telegram bot token is configured (TELEGRAM_BOT_TOKEN).", permanent=False)
        # The token is part of the path: never log the URL.
        self._client = httpx.Client(
            base_url=f"{base_url.rstrip('/')}/bot{token}/", timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "TelegramClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send_message(self, *, chat_id: int, text: str) -> int:
        """Send plain text (no parse mode, so nothing in it needs escaping); returns the message id."""
        result = self._call(
            "sendMessage", {"chat_id": chat_id, "text": text, "disable_web_page_preview": True}
        )
        return int(result.get("message_id", 0)) if isinstance(result, dict) else 0

    def get_updates(self, *, offset: int | None, limit: int = 100) -> list[dict[str, Any]]:
        payload: dict[str, Any] = {"timeout": 0, "limit": limit, "allowed_updates": ["message"]}
        if offset is not None:
            payload["offset"] = offset
        result = self._call("getUpdates", payload)
        return list(result) if isinstance(result, list) else []

    def _call(self, method: str, payload: dict[str, Any]) -> Any:
        try:
            response = self._client.post(method, json=payload)
        except httpx.TimeoutException as exc:
            raise TelegramError(f"Telegram {method}: timed out ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:
            raise TelegramError(f"Telegram {method}: {type(exc).__name__}") from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code == 200 and isinstance(body, dict) and body.get("ok"):
            return body.get("result")
        description = str(body.get("description", "")) if isinstance(body, dict) else ""
        code = response.status_code
        retry_after = None
        if isinstance(body, dict) and isinstance(body.get("parameters"), dict):
            retry_after = body["parameters"].get("retry_after")
        raise TelegramError(
            f"Telegram {method}: HTTP {code} {description}".strip()[:400],
            status_code=code,
            permanent=code in _PERMANENT,
            retry_after=float(retry_after) if isinstance(retry_after, int | float) else None,
        )
