"""The single composition point: ConnectionConfig → a ready Mt5Gateway (a ManagedGateway around a TerminalGateway).

One ManagedGateway per account per process, cached here, so Celery tasks reuse the terminal connection instead of
initialising and logging in for every task. A changed config (new password, other backend or bridge) replaces the
cached gateway. The cache is bounded (MT5_GATEWAY_CACHE_SIZE, least recently used out, its connection closed): any
worker may sync any account, so without a bound every worker process would end up holding a gateway for every
account of the fleet. The only module of the package that reads Django settings.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from integrations.mt5 import backends
from integrations.mt5.circuit import (
    Backoff,
    BreakerStore,
    CircuitBreaker,
    MemoryBreakerStore,
    RedisBreakerStore,
)
from integrations.mt5.errors import GatewayUnavailable
from integrations.mt5.sessions import ManagedGateway
from integrations.mt5.terminal import TerminalGateway

logger = logging.getLogger(__name__)

BACKENDS = ("simulated", "native", "bridge", "ea")


@dataclass(frozen=True, slots=True)
class ConnectionConfig:
    """How to reach one account's terminal. Secrets are excluded from repr (and so from logs and tracebacks)."""

    account_key: str  # stable id of the account in our system, e.g. "account-42": cache and circuit key
    backend: str
    login: int
    server: str
    password: str = field(default="", repr=False)
    bridge_url: str = ""
    bridge_secret: str = field(default="", repr=False)
    path: str | None = None
    portable: bool = False
    timeout_ms: int = 60_000
    server_utc_offset_seconds: int | None = None

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown MT5 backend {self.backend!r}; expected one of {', '.join(BACKENDS)}")
        if not self.account_key:
            raise ValueError("account_key is required")


_gateways: OrderedDict[str, tuple[ConnectionConfig, ManagedGateway]] = (
    OrderedDict()
)  # least recently used first
GATEWAY_CACHE_SIZE = 2000  # MT5_GATEWAY_CACHE_SIZE's default: more than a worker process syncs in a cycle
_lock = threading.Lock()
_stores: dict[str, BreakerStore] = {}


def _setting(name: str, default: Any) -> Any:
    """A Django setting, or `default` outside Django (bench scripts, the bridge host)."""
    try:
        from django.conf import settings
        from django.core.exceptions import ImproperlyConfigured
    except ImportError:
        return default
    try:
        return getattr(settings, name, default)
    except ImproperlyConfigured:
        return default


def breaker_store() -> BreakerStore:
    """Redis (settings.REDIS_URL) so every worker process shares each account's circuit; memory without settings."""
    url = _setting("REDIS_URL", None)
    key = url or "memory"
    store = _stores.get(key)
    if store is None:
        store = RedisBreakerStore.from_url(url) if url else MemoryBreakerStore()
        _stores[key] = store
    return store


