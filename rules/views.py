"""HTML actions on rule sets (issue #16): create and edit them on /risk/, put an account under one and lift an
account's close-only state from its page. Thin: the same forms and services as the admin and the API; a field
error re-renders the form fragment (htmx swaps 200s only) and stores nothing; a user who may not act gets the 403
page."""

from collections.abc import Callable
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect, trigger_client_event

from accounts.models import TradingAccount, User
from accounts.selectors import trading_account_get_for_user
from core.exceptions import ApplicationError, NotFoundError, PermissionDeniedError
from rules.forms import AccountRuleSetAssignForm, CloseOnlyLiftForm, RuleSetPageForm
from rules.models import TERM_FIELDS, RuleSet
from rules.presets import PRESETS
from rules.selectors import account_rule_set_get, account_rules_state_current, rule_set_get
from rules.services import (
    account_rule_set_assign,
    account_rules_close_only_lift,
    rule_set_create,
    rule_set_update,
)
from rules.services.live import LIFT_PERMISSION

NEW_PREFIX = "new"
RULE_SET_FORM = "rules/partials/_rule_set_form.html"
ASSIGN_FORM = "rules/partials/_assign_form.html"
LIFT_FORM = "rules/partials/_close_only_lift_form.html"


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def _owner(request: HttpRequest, message: str) -> User:
    user = _user(request)
    if not user.is_owner:
        raise PermissionDenied(message)
    return user


def edit_prefix(rule_set: RuleSet) -> str:
    return f"rs{rule_set.pk}"


def rule_set_new_form(*, preset: str | None = None, data: Any = None) -> RuleSetPageForm:
    """The create form, filled with a preset's terms when one is named (unknown names: custom)."""
    initial: dict[str, Any] = {}
    chosen = PRESETS.get(preset or "")
    if chosen is not None:
        initial = {name: chosen[name] for name in TERM_FIELDS} | {
            "start_from_preset": preset,
            "description": chosen["description"],
        }
    return RuleSetPageForm(data, initial=initial, prefix=NEW_PREFIX)


def rule_set_edit_form(rule_set: RuleSet, data: Any = None) -> RuleSetPageForm:
    return RuleSetPageForm(data, instance=rule_set, prefix=edit_prefix(rule_set))


def _form_context(form: RuleSetPageForm, rule_set: RuleSet | None) -> dict[str, Any]:
    return {"form": form, "rule_set": rule_set, "presets": PRESETS, "preset": _preset_of(form)}


def _preset_of(form: RuleSetPageForm) -> str:
    return str(form["start_from_preset"].value() or "") if "start_from_preset" in form.fields else ""


def _service_call(form: Any, call: Callable[[], Any]) -> tuple[bool, Any]:
    """(done, the service's result). A service's validation or refusal of the request lands on the form (nothing
    stored); an actor the service refuses is the 403 page."""
    try:
        return True, call()
    except PermissionDeniedError as exc:
        raise PermissionDenied(exc.message) from None
    except ValidationError as exc:
        if hasattr(exc, "error_dict"):
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            form.add_error(None, exc.messages)
    except ApplicationError as exc:
        form.add_error(None, exc.message)
    return False, None


def rule_set_url(rule_set: RuleSet) -> str:
    """/risk/ with the rule set's history opened (a query, so the redirect from the same page reloads it)."""
    return f"{reverse('risk:risk_page')}?rule_set={rule_set.pk}#rule-set-{rule_set.pk}"


def _done(request: HttpRequest, url: str, message: str) -> HttpResponse:
    if request.htmx:  # type: ignore[attr-defined]
        return trigger_client_event(HttpResponseClientRedirect(url), "toast", {"message": message})
    return redirect(url)


def _form_error(request: HttpRequest, template: str, context: dict[str, Any]) -> HttpResponse:
    """The form again with its messages: the fragment for htmx, a small page around it otherwise."""
    if request.htmx:  # type: ignore[attr-defined]
        return render(request, template, context)
    return render(request, "rules/form_page.html", context | {"fragment": template})


@require_GET
@login_required
def rule_set_new(request: HttpRequest) -> HttpResponse:
    """The create form filled from a preset (the preset links swap it in place)."""
    _owner(request, "Only an owner may create a rule set.")
    form = rule_set_new_form(preset=request.GET.get("preset"))
    if not request.htmx:  # type: ignore[attr-defined]
        return redirect(f"{reverse('risk:risk_page')}?preset={_preset_of(form)}#rule-set-new")
    return render(request, RULE_SET_FORM, _form_context(form, None))


