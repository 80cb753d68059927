"""The API's authorization matrix: every /api/v1/ route x method x role, with the expected status, generated from
the URLconf — a new route (or method) without an entry fails `test_every_route_and_method_has_an_entry`.

Roles: anonymous; a trader on their own account ("own") and on another trader's ("other"); support; owner; the
signal bot (an ordinary user with reconciliation.write_any_account and risk.size_any_account). Write requests carry
an empty body, so an allowed caller gets the validation answer (400) where a body is required: the matrix is about
who gets past authentication, scoping and permissions, not about the payloads (their tests are per app).
"""

import pytest
from django.contrib.auth.models import Permission
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from accounts.models import User
from accounts.services import trading_account_create, user_create
from reconciliation.models import ReconciliationEvent
from reconciliation.tests.factories import LivePositionFactory
from rules.models import RuleSet

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "own", "other", "support", "owner", "bot")

# status per role, in ROLES order
OPEN = (200,) * 6
SIGNED_IN = (401, 200, 200, 200, 200, 200)
ACCOUNT_READ = (401, 200, 404, 200, 200, 404)  # the bot sees no account unless a permission says so
OPERATORS = (401, 403, 403, 200, 200, 403)
OWNER_WRITES = (401, 403, 403, 403, 400, 403)

MATRIX: dict[tuple[str, str], tuple[int, ...]] = {
    ("schema", "get"): OPEN,
    ("swagger-ui", "get"): OPEN,
    ("redoc", "get"): OPEN,
    ("token_obtain_pair", "post"): (400,) * 6,
    ("token_refresh", "post"): (400,) * 6,
    ("accounts-api:me", "get"): SIGNED_IN,
    ("accounts-api:accounts", "get"): SIGNED_IN,
    ("accounts-api:account", "get"): ACCOUNT_READ,
    ("accounts-api:account-snapshots", "get"): ACCOUNT_READ,
    ("reconciliation-api:bot-trades", "get"): (401, 200, 404, 200, 200, 200),
    ("reconciliation-api:bot-trades", "post"): (401, 400, 404, 403, 400, 400),
    ("reconciliation-api:bot-trade-close", "post"): (401, 400, 404, 403, 400, 400),
    ("reconciliation-api:positions", "get"): ACCOUNT_READ,
    ("reconciliation-api:reconciliation", "get"): ACCOUNT_READ,
    ("reconciliation-api:events", "get"): SIGNED_IN,
    ("reconciliation-api:event", "get"): ACCOUNT_READ,
    ("reconciliation-api:event-acknowledge", "post"): (401, 403, 403, 200, 200, 403),
    ("reconciliation-api:event-resolve", "post"): (401, 403, 403, 400, 400, 403),
    ("guards-api:account-guards", "get"): ACCOUNT_READ,
    ("guards-api:close-intents", "get"): ACCOUNT_READ,
    ("guards-api:account-guards-reset", "post"): (401, 403, 403, 400, 400, 403),
    ("guards-api:position-close", "post"): (401, 403, 404, 202, 202, 404),
    ("guards-api:positions-close-all", "post"): (401, 403, 404, 202, 202, 404),
    ("guards-api:alerts", "get"): SIGNED_IN,
    ("risk-api:config", "get"): SIGNED_IN,
    ("risk-api:config", "put"): (401, 403, 403, 403, 400, 403),
    ("risk-api:config", "patch"): (401, 403, 403, 403, 400, 403),
    ("risk-api:config-history", "get"): (401, 403, 403, 200, 200, 403),
    ("risk-api:trade-setup-size", "post"): (401, 400, 404, 400, 400, 400),
    ("rules-api:rule-sets", "get"): OPERATORS,
    ("rules-api:rule-sets", "post"): OWNER_WRITES,
    ("rules-api:presets", "get"): OPERATORS,
    ("rules-api:rule-set", "get"): OPERATORS,
    ("rules-api:rule-set", "patch"): OWNER_WRITES,
    ("rules-api:rule-set-history", "get"): OPERATORS,
    ("rules-api:account-rule-set", "get"): ACCOUNT_READ,
    ("rules-api:account-rule-set", "put"): OWNER_WRITES,
    ("rules-api:account-rule-set-history", "get"): OPERATORS,
    ("rules-api:close-only-lift", "post"): (401, 403, 403, 400, 400, 403),
    # The EA's endpoints authenticate a signed request, never a user: without a signature nobody gets in.
    ("ea-api:push", "post"): (401,) * 6,
    ("ea-api:commands", "get"): (401,) * 6,
    ("ea-api:command-result", "post"): (401,) * 6,
    ("notifications-api:list", "get"): SIGNED_IN,
    ("notifications-api:preferences", "get"): SIGNED_IN,
    ("notifications-api:preferences", "put"): SIGNED_IN,
    ("notifications-api:preferences", "patch"): SIGNED_IN,
    ("notifications-api:telegram-link-code", "post"): (401, 201, 201, 201, 201, 201),
}

