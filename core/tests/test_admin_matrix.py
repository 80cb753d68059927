"""The admin's authorization matrix: every registered model admin by role by (view, add, change, delete, each
action), as the admin itself decides it. A new model admin without an entry fails; so does any drift.

Letters: v view (list and detail), a add, c change, d delete. Service-written records are "v" for everyone who
may see them, owners included; the trader role has no admin permission at all.
"""

import pytest
from django.contrib import admin
from django.test import RequestFactory

from accounts.services import user_create

pytestmark = pytest.mark.django_db

ADMIN_MATRIX = {
    "accounts.accounthealth": {"owner": ("v", []), "support": ("v", []), "trader": ("", [])},
    "accounts.accountsnapshot": {"owner": ("v", []), "support": ("v", []), "trader": ("", [])},
    "accounts.terminalidentityevent": {"owner": ("v", []), "support": ("v", []), "trader": ("", [])},
    "accounts.tradingaccount": {
        "owner": ("vacd", ["confirm_terminal_identity", "delete_selected"]),
        "support": ("v", ["confirm_terminal_identity"]),
        "trader": ("", []),
    },
    "accounts.user": {"owner": ("vacd", ["delete_selected"]), "support": ("v", []), "trader": ("", [])},
    "auth.group": {"owner": ("v", []), "support": ("", []), "trader": ("", [])},
    "axes.accessattempt": {"owner": ("vd", ["delete_selected"]), "support": ("v", []), "trader": ("", [])},
    "axes.accessfailurelog": {"owner": ("v", []), "support": ("v", []), "trader": ("", [])},
    "axes.accesslog": {"owner": ("v", []), "support": ("v", []), "trader": ("", [])},
    "django_celery_beat.clockedschedule": {"owner": ("", []), "support": ("", []), "trader": ("", [])},
    "django_celery_beat.crontabschedule": {
        "owner": ("vacd", ["delete_selected"]),
        "support": ("", []),
        "trader": ("", []),
    },
    "django_celery_beat.intervalschedule": {
        "owner": ("vacd", ["delete_selected"]),
        "support": ("v", []),
        "trader": ("", []),
    },
    "django_celery_beat.periodictask": {
        "owner": ("vacd", ["delete_selected", "disable_tasks", "enable_tasks", "run_tasks", "toggle_tasks"]),
        "support": ("v", []),
        "trader": ("", []),
    },
    "django_celery_beat.solarschedule": {"owner": ("", []), "support": ("", []), "trader": ("", [])},
    "ea.eacommand": {"owner": ("v", []), "support": ("v", []), "trader": ("", [])},
    "ea.ealink": {"owner": ("vac", ["rotate_key"]), "support": ("v", []), "trader": ("", [])},
    "guards.accountguardsettings": {
        "owner": ("vacd", ["delete_selected"]),
        "support": ("v", []),
        "trader": ("", []),
    },
    "guards.balanceoperation": {"owner": ("v", []), "support": ("v", []), "trader": ("", [])},
    "guards.closeintent": {"owner": ("v", []), "support": ("v", []), "trader": ("", [])},
    "notifications.notification": {
        "owner": ("vc", ["retry_now"]),
        "support": ("vc", ["retry_now"]),
        "trader": ("", []),
    },
    "notifications.notificationpreference": {
        "owner": ("vacd", ["delete_selected"]),
        "support": ("v", []),
        "trader": ("", []),
    },
    "notifications.telegramchat": {
        "owner": ("vacd", ["delete_selected"]),
        "support": ("v", []),
        "trader": ("", []),
    },
    "notifications.webhookendpoint": {
        "owner": ("vacd", ["delete_selected"]),
        "support": ("", []),
        "trader": ("", []),
    },
    "guards.guardalert": {"owner": ("v", []), "support": ("v", []), "trader": ("", [])},
    "guards.guardsettings": {"owner": ("vc", []), "support": ("v", []), "trader": ("", [])},
    "guards.guardsettingschange": {"owner": ("v", []), "support": ("v", []), "trader": ("", [])},
    "guards.guardstate": {
        "owner": ("v", ["reset_guards"]),
        "support": ("v", ["reset_guards"]),
        "trader": ("", []),
    },
    "guards.manualcloserequest": {"owner": ("v", []), "support": ("v", []), "trader": ("", [])},
    "reconciliation.accountsync": {"owner": ("v", []), "support": ("v", []), "trader": ("", [])},
    "reconciliation.bottrade": {"owner": ("vc", ["mark_closed"]), "support": ("v", []), "trader": ("", [])},
    "reconciliation.liveposition": {"owner": ("v", []), "support": ("v", []), "trader": ("", [])},
    "reconciliation.netmatch": {"owner": ("v", []), "support": ("v", []), "trader": ("", [])},
    "reconciliation.reconciliationevent": {
        "owner": ("vc", ["acknowledge", "resolve"]),
        "support": ("vc", ["acknowledge", "resolve"]),
        "trader": ("", []),
    },
    "reconciliation.symboloverride": {
        "owner": ("vacd", ["delete_selected"]),
        "support": ("v", []),
        "trader": ("", []),
    },
    "reconciliation.synccycle": {"owner": ("v", []), "support": ("v", []), "trader": ("", [])},
    "risk.riskconfigversion": {"owner": ("va", []), "support": ("v", []), "trader": ("", [])},
    "risk.tradesetuprisklog": {"owner": ("v", []), "support": ("v", []), "trader": ("", [])},
    "rules.accountruleset": {"owner": ("vac", []), "support": ("v", []), "trader": ("", [])},
    "rules.accountrulesstate": {"owner": ("v", []), "support": ("v", []), "trader": ("", [])},
    "rules.accountrulesetchange": {"owner": ("v", []), "support": ("v", []), "trader": ("", [])},
    "rules.ruleset": {"owner": ("vac", []), "support": ("v", []), "trader": ("", [])},
    "rules.rulesetchange": {"owner": ("v", []), "support": ("v", []), "trader": ("", [])},
}