@require_POST
@login_required
def rule_set_create_view(request: HttpRequest) -> HttpResponse:
    actor = _owner(request, "Only an owner may create a rule set.")
    form = rule_set_new_form(data=request.POST)
    if form.is_valid():
        data = form.cleaned_data
        done, row = _service_call(
            form,
            lambda: rule_set_create(
                actor=actor,
                name=data["name"],
                description=data["description"] or None,
                reason=data["reason"],
                preset=data.get("start_from_preset") or None,
                **{name: data[name] for name in TERM_FIELDS},
            ),
        )
        if done:
            url = rule_set_url(row)
            return _done(request, url, f"Rule set “{row.name}” created.")
    return _form_error(request, RULE_SET_FORM, _form_context(form, None))


@require_POST
@login_required
def rule_set_update_view(request: HttpRequest, rule_set_id: int) -> HttpResponse:
    actor = _owner(request, "Only an owner may change a rule set.")
    try:
        row = rule_set_get(rule_set_id=rule_set_id)
    except NotFoundError as exc:
        raise Http404(exc.message) from None
    form = rule_set_edit_form(row, data=request.POST)
    if form.is_valid():
        data = form.cleaned_data
        done, stored = _service_call(
            form,
            lambda: rule_set_update(
                actor=actor,
                rule_set=rule_set_get(rule_set_id=rule_set_id),  # the form's validation touched `row`
                reason=data["reason"],
                name=data["name"],
                description=data["description"],
                **{name: data[name] for name in TERM_FIELDS},
            ),
        )
        if done:
            url = rule_set_url(stored)
            return _done(request, url, f"Rule set “{stored.name}” is at revision {stored.revision}.")
    row.refresh_from_db()
    return _form_error(request, RULE_SET_FORM, _form_context(form, row))


def _account(request: HttpRequest, account_id: int) -> TradingAccount:
    try:
        return trading_account_get_for_user(user=_user(request), account_id=account_id)
    except NotFoundError as exc:
        raise Http404(exc.message) from None


def assign_initial(account: TradingAccount, current: Any) -> dict[str, Any]:
    """The assign form's starting values: the current assignment, else the latest balance."""
    if current is not None:
        return {
            "rule_set": current.rule_set_id,
            "initial_balance": current.initial_balance,
            "start": current.start,
        }
    snapshot = account.latest_snapshot
    return {"initial_balance": snapshot.balance} if snapshot is not None else {}


def account_rules_card(*, user: User, account: TradingAccount) -> dict[str, Any]:
    """The account page's "Rule set" card (outside the live partial, so a push never wipes a half-typed form): the
    assignment, the assign form for owners, the lift form for those who may lift while the account is close-only."""
    if not user.is_operator:
        return {}
    assignment = account_rule_set_get(account=account)
    state = account_rules_state_current(account=account) if assignment is not None else None
    may_lift = user.is_superuser or user.has_perm(LIFT_PERMISSION)
    return {
        "rules_assignment": assignment,
        "rules_card": True,
        "assign_form": AccountRuleSetAssignForm(initial=assign_initial(account, assignment))
        if user.is_owner
        else None,
        "lift_form": CloseOnlyLiftForm() if may_lift and state is not None and state.close_only else None,
    }


@require_POST
@login_required
def account_rule_set_assign_view(request: HttpRequest, account_id: int) -> HttpResponse:
    account = _account(request, account_id)
    actor = _owner(request, "Only an owner may put an account under a rule set.")
    form = AccountRuleSetAssignForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        done, row = _service_call(
            form,
            lambda: account_rule_set_assign(
                actor=actor,
                account=account,
                rule_set=data["rule_set"],
                initial_balance=data["initial_balance"],
                start=data["start"],
                reason=data["reason"],
            ),
        )
        if done:
            url = reverse("dashboard:account_page", args=[account.pk]) + "#guard-panel"
            message = f"Account under “{row.rule_set.name}” from its next snapshot."
            return _done(request, url, message)
    return _form_error(request, ASSIGN_FORM, {"account": account, "assign_form": form})


@require_POST
@login_required
def account_close_only_lift_view(request: HttpRequest, account_id: int) -> HttpResponse:
    account = _account(request, account_id)
    actor = _user(request)
    if not (actor.is_superuser or actor.has_perm(LIFT_PERMISSION)):
        raise PermissionDenied("Only owners and support staff may lift close-only.")
    form = CloseOnlyLiftForm(request.POST)
    if form.is_valid():
        done, _lifted = _service_call(
            form,
            lambda: account_rules_close_only_lift(
                actor=actor, account=account, reason=form.cleaned_data["reason"]
            ),
        )
        if done:
            url = reverse("dashboard:account_page", args=[account.pk]) + "#guard-panel"
            return _done(request, url, "Close-only lifted: new setups may be sized again.")
    return _form_error(request, LIFT_FORM, {"account": account, "lift_form": form})