def _build(config: ConnectionConfig) -> ManagedGateway:
    clock = None
    if config.backend == "simulated":
        api = backends.simulated_api(config.login, config.server)
        clock = backends.simulated_clock(api)
    elif config.backend == "native":
        api = backends.native_api()
    elif config.backend == "ea":
        api = backends.ea_api(
            config.login,
            config.server,
            command_deadline_seconds=float(_setting("MT5_EA_COMMAND_DEADLINE_SECONDS", 20.0)),
        )
    else:
        url = config.bridge_url or _setting("MT5_BRIDGE_URL", "")
        secret = config.bridge_secret or _setting("MT5_BRIDGE_SECRET", "") or ""
        if not url or not secret:
            raise GatewayUnavailable(
                f"{config.account_key}: the bridge backend needs MT5_BRIDGE_URL and MT5_BRIDGE_SECRET",
                call="connect",
            )
        api = backends.bridge_api(
            url,
            secret,
            login=config.login,
            server=config.server,
            timeout=float(_setting("MT5_CALL_TIMEOUT_SECONDS", 10.0)),
        )
    terminal_kwargs: dict[str, Any] = {"clock": clock} if clock else {}
    if getattr(getattr(api, "clock", None), "virtual", False):
        # A virtual clock only moves when told: polling for a tick seen arriving cannot help.
        terminal_kwargs["offset_wait_seconds"] = 0.0
    terminal = TerminalGateway(
        api,
        login=config.login,
        password=config.password,
        server=config.server,
        path=config.path,
        portable=config.portable,
        timeout_ms=config.timeout_ms,
        server_utc_offset=config.server_utc_offset_seconds,
        **terminal_kwargs,
    )
    breaker = CircuitBreaker(
        config.account_key,
        store=breaker_store(),
        failure_threshold=int(_setting("MT5_CIRCUIT_FAILURE_THRESHOLD", 3)),
        reset_seconds=float(_setting("MT5_CIRCUIT_RESET_SECONDS", 8.0)),
        max_reset_seconds=float(_setting("MT5_CIRCUIT_MAX_RESET_SECONDS", 120.0)),
    )
    backoff = Backoff(
        base=float(_setting("MT5_RECONNECT_BASE_SECONDS", 1.0)),
        cap=float(_setting("MT5_RECONNECT_CAP_SECONDS", 60.0)),
    )
    return ManagedGateway(
        terminal,
        account_key=config.account_key,
        breaker=breaker,
        backoff=backoff,
        trial_wait_seconds=float(_setting("MT5_CIRCUIT_TRIAL_WAIT_SECONDS", 3.0)),
    )


def get_gateway(config: ConnectionConfig) -> ManagedGateway:
    """The account's gateway, built once per process and reused. Connects lazily on the first call."""
    evicted: list[ManagedGateway] = []
    with _lock:
        gateway = _cached_or_built(config, evicted)
    for old in evicted:  # outside the lock: closing a link may take a moment
        try:
            old.close()
        except Exception:  # a dead link must not fail the call that needs another gateway
            logger.debug("mt5 close of an evicted gateway failed", exc_info=True)
    return gateway


def _cached_or_built(config: ConnectionConfig, evicted: list[ManagedGateway]) -> ManagedGateway:
    cached = _gateways.get(config.account_key)
    if cached is not None and cached[0] == config:
        _gateways.move_to_end(config.account_key)
        return cached[1]
    if config.backend == "native":
        for other_config, _ in _gateways.values():
            if (
                other_config.backend == "native"
                and other_config.account_key != config.account_key
                and other_config.login != config.login
            ):
                raise GatewayUnavailable(
                    f"{config.account_key}: the native MT5 module drives one terminal per process and this "
                    f"process already serves {other_config.account_key}; run one worker per native account "
                    "or use the bridge backend",
                    call="connect",
                )
    gateway = _build(config)
    if cached is not None:
        logger.info("mt5 %s: connection settings changed, replacing the gateway", config.account_key)
        evicted.append(cached[1])
    _gateways[config.account_key] = (config, gateway)
    _gateways.move_to_end(config.account_key)
    limit = max(int(_setting("MT5_GATEWAY_CACHE_SIZE", GATEWAY_CACHE_SIZE)), 1)
    while len(_gateways) > limit:
        _key, (_config, old) = _gateways.popitem(last=False)
        evicted.append(old)
    return gateway


def _forget_after_fork() -> None:
    """In a forked child (Celery prefork) the parent's connections and Redis sockets are not ours: start afresh."""
    global _lock
    _lock = threading.Lock()
    _gateways.clear()
    _stores.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def reset_gateways(*, clear_breakers: bool = True) -> None:
    """Close and forget every cached gateway (tests; after a fork). Also forgets their circuit state by default."""
    with _lock:
        entries = list(_gateways.values())
        _gateways.clear()
    for _config, gateway in entries:
        try:
            gateway.close()
        except Exception:  # closing a dead link must not stop the reset
            logger.debug("mt5 close failed during reset", exc_info=True)
        if clear_breakers:
            gateway.breaker.reset()