QUERY = {"guards-api:alerts": {"wait": 0}}
HEADERS = {
    "guards-api:position-close": {"Idempotency-Key": "matrix"},
    "guards-api:positions-close-all": {"Idempotency-Key": "matrix"},
}


def _v1_routes() -> dict[str, tuple[str, ...]]:
    """{route name: methods} of every DRF view under /api/v1/, read from the URLconf (path arguments of each
    route land in ROUTE_PARAMS)."""
    routes: dict[str, tuple[str, ...]] = {}

    def walk(patterns, namespace):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                ns = pattern.namespace
                walk(pattern.url_patterns, f"{namespace}{ns}:" if ns else namespace)
            elif isinstance(pattern, URLPattern):
                view_class = getattr(pattern.callback, "cls", None) or getattr(
                    pattern.callback, "view_class", None
                )
                if (
                    view_class is None
                ):  # a plain function view (the EA's signed endpoints): methods from MATRIX
                    name = f"{namespace}{pattern.name}"
                    methods = tuple(m for (n, m) in MATRIX if n == name) or ("<no entry>",)
                else:
                    methods = tuple(
                        m
                        for m in ("get", "post", "put", "patch", "delete")
                        if callable(getattr(view_class, m, None))
                    )
                routes[f"{namespace}{pattern.name}"] = methods
                ROUTE_PARAMS[f"{namespace}{pattern.name}"] = set(pattern.pattern.converters)

    walk(get_resolver("config.api_urls").url_patterns, "")
    return routes


ROUTE_PARAMS: dict[str, set[str]] = {}
_v1_routes()


def test_every_route_and_method_has_an_entry():
    declared = {(name, method) for name, methods in _v1_routes().items() for method in methods}
    assert declared == set(MATRIX), (
        f"missing: {sorted(declared - set(MATRIX))}; stale: {sorted(set(MATRIX) - declared)}"
    )


@pytest.fixture
def world(db):
    own_trader = user_create(username="own", password="own-pass-12345", role="trader")
    other_trader = user_create(username="other", password="other-pass-12345", role="trader")
    bot = User.objects.create_user(username="bot", password="bot-pass-12345")
    bot.user_permissions.add(
        *Permission.objects.filter(codename__in=["write_any_account", "size_any_account"])
    )
    users = {
        "own": own_trader,
        "other": own_trader,
        "support": user_create(username="support-m", password="support-pass-123", role="support"),
        "owner": user_create(username="owner-m", password="owner-pass-1234", role="owner"),
        "bot": User.objects.get(pk=bot.pk),
    }
    mine = trading_account_create(owner=own_trader, login=9101, server="Matrix")
    theirs = trading_account_create(owner=other_trader, login=9102, server="Matrix")
    position = LivePositionFactory(account=mine, ticket=9_000_001)
    LivePositionFactory(account=theirs, ticket=9_000_002)
    now = timezone.now()
    event = ReconciliationEvent.objects.create(
        account=mine,
        kind="unmatched_position",
        fingerprint="m:1",
        ticket=1,
        first_seen_at=now,
        last_seen_at=now,
    )
    their_event = ReconciliationEvent.objects.create(
        account=theirs,
        kind="unmatched_position",
        fingerprint="m:2",
        ticket=2,
        first_seen_at=now,
        last_seen_at=now,
    )
    return {"users": users, "mine": mine, "theirs": theirs, "position": position, "event": event,
            "their_event": their_event}  # fmt: skip


def _kwargs(name: str, role: str, world) -> dict[str, int]:
    """Path arguments: the role's account (another trader's for "other"), its position and its event."""
    params = ROUTE_PARAMS[name]
    kwargs = {}
    if "account_id" in params:
        kwargs["account_id"] = (world["theirs"] if role == "other" else world["mine"]).pk
    if "ticket" in params:
        kwargs["ticket"] = 9_000_002 if role == "other" else world["position"].ticket
    if "command_id" in params:
        kwargs["command_id"] = 1
    if "rule_set_id" in params:
        kwargs["rule_set_id"] = RuleSet.objects.order_by("pk").values_list("pk", flat=True)[0]
    if "event_id" in params:
        kwargs["event_id"] = (world["their_event"] if role == "other" else world["event"]).pk
    return kwargs


@pytest.mark.parametrize(("name", "method"), sorted(MATRIX))
@pytest.mark.parametrize("role", ROLES)
def test_authorization_matrix(api_client, world, name, method, role, monkeypatch):
    monkeypatch.setattr("guards.services.manual_close._queue", lambda request_id: None)
    expected = MATRIX[(name, method)][ROLES.index(role)]
    if role != "anonymous":
        api_client.force_authenticate(world["users"][role])
    url = reverse(name, kwargs=_kwargs(name, role, world))
    call = getattr(api_client, method)
    if method == "get":
        response = call(url, QUERY.get(name, {}), headers=HEADERS.get(name, {}))
    else:
        response = call(url, {}, format="json", headers=HEADERS.get(name, {}))
    assert response.status_code == expected, (role, method, url, response.content[:300])