ROLES = ("owner", "support", "trader")


def _capabilities(model_admin, request):
    checks = (
        ("v", model_admin.has_view_permission(request)),
        ("a", model_admin.has_add_permission(request)),
        ("c", model_admin.has_change_permission(request)),
        ("d", model_admin.has_delete_permission(request)),
    )
    return "".join(letter for letter, allowed in checks if allowed)


def test_every_model_admin_has_an_entry():
    registered = {model._meta.label_lower for model in admin.site._registry}
    assert registered == set(ADMIN_MATRIX), (
        "add the new model admin to ADMIN_MATRIX (or remove a stale entry)"
    )


@pytest.mark.parametrize("role", ROLES)
def test_admin_permissions_and_actions_per_role(role):
    user = user_create(username=f"matrix-{role}", password="matrix-pass-123", role=role)
    failures = []
    for model, model_admin in admin.site._registry.items():
        request = RequestFactory().get("/admin/")
        request.user = user
        expected_caps, expected_actions = ADMIN_MATRIX[model._meta.label_lower][role]
        got = (_capabilities(model_admin, request), sorted(model_admin.get_actions(request)))
        if got != (expected_caps, sorted(expected_actions)):
            failures.append(
                f"{model._meta.label_lower} {role}: expected {(expected_caps, expected_actions)}, got {got}"
            )
    assert failures == []


def test_view_only_staff_cannot_run_periodic_task_actions(client, support):
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    every = IntervalSchedule.objects.create(every=10, period=IntervalSchedule.SECONDS)
    task = PeriodicTask.objects.create(name="t", task="x.y", interval=every, enabled=True)
    client.force_login(support)
    for action in ("disable_tasks", "toggle_tasks", "run_tasks"):
        client.post(
            "/admin/django_celery_beat/periodictask/",
            {"action": action, "_selected_action": [task.pk]},
        )
        task.refresh_from_db()
        assert task.enabled is True, action


def test_a_trader_cannot_enter_the_admin(client, trader):
    client.force_login(trader)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
    assert trader.get_all_permissions() == set()
